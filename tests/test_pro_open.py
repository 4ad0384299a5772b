"""Finding a patient and opening their record in the clinician portal (DOMAIN.md §4): each way
in (care authorisation, "the patient agrees", a facility's care team, break-glass, SAMU), each
refusal, and what a search reveals — whether a record exists and how to open it, nothing more."""

from __future__ import annotations

import html
import logging
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dmp.models import AuditEntry, CareAuthorisation, Organisation, Record
from dmp.models.record import nir_key
from tests.personas import make_professional, make_record

NIR13 = "2700575123456"
NIR = f"{NIR13}{nir_key(NIR13):02d}"


def _page(response) -> str:
    return html.unescape(response.content.decode())


def _search(client, **data):
    return client.post(reverse("portal_pro:search"), {
        "identifier": "", "family_name": "", "given_names": "", "birth_date": "", **data})


def _record_page(client, record):
    return client.get(reverse("portal_pro:record", args=[record.pk]))


def _declare(client, record, **extra):
    return client.post(reverse("portal_pro:declare_care", args=[record.pk]), {"patient_agrees": "on", **extra})


def _break_glass(client, record, **overrides):
    data = {"family_name": "MARTIN", "given_names": "alice", "birth_date": "1970-05-17",
            "justification": "Unconscious after a fall, brought by the firemen.", "emergency": "on", **overrides}
    return client.post(reverse("portal_pro:break_glass", args=[record.pk]), {k: v for k, v in data.items() if v})


@pytest.fixture
def nir(world):
    Record.objects.filter(pk=world.record.pk).update(nir=NIR)
    return NIR


@pytest.fixture
def hospital():
    return Organisation.objects.create(name="CH Lille-Métropole", kind=Organisation.Kind.FACILITY)


# --- Finding a patient ---------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_search_by_nir_says_only_that_a_record_exists_and_how_to_open_it(client, world, nir):
    client.force_login(world.stranger.user)
    response = _search(client, identifier="2 70 05 75 123 456 " + nir[13:])
    page = _page(response)
    assert response.status_code == 200
    assert "A record exists." in page
    assert reverse("portal_pro:declare_care", args=[world.record.pk]) in page
    assert reverse("portal_pro:break_glass", args=[world.record.pk]) in page
    # Nothing about the patient: no name, no date of birth, no document, no open link.
    answer = page.split('class="search-answer"')[1].split("</div>")[0]
    for secret in ("Alice", "Martin", "1970", ">consultation<", ">imaging<"):
        assert secret not in answer
    assert f'href="{reverse("portal_pro:record", args=[world.record.pk])}"' not in answer
    # The search that found the record is in its history, under the searcher, with no access mode.
    entry = AuditEntry.objects.get(action="find_record")
    assert (entry.actor_id, entry.record_id_ref, entry.allowed, entry.mode, entry.rule) == (
        world.stranger.user.pk, world.record.pk, True, "none", "professional_search")


@pytest.mark.django_db
def test_a_search_by_provisional_identifier_whatever_the_case(client, world):
    client.force_login(world.stranger.user)
    typed = world.record.provisional_id.lower()
    assert "A record exists." in _page(_search(client, identifier=f" {typed[:6]} {typed[6:]} "))


@pytest.mark.django_db
def test_a_search_by_name_and_birth_date_ignores_accents_and_case(client, world):
    client.force_login(world.stranger.user)
    page = _page(_search(client, family_name="MARTIN", given_names="leo", birth_date="2011-03-02"))
    assert "A record exists." in page
    assert reverse("portal_pro:break_glass", args=[world.leo_record.pk]) in page
    # The date of birth is exact.
    assert "No record found." in _page(_search(client, family_name="Martin", given_names="Léo",
                                                birth_date="2011-03-03"))


@pytest.mark.django_db
def test_a_search_that_finds_nothing_logs_ids_only(client, world, caplog):
    client.force_login(world.stranger.user)
    with caplog.at_level(logging.INFO, logger="dmp.security"):
        page = _page(_search(client, family_name="Nobody", given_names="Nemo", birth_date="1980-01-01"))
    assert "No record found." in page
    assert not AuditEntry.objects.filter(action="find_record").exists()
    line = [r.getMessage() for r in caplog.records if r.name == "dmp.security"][-1]
    assert str(world.stranger.user.pk) in line and "Nobody" not in line and "1980" not in line


