"""`_revinclude`: a Patient search brings the patient's documents, a Practitioner search the
professional's documents — only those the professional asking may read, each record so read in
its access history like a documents search, bounded, and declared in the CapabilityStatement."""

from __future__ import annotations

import pytest

from dmp.api.fhir import documents
from dmp.models import AuditEntry, Document
from dmp.policy import Action, Actor
from dmp.services import api_token_create

pytestmark = pytest.mark.django_db

DR = "/fhir/DocumentReference"


def _bearer(pro) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(actor=Actor(pro.user), label='LGC')[1]}"}


def _ids(bundle: dict, mode: str) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def _included_documents(bundle: dict) -> set[int]:
    return {int(e["resource"]["id"]) for e in bundle.get("entry", [])
            if e["search"]["mode"] == "include" and e["resource"]["resourceType"] == "DocumentReference"}


def _record_reads(pro) -> int:
    return AuditEntry.objects.filter(actor=pro.user, action=Action.VIEW_RECORD).count()


def _listed(client, headers, record_pk) -> set[int]:
    bundle = client.get(DR, {"patient": record_pk}, **headers).json()
    return {int(i) for i in _ids(bundle, "match")}


@pytest.mark.parametrize("revinclude", ["DocumentReference:patient", "DocumentReference:subject"])
def test_a_patient_search_brings_the_documents_the_professional_may_read(client, world, revinclude):
    record = world.record
    for pro in (world.dr_house, world.kine):
        headers = _bearer(pro)
        before = _record_reads(pro)
        response = client.get("/fhir/Patient", {"identifier": record.provisional_id, "_revinclude": revinclude},
                              **headers)
        assert response.status_code == 200, response.content[:500]
        # The documents given are a read of the record in its history, besides the search's own.
        assert _record_reads(pro) == before + 2
        bundle = response.json()
        assert _ids(bundle, "match") == [str(record.pk)] and bundle["total"] == 1
        assert _included_documents(bundle) == _listed(client, headers, record.pk)
        assert ("_revinclude=" + revinclude.replace(":", "%3A")) in bundle["link"][0]["url"]
    kine_sees = _included_documents(client.get("/fhir/Patient", {"identifier": record.provisional_id,
                                                                  "_revinclude": "DocumentReference:patient"},
                                               **_bearer(world.kine)).json())
    assert world.docs["hidden"].pk not in kine_sees and world.docs["consultation"].pk not in kine_sees


def test_without_revinclude_or_with_summary_count_no_document_is_read(client, world):
    headers = _bearer(world.dr_house)
    for extra in ({}, {"_revinclude": "DocumentReference:patient", "_summary": "count"}):
        before = _record_reads(world.dr_house)
        bundle = client.get("/fhir/Patient", {"identifier": world.record.provisional_id, **extra}, **headers).json()
        assert not _included_documents(bundle)
        assert _record_reads(world.dr_house) == before + 1  # the search's own entry only


def test_a_practitioner_search_brings_their_documents_the_asker_may_read(client, world):
    grant = world.dr_grant.pk
    params = {"_id": grant, "_revinclude": "DocumentReference:author"}
    for pro in (world.dr_house, world.kine):
        headers = _bearer(pro)
        bundle = client.get("/fhir/Practitioner", params, **headers).json()
        assert _ids(bundle, "match") == [str(grant)]
        expected = {pk for pk in _listed(client, headers, world.record.pk)
                    if Document.objects.get(pk=pk).author_professional_id == grant}
        assert _included_documents(bundle) == expected and expected
    # Someone who may read none of Dr Grant's documents does not see Dr Grant at all.
    refused = client.get("/fhir/Practitioner", params, **_bearer(world.stranger)).json()
    assert refused["total"] == 0 and "entry" not in refused
    blocked = client.get("/fhir/Practitioner", params, **_bearer(world.blocked_kine)).json()
    assert not _included_documents(blocked)


def test_revinclude_is_bounded(client, world, monkeypatch):
    monkeypatch.setattr(documents, "REVINCLUDE_MAX", 2)
    monkeypatch.setattr("dmp.api.fhir.practitioner.REVINCLUDE_MAX", 2)
    headers = _bearer(world.dr_house)
    patient = client.get("/fhir/Patient", {"identifier": world.record.provisional_id,
                                           "_revinclude": "DocumentReference:patient"}, **headers).json()
    practitioner = client.get("/fhir/Practitioner", {"_id": world.dr_grant.pk,
                                                     "_revinclude": "DocumentReference:author"}, **headers).json()
    assert len(_included_documents(patient)) == 2 == len(_included_documents(practitioner))


def test_the_capability_statement_declares_the_revincludes(client):
    resources = {r["type"]: r for r in client.get("/fhir/metadata").json()["rest"][0]["resource"]}
    assert resources["Patient"]["searchRevInclude"] == ["DocumentReference:patient", "DocumentReference:subject"]
    assert resources["Practitioner"]["searchRevInclude"] == ["DocumentReference:author"]
