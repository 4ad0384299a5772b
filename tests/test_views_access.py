"""The URL sweep: (persona, url, expected status) through the real views. Logged out →
login redirect; no right on the object → 404 (a refusal reveals nothing); wrong portal → 403."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from dmp.models import AuditEntry
from tests.personas import make_document, user_of


def _url(world, name, key):
    if key in ("record", "leo_record"):
        return reverse(name, args=[getattr(world, key).pk])
    return reverse(name, args=[world.docs[key].pk])


SWEEP = [
    # (persona, url name, object, status)
    (None, "portal_patient:record", "record", 302),
    (None, "portal_pro:record", "record", 302),
    (None, "portal_pro:document_file", "consultation", 302),
    ("alice", "portal_patient:record", "record", 200),
    ("alice", "portal_patient:document_file", "hidden", 200),
    ("alice", "portal_patient:document_file", "withheld", 404),
    ("alice", "portal_patient:record", "leo_record", 404),
    ("alice", "portal_pro:record", "record", 403),
    ("mother", "portal_patient:record", "leo_record", 200),
    ("mother", "portal_patient:document_file", "leo_confidential", 404),
    ("dr_house", "portal_pro:record", "record", 200),
    ("dr_house", "portal_pro:document_file", "hidden", 200),
    ("dr_grant", "portal_pro:record", "record", 200),
    ("dr_grant", "portal_pro:record", "leo_record", 404),
    ("kine", "portal_pro:document_file", "imaging", 200),
    ("kine", "portal_pro:document_file", "consultation", 404),
    ("blocked_kine", "portal_pro:record", "record", 404),
    ("stranger", "portal_pro:record", "record", 404),
    ("stranger", "portal_pro:document_file", "consultation", 404),
    ("urgentist", "portal_pro:document_file", "consultation", 200),
    ("urgentist", "portal_pro:document_file", "hidden", 404),
    ("late_urgentist", "portal_pro:record", "record", 404),
    ("regulator", "portal_pro:record", "record", 200),
    ("agent", "portal_pro:record", "record", 403),
    # The patient portal is closed to accounts without a record of their own or represented,
    # as the pro portal is to non-professionals: 403 says nothing about the record.
    ("agent", "portal_patient:record", "record", 403),
    ("agent", "portal_patient:document_file", "own", 403),
    ("admin", "portal_patient:record", "record", 403),
    ("admin", "portal_pro:document_file", "consultation", 403),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("persona", "name", "obj", "status"), SWEEP, ids=[f"{p}-{n}-{o}" for p, n, o, _s in SWEEP])
def test_url_sweep(client, world, persona, name, obj, status):
    if persona:
        client.force_login(user_of(world, persona))
    response = client.get(_url(world, name, obj))
    assert response.status_code == status
    if status == 302:
        assert reverse("account_login") in response["Location"]


@pytest.mark.django_db
def test_a_refusal_looks_exactly_like_a_missing_document(client, world):
    client.force_login(world.stranger.user)
    refused = client.get(reverse("portal_pro:document_file", args=[world.docs["consultation"].pk]))
    missing = client.get(reverse("portal_pro:document_file", args=[999999]))
    assert refused.status_code == missing.status_code == 404
    token = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
    assert token.sub(b"", refused.content) == token.sub(b"", missing.content)
    assert AuditEntry.objects.filter(allowed=False).count() == 2  # both attempts logged


@pytest.mark.django_db
def test_break_glass_never_shows_hidden_documents(client, world):
    client.force_login(world.urgentist.user)
    page = client.get(reverse("portal_pro:record", args=[world.record.pk])).content.decode()
    assert ">consultation<" in page
    assert ">hidden<" not in page and ">hidden imaging<" not in page
    assert AuditEntry.objects.filter(mode="break_glass", action="view_record", allowed=True).count() == 1


@pytest.mark.django_db
def test_physiotherapist_list_follows_the_matrix(client, world):
    client.force_login(world.kine.user)
    page = client.get(reverse("portal_pro:record", args=[world.record.pk])).content.decode()
    assert ">imaging<" in page
    assert ">consultation<" not in page


@pytest.mark.django_db
def test_patient_list_hides_results_not_yet_announced(client, world):
    client.force_login(world.alice)
    page = client.get(reverse("portal_patient:documents", args=[world.record.pk])).content.decode()
    assert ">released<" in page and ">hidden<" in page
    assert ">withheld<" not in page
    assert not AuditEntry.objects.exists()  # the patient's own reads are not in the access log


@pytest.mark.django_db
def test_document_file_is_served_decrypted_and_stored_encrypted(client, world):
    doc = world.docs["consultation"]
    client.force_login(world.dr_grant.user)
    response = client.get(reverse("portal_pro:document_file", args=[doc.pk]))
    body = b"".join(response.streaming_content)
    assert body.startswith(b"%PDF-") and b"consultation" in body
    assert response["Cache-Control"] == "no-store"
    with open(doc.file.storage.path(doc.file.name), "rb") as raw:
        stored = raw.read()
    assert b"%PDF" not in stored and b"consultation" not in stored


@pytest.mark.django_db
def test_professional_home_lists_followed_patients_only(client, world, django_assert_max_num_queries):
    client.force_login(world.dr_grant.user)
    # Includes the session's renewal (idle timeout): one UPDATE, in a savepoint under tests.
    with django_assert_max_num_queries(11):
        page = client.get(reverse("portal_pro:home")).content.decode()
    assert "Martin Alice" in page and "Léo" not in page
    client.force_login(world.blocked_kine.user)
    assert "Martin" not in client.get(reverse("portal_pro:home")).content.decode()


@pytest.mark.django_db
def test_record_page_query_count_does_not_grow_with_documents(client, world, django_assert_max_num_queries):
    client.force_login(world.dr_house.user)
    url = reverse("portal_pro:record", args=[world.record.pk])
    client.get(url)  # the session's renewal and the day's first read: not what is measured
    # The one-screen patient view: one query per block (tests/test_pro_patient_screen.py).
    with django_assert_max_num_queries(15) as few:
        assert client.get(url).status_code == 200
    for i in range(20):
        make_document(world.record, f"more {i}", author=world.dr_grant)
    with django_assert_max_num_queries(len(few)):
        assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_counter_agent_sees_administrative_status_only(client, world):
    client.force_login(world.agent.user)
    page = client.get(reverse("social_workers:home")).content.decode()
    assert world.record.identifier in page
    for doc in world.docs.values():
        assert f">{doc.title}<" not in page
    client.force_login(world.alice)
    assert client.get(reverse("social_workers:home")).status_code == 403


@pytest.mark.django_db
def test_a_representation_that_ended_no_longer_opens_the_patient_portal(client, world):
    from datetime import timedelta

    from django.utils import timezone

    from dmp.models import LegalRepresentative

    LegalRepresentative.objects.filter(user=world.mother).update(until=timezone.localdate() - timedelta(days=1))
    client.force_login(world.mother)
    # No longer a patient-portal account: the portal itself is closed (403), as for any non-patient.
    assert client.get(reverse("portal_patient:home")).status_code == 403
    assert client.get(reverse("portal_patient:record", args=[world.leo_record.pk])).status_code == 403


@pytest.mark.django_db
def test_someone_elses_block_does_not_hide_a_patient_from_a_professional(client, world):
    from django.utils import timezone

    from dmp.models import Block

    # Dr Grant was blocked once and unblocked; Bob is blocked now. Alice is still Dr Grant's patient.
    Block.objects.create(record=world.record, professional=world.dr_grant, ended_at=timezone.now())
    client.force_login(world.dr_grant.user)
    assert "Martin Alice" in client.get(reverse("portal_pro:home")).content.decode()


@pytest.mark.django_db
def test_home_sends_each_account_to_its_portal(client, world):
    for persona, target in (("alice", "portal_patient:home"), ("mother", "portal_patient:home"),
                            ("dr_house", "portal_pro:home"), ("agent", "social_workers:home")):
        client.force_login(user_of(world, persona))
        assert client.get("/")["Location"] == reverse(target), persona
    client.force_login(world.nobody)
    assert client.get("/").status_code == 200