@pytest.mark.django_db
def test_homonyms_born_the_same_day_are_not_told_apart(client, world):
    make_record(None, family_name="Martín", given_names="Alice Jeanne")
    client.force_login(world.stranger.user)
    page = _page(_search(client, family_name="martin", given_names="Alice", birth_date="1970-05-17"))
    assert "Several records match" in page and "A record exists." not in page
    assert reverse("portal_pro:declare_care", args=[world.record.pk]) not in page
    assert AuditEntry.objects.filter(action="find_record").count() == 2  # both probed


@pytest.mark.django_db
def test_a_closed_record_is_not_found(client, world, nir):
    Record.objects.filter(pk=world.record.pk).update(state=Record.State.CLOSED, closed_at=timezone.now())
    client.force_login(world.stranger.user)
    assert "No record found." in _page(_search(client, identifier=nir))


@pytest.mark.django_db
def test_a_search_needs_a_valid_nir_or_a_whole_identity(client, world, nir):
    client.force_login(world.stranger.user)
    wrong_key = f"{NIR13}{(nir_key(NIR13) + 1) % 100:02d}"
    response = _search(client, identifier=wrong_key)
    assert response.status_code == 400 and "key does not match" in _page(response)
    response = _search(client, family_name="Martin", given_names="Alice")
    assert response.status_code == 400 and "date of birth" in _page(response)
    assert not AuditEntry.objects.filter(action="find_record").exists()
    # Searches are POSTed: nothing typed ends up in a URL.
    assert client.get(reverse("portal_pro:search"), {"identifier": nir}).status_code == 405
    assert 'method="post" action="/pro/search/"' in _page(client.get(reverse("portal_pro:home")))


@pytest.mark.django_db
def test_an_authorised_professional_is_offered_to_open_with_the_reason(client, world, nir):
    client.force_login(world.dr_grant.user)
    page = _page(_search(client, identifier=nir))
    assert reverse("portal_pro:record", args=[world.record.pk]) in page
    assert "Care authorisation for this patient." in page
    assert reverse("portal_pro:declare_care", args=[world.record.pk]) not in page


@pytest.mark.django_db
def test_a_blocked_professional_is_told_only_that_it_is_not_possible(client, world, nir):
    client.force_login(world.blocked_kine.user)
    page = _page(_search(client, identifier=nir))
    assert "You cannot open this record." in page
    assert "blocked" not in page.lower()
    for name in ("portal_pro:declare_care", "portal_pro:break_glass", "portal_pro:record"):
        assert f'"{reverse(name, args=[world.record.pk])}"' not in page
    assert client.get(reverse("portal_pro:open", args=[world.record.pk])).status_code == 404


@pytest.mark.django_db
def test_emergency_access_refused_by_the_patient_is_not_offered(client, world, nir):
    Record.objects.filter(pk=world.record.pk).update(break_glass_allowed=False)
    client.force_login(world.stranger.user)
    page = _page(_search(client, identifier=nir))
    assert "Emergency access: not possible for this record." in page
    assert reverse("portal_pro:break_glass", args=[world.record.pk]) not in page
    assert reverse("portal_pro:declare_care", args=[world.record.pk]) in page


@pytest.mark.django_db
def test_the_samu_regulator_is_offered_to_open_unless_the_patient_refused(client, world, nir):
    client.force_login(world.regulator.user)
    page = _page(_search(client, identifier=nir))
    assert "Open as SAMU regulator" in page and "SAMU regulator." in page
    Record.objects.filter(pk=world.record.pk).update(samu_allowed=False)
    page = _page(_search(client, identifier=nir))
    assert "SAMU access: not possible for this record." in page
    answer = page.split('class="search-answer"')[1].split("</div>")[0]
    assert f'href="{reverse("portal_pro:record", args=[world.record.pk])}"' not in answer


