"""The International Patient Summary as a PDF (DOMAIN.md §7): who may download or print it,
what it holds, and that it says the same as the FHIR `$summary` (both read
dmp/selectors/summary.py)."""

from __future__ import annotations

import subprocess
from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone

from dmp.models import AuditEntry, DepositRight, SelfDeclaredItem, Synthesis, SynthesisProblem, Vaccination
from dmp.policy import Action
from tests.personas import user_of

PROTECTED = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
             "Content-Security-Policy": "sandbox; default-src 'none'"}


def pdf_text(content: bytes) -> str:
    """What a reader sees, through poppler's pdftotext (layout order)."""
    return subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=content, capture_output=True,  # noqa: S607
                          check=True).stdout.decode()


@pytest.fixture
def summary(world):
    synthesis = Synthesis.objects.create(record=world.record, version=1, author=world.dr_house,
                                         current_treatments="Ramipril 5 mg", allergies="Pénicilline")
    SynthesisProblem.objects.create(synthesis=synthesis, icd10="I10", label="Hypertension essentielle",
                                    since=date(2019, 3, 1))
    Vaccination.objects.create(record=world.record, vaccine="DTP rappel", date=date(2024, 5, 2), batch="AB123")
    SelfDeclaredItem.objects.create(record=world.record, kind=SelfDeclaredItem.Kind.ALLERGY, label="Arachide")
    return synthesis


def _patient_url(record) -> str:
    return reverse("portal_patient:summary_pdf", args=[record.pk])


def _counter_url(record) -> str:
    return reverse("social_workers:counter_summary_pdf", args=[record.pk])


def _assert_protected_pdf(response) -> bytes:
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="patient-summary.pdf"'
    for header, value in PROTECTED.items():
        assert response[header] == value
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body.startswith(b"%PDF")
    return body


@pytest.mark.django_db
def test_the_patient_downloads_her_summary_with_what_the_fhir_summary_holds(client, world, summary,
                                                                             django_assert_max_num_queries):
    client.force_login(world.alice)
    with django_assert_max_num_queries(25):
        response = client.get(_patient_url(world.record))
    text = pdf_text(_assert_protected_pdf(response))
    for fragment in ("International Patient Summary", "I10", "Hypertension essentielle", "Ramipril 5 mg",
                     "Pénicilline", "Arachide", "DTP rappel", "AB123", world.record.identifier, "1970-05-17",
                     "Gregory House"):
        assert fragment in text, fragment
    # Nothing of hers is recorded when she reads her own record.
    assert not AuditEntry.objects.filter(record_id_ref=world.record.pk, action=Action.PRINT_PATIENT_SUMMARY).exists()


@pytest.mark.django_db
def test_the_legal_representative_downloads_the_childs_summary_and_it_is_in_the_history(client, world):
    client.force_login(world.mother)
    _assert_protected_pdf(client.get(_patient_url(world.leo_record)))
    entry = AuditEntry.objects.get(record_id_ref=world.leo_record.pk, action=Action.PRINT_PATIENT_SUMMARY)
    assert entry.allowed and entry.actor_id == world.mother.pk


@pytest.mark.django_db
def test_the_onboarding_counter_prints_the_summary_as_a_download_and_the_patient_sees_it(client, world, summary):
    client.force_login(world.agent.user)
    response = client.post(_counter_url(world.record))
    _assert_protected_pdf(response)
    entry = AuditEntry.objects.get(record_id_ref=world.record.pk, action=Action.PRINT_PATIENT_SUMMARY)
    assert entry.allowed and entry.actor_id == world.agent.user.pk and entry.mode == "counter"

    client.force_login(world.alice)
    history = client.get(reverse("portal_patient:history", args=[world.record.pk])).content.decode()
    assert "Printed the patient summary" in history and "CADA Lille" in history


@pytest.mark.django_db
def test_the_counter_button_is_a_post_on_its_dashboard_and_a_get_is_refused(client, world):
    client.force_login(world.agent.user)
    page = client.get(reverse("social_workers:dashboard")).content.decode()
    assert f'action="{_counter_url(world.record)}"' in page
    assert client.get(_counter_url(world.record)).status_code == 405  # never a page to look at


@pytest.mark.parametrize(("persona", "record", "portal", "expected"), [
    ("other_agent", "record", "counter", 404),  # another organisation's counter
    ("agent", "leo_record", "counter", 404),  # a record its organisation did not onboard
    ("dr_house", "record", "counter", 403),  # a professional has his own route ($summary)
    ("dr_house", "record", "patient", 403),
    ("agent", "record", "patient", 403),  # the counter never reads through the patient portal
    ("alice", "leo_record", "patient", 404),  # somebody else's child
    ("mother", "record", "patient", 404),
    ("nobody", "record", "patient", 403),
])
@pytest.mark.django_db
def test_everyone_else_is_refused(client, world, persona, record, portal, expected):
    client.force_login(user_of(world, persona))
    target = getattr(world, record)
    if portal == "counter":
        response = client.post(_counter_url(target))
    else:
        response = client.get(_patient_url(target))
    assert response.status_code == expected
    assert response["Content-Type"] != "application/pdf"


@pytest.mark.django_db
def test_a_refused_counter_is_in_the_audit_log(client, world):
    client.force_login(world.other_agent.user)
    assert client.post(_counter_url(world.record)).status_code == 404
    entry = AuditEntry.objects.get(record_id_ref=world.record.pk, action=Action.PRINT_PATIENT_SUMMARY)
    assert not entry.allowed and entry.rule == "not_onboarded_here"


@pytest.mark.django_db
def test_once_the_person_withdrew_the_organisations_deposit_right_the_counter_no_longer_prints(client, world):
    DepositRight.objects.filter(record=world.record).update(ended_at=timezone.now())
    client.force_login(world.agent.user)
    response = client.post(_counter_url(world.record))
    assert response.status_code == 404 and response["Content-Type"] != "application/pdf"
    entry = AuditEntry.objects.get(record_id_ref=world.record.pk, action=Action.PRINT_PATIENT_SUMMARY)
    assert not entry.allowed and entry.rule == "deposit_right_withdrawn"


@pytest.mark.django_db
def test_anonymous_is_sent_to_log_in(client, world):
    for response in (client.get(_patient_url(world.record)), client.post(_counter_url(world.record))):
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_the_fhir_summary_and_the_pdf_read_the_same_content(world, summary):
    from dmp.policy import Actor
    from dmp.selectors.summary import summary_for_api, summary_to_print

    printed = summary_to_print(Actor(world.alice), world.record.pk)
    api = summary_for_api(Actor(world.dr_house.user), world.record)
    assert printed.bundle().entry[0].resource.section == api.bundle().entry[0].resource.section