@pytest.mark.django_db
def test_searches_are_limited_per_hour(client, world, settings):
    # The same limiter with a limit of three searches, not sixty: the production limit (60 an
    # hour, the limiter's "record_search") is asserted in tests/test_lockout.py.
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "record_search": "3/1h/user"}
    client.force_login(world.stranger.user)
    for _ in range(3):
        _search(client, family_name="Nobody", given_names="Nemo", birth_date="1980-01-01")
    response = _search(client, identifier=world.record.provisional_id)
    assert response.status_code == 429 and "Too many searches" in _page(response)
    assert not AuditEntry.objects.filter(action="find_record").exists()


# --- Opening: with a care authorisation, declared care, a facility's care team --------------------

@pytest.mark.django_db
def test_an_existing_care_authorisation_opens_the_record(client, world):
    client.force_login(world.dr_grant.user)
    response = _record_page(client, world.record)
    assert response.status_code == 200
    assert "Care authorisation for this patient." in _page(response)


@pytest.mark.django_db
def test_without_authorisation_the_record_is_missing(client, world):
    client.force_login(world.stranger.user)
    assert _record_page(client, world.record).status_code == 404
    assert client.get(reverse("portal_pro:record_pdf", args=[world.record.pk])).status_code == 404
    assert AuditEntry.objects.filter(actor=world.stranger.user, allowed=False, rule="no_care_authorisation").exists()


@pytest.mark.django_db
def test_declaring_that_the_patient_agrees_opens_the_record(client, world):
    client.force_login(world.stranger.user)
    response = _declare(client, world.record)
    assert response.status_code == 302 and response["Location"] == reverse("portal_pro:record", args=[world.record.pk])
    grant = CareAuthorisation.objects.get(record=world.record, professional=world.stranger)
    assert (grant.kind, grant.facility_id, grant.created_by_id) == ("declared", None, world.stranger.user.pk)
    assert AuditEntry.objects.filter(actor=world.stranger.user, action="declare_care", allowed=True).exists()
    page = _page(_record_page(client, world.record))
    assert "Care authorisation for this patient." in page
    # Declaring again keeps the one declaration.
    _declare(client, world.record)
    assert CareAuthorisation.objects.filter(record=world.record, professional=world.stranger).count() == 1


@pytest.mark.django_db
def test_declaring_needs_the_tick(client, world):
    client.force_login(world.stranger.user)
    response = client.post(reverse("portal_pro:declare_care", args=[world.record.pk]), {})
    assert response.status_code == 400 and "Tick the box" in _page(response)
    assert not CareAuthorisation.objects.filter(professional=world.stranger).exists()
    assert not AuditEntry.objects.filter(action="declare_care").exists()


@pytest.mark.django_db
def test_a_declaration_shared_with_the_facility_opens_the_record_to_its_care_team(client, world, hospital):
    world.stranger.facility = hospital
    world.stranger.save(update_fields=["facility"])
    colleague = make_professional("nina_nurse", "nurse", facility=hospital)
    elsewhere = make_professional("otto_other", facility=Organisation.objects.create(
        name="Clinique du Parc", kind=Organisation.Kind.FACILITY))

    client.force_login(world.stranger.user)
    options = _page(client.get(reverse("portal_pro:open", args=[world.record.pk])))
    assert "Share it with the care team of CH Lille-Métropole" in options
    assert _declare(client, world.record, share_with_facility="on").status_code == 302
    assert CareAuthorisation.objects.get(professional=world.stranger).facility == hospital

    client.force_login(colleague.user)
    assert "Martin Alice" in _page(client.get(reverse("portal_pro:home")))  # among her patients
    response = _record_page(client, world.record)
    assert response.status_code == 200
    assert "Care authorisation shared with your facility's care team." in _page(response)
    assert client.get(reverse("portal_pro:record_pdf", args=[world.record.pk])).status_code == 200
    # Her reads are logged under her own name, not the declaring doctor's.
    reads = AuditEntry.objects.filter(record_id_ref=world.record.pk, rule="facility_care_team")
    assert reads.filter(action="view_record").count() == 2
    assert set(reads.values_list("actor_id", flat=True)) == {colleague.user.pk}
    assert "Nina Nurse" in reads.first().actor_label

    client.force_login(elsewhere.user)
    assert _record_page(client, world.record).status_code == 404


@pytest.mark.django_db
def test_leaving_the_facility_ends_the_team_access(client, world, hospital):
    colleague = make_professional("nina_nurse", "nurse", facility=hospital)
    CareAuthorisation.objects.create(record=world.record, professional=world.dr_grant, facility=hospital,
                                     kind=CareAuthorisation.Kind.GRANTED_BY_PATIENT)
    client.force_login(colleague.user)
    assert _record_page(client, world.record).status_code == 200
    colleague.facility = None
    colleague.save(update_fields=["facility"])
    assert _record_page(client, world.record).status_code == 404


@pytest.mark.django_db
def test_a_blocked_team_member_stays_out(client, world, hospital):
    world.blocked_kine.facility = hospital
    world.blocked_kine.save(update_fields=["facility"])
    CareAuthorisation.objects.create(record=world.record, professional=world.dr_grant, facility=hospital,
                                     kind=CareAuthorisation.Kind.GRANTED_BY_PATIENT)
    client.force_login(world.blocked_kine.user)
    assert _record_page(client, world.record).status_code == 404


@pytest.mark.django_db
def test_only_a_care_facility_team_can_be_shared_with(client, world):
    pharmacy = Organisation.objects.create(name="Pharmacie du Beffroi", kind=Organisation.Kind.PHARMACY)
    world.stranger.facility = pharmacy
    world.stranger.save(update_fields=["facility"])
    client.force_login(world.stranger.user)
    assert "Share it with" not in _page(client.get(reverse("portal_pro:open", args=[world.record.pk])))
    response = _declare(client, world.record, share_with_facility="on")
    assert response.status_code == 400 and "care facility" in _page(response)
    assert not CareAuthorisation.objects.filter(professional=world.stranger).exists()


@pytest.mark.django_db
def test_a_blocked_professional_can_neither_declare_nor_break_the_glass(client, world):
    client.force_login(world.blocked_kine.user)
    assert _declare(client, world.record).status_code == 404
    assert client.get(reverse("portal_pro:break_glass", args=[world.record.pk])).status_code == 404
    assert _break_glass(client, world.record).status_code == 404
    assert not CareAuthorisation.objects.filter(professional=world.blocked_kine,
                                                kind__in=("declared", "break_glass")).exists()
    refusals = AuditEntry.objects.filter(actor=world.blocked_kine.user, allowed=False)
    assert set(refusals.values_list("rule", flat=True)) == {"blocked_professional"}


# --- Break-glass ---------------------------------------------------------------------------------

@pytest.mark.django_db
def test_break_glass_with_identity_and_justification_opens_for_a_limited_time(client, world):
    client.force_login(world.stranger.user)
    form = _page(client.get(reverse("portal_pro:break_glass", args=[world.record.pk])))
    assert "Martin" not in form and "1970" not in form  # the identity is typed, never shown
    response = _break_glass(client, world.record)
    assert response.status_code == 302
    grant = CareAuthorisation.objects.get(professional=world.stranger, kind="break_glass")
    assert grant.justification.startswith("Unconscious")
    assert timedelta(hours=1) < grant.expires_at - timezone.now() <= timedelta(hours=4)
    page = _page(_record_page(client, world.record))
    assert "Emergency access (break-glass), limited in time." in page
    assert "Emergency access until" in page
    assert AuditEntry.objects.filter(actor=world.stranger.user, action="break_glass", mode="break_glass").exists()
    assert AuditEntry.objects.filter(actor=world.stranger.user, action="view_record", mode="break_glass").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("overrides", "message"), [
    ({"family_name": "Dupont"}, "do not match this record"),
    ({"birth_date": "1970-05-18"}, "do not match this record"),
    ({"emergency": ""}, "Tick the emergency box"),
    ({"justification": ""}, "This field is required"),
])
def test_break_glass_refuses_a_wrong_identity_or_a_missing_step(client, world, overrides, message):
    client.force_login(world.stranger.user)
    response = _break_glass(client, world.record, **overrides)
    assert response.status_code == 400 and message in _page(response)
    assert not CareAuthorisation.objects.filter(professional=world.stranger).exists()


@pytest.mark.django_db
def test_break_glass_is_refused_when_the_patient_opted_out(client, world):
    Record.objects.filter(pk=world.record.pk).update(break_glass_allowed=False)
    client.force_login(world.stranger.user)
    assert client.get(reverse("portal_pro:break_glass", args=[world.record.pk])).status_code == 404
    assert _break_glass(client, world.record).status_code == 404
    assert not CareAuthorisation.objects.filter(professional=world.stranger).exists()
    # An opening in progress ends with the patient's choice.
    client.force_login(world.urgentist.user)
    assert _record_page(client, world.record).status_code == 404


@pytest.mark.django_db
def test_an_expired_break_glass_no_longer_opens_the_record(client, world):
    client.force_login(world.late_urgentist.user)
    assert _record_page(client, world.record).status_code == 404
    assert AuditEntry.objects.filter(actor=world.late_urgentist.user, rule="break_glass_expired").exists()


@pytest.mark.django_db
def test_break_glass_never_shows_documents_the_patient_hid(client, world):
    client.force_login(world.stranger.user)
    _break_glass(client, world.record)
    page = _page(_record_page(client, world.record))
    assert ">consultation<" in page
    assert ">hidden<" not in page and ">hidden imaging<" not in page
    hidden = world.docs["hidden"]
    assert client.get(reverse("portal_pro:document_file", args=[hidden.pk])).status_code == 404


# --- SAMU -----------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_samu_regulator_reads_without_justification_and_is_logged_as_samu(client, world):
    client.force_login(world.regulator.user)
    response = _record_page(client, world.record)
    assert response.status_code == 200 and "SAMU regulator." in _page(response)
    assert not CareAuthorisation.objects.filter(professional=world.regulator).exists()
    assert set(AuditEntry.objects.filter(actor=world.regulator.user).values_list("mode", flat=True)) == {"samu"}


@pytest.mark.django_db
def test_the_samu_regulator_is_refused_when_the_patient_opted_out(client, world):
    Record.objects.filter(pk=world.record.pk).update(samu_allowed=False)
    client.force_login(world.regulator.user)
    assert _record_page(client, world.record).status_code == 404
    assert AuditEntry.objects.filter(actor=world.regulator.user, rule="samu_opted_out").exists()


# --- The reason, always on screen ------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize(("persona", "reason"), [
    ("dr_house", "Médecin traitant designated by the patient."),
    ("dr_grant", "Care authorisation for this patient."),
    ("kine", "Care authorisation for this patient."),
    ("urgentist", "Emergency access (break-glass), limited in time."),
    ("regulator", "SAMU regulator."),
])
def test_the_reason_the_professional_sees_the_record_is_on_the_screen(client, world, persona, reason):
    client.force_login(getattr(world, persona).user)
    page = _page(_record_page(client, world.record))
    assert f"Why you can see this record: {reason}" in " ".join(page.replace("</strong>", "").split())


@pytest.mark.django_db
def test_non_professionals_cannot_search_or_open(client, world):
    for user in (world.alice, world.agent.user):
        client.force_login(user)
        assert _search(client, identifier=world.record.provisional_id).status_code == 403
        assert _declare(client, world.record).status_code == 403
        assert client.get(reverse("portal_pro:break_glass", args=[world.record.pk])).status_code == 403
    assert not AuditEntry.objects.filter(action__in=("find_record", "declare_care")).exists()
    client.logout()
    response = _search(client, identifier=world.record.provisional_id)
    assert response.status_code == 302 and reverse("account_login") in response["Location"]


@pytest.mark.django_db
def test_opening_a_missing_record_looks_like_a_refused_one(client, world):
    client.force_login(world.blocked_kine.user)
    refused = client.get(reverse("portal_pro:break_glass", args=[world.record.pk]))
    missing = client.get(reverse("portal_pro:break_glass", args=[999999]))
    assert refused.status_code == missing.status_code == 404


@pytest.mark.django_db
def test_the_patient_reads_in_her_history_who_looked_her_record_up(client, world, nir):
    client.force_login(world.stranger.user)
    _search(client, identifier=nir)
    client.force_login(world.alice)
    page = _page(client.get(reverse("portal_patient:history", args=[world.record.pk])))
    assert "Looked the record up, to open it" in page and "Sam Stranger" in page
