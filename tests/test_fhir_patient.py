"""The FHIR API's metadata, Patient and AuditEvent endpoints (issue 8): every answer validates
against the fhir.resources R4B models; what the portals refuse, the API refuses the same way,
and a refused patient is indistinguishable from a missing one."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from dmp.fhir import INS_NIR_SYSTEM, PROVISIONAL_ID_SYSTEM
from dmp.models import AuditEntry
from dmp.models.record import nir_key
from dmp.policy import Action, Actor
from dmp.services import api_token_create, api_token_revoke

FHIR_JSON = "application/fhir+json"
NIR13 = "2700575123456"
NIR = f"{NIR13}{nir_key(NIR13):02d}"


def _bearer(pro) -> dict[str, str]:
    _token, raw = api_token_create(actor=Actor(pro.user), label="Logiciel de cabinet")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _outcome(response, status: int) -> OperationOutcome:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(FHIR_JSON)
    return OperationOutcome.model_validate(response.json())


def _search(client, pro, **params) -> Bundle:
    response = client.get("/fhir/Patient", params, **_bearer(pro))
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith(FHIR_JSON)
    bundle = Bundle.model_validate(response.json())
    assert bundle.type == "searchset"
    return bundle


@pytest.mark.django_db
def test_metadata_is_a_public_capability_statement(client):
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response["Content-Type"].startswith(FHIR_JSON)
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1" and statement.format == ["json"] and statement.kind == "instance"
    rest = statement.rest[0]
    assert rest.mode == "server"
    resources = {r.type: r for r in rest.resource}
    assert set(resources) == {"Patient", "DocumentReference", "Binary", "AllergyIntolerance", "Condition",
                              "MedicationStatement", "Immunization", "AuditEvent", "Practitioner", "Organization"}
    patient = resources["Patient"]
    assert {i.code for i in patient.interaction} == {"read", "search-type", "vread", "history-instance"}
    assert {p.name for p in patient.searchParam} == {"identifier", "family", "given", "birthdate"}
    assert [o.name for o in patient.operation] == ["summary"]
    docs = resources["DocumentReference"]
    assert {i.code for i in docs.interaction} == {"create", "read", "search-type", "update", "vread",
                                                  "history-instance"}
    assert docs.versioning == "versioned-update"
    assert {i.code for i in rest.interaction} == {"transaction", "batch"}
    assert {p.name for p in docs.searchParam} == {
        "patient", "subject", "patient.identifier", "status", "category", "type", "date", "period", "author",
        "author.given", "author.family", "setting", "facility", "event", "security-label", "format", "related"}
    assert docs.conditionalCreate is True
    assert [p.name for p in resources["AuditEvent"].searchParam] == ["patient"]


@pytest.mark.django_db
def test_patient_read_validates_for_the_treating_doctor(client, world):
    record = world.record
    response = client.get(f"/fhir/Patient/{record.pk}", **_bearer(world.dr_house))
    assert response.status_code == 200
    assert response["Content-Type"].startswith(FHIR_JSON)
    patient = Patient.model_validate(response.json())
    assert patient.id == str(record.pk)
    assert patient.name[0].family == "Martin" and patient.birthDate.isoformat() == "1970-05-17"
    assert any(i.system == PROVISIONAL_ID_SYSTEM and i.value == record.provisional_id for i in patient.identifier)
    # The read is in the record's audit log, as in the portal.
    assert AuditEntry.objects.filter(record_id_ref=record.pk, actor=world.dr_house.user,
                                     action=Action.VIEW_RECORD, allowed=True).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["stranger", "blocked_kine"])
def test_a_refused_patient_is_the_same_404_as_a_missing_one(client, world, persona):
    pro = getattr(world, persona)
    refused = _outcome(client.get(f"/fhir/Patient/{world.record.pk}", **_bearer(pro)), 404)
    missing = _outcome(client.get("/fhir/Patient/999999999", **_bearer(pro)), 404)
    not_an_id = _outcome(client.get("/fhir/Patient/not-a-number", **_bearer(pro)), 404)
    assert refused.model_dump() == missing.model_dump() == not_an_id.model_dump()
    assert refused.issue[0].code == "not-found"
    # The refused attempt is in the record's log.
    assert AuditEntry.objects.filter(record_id_ref=world.record.pk, actor=pro.user, action=Action.VIEW_RECORD,
                                     allowed=False).exists()


@pytest.mark.django_db
def test_no_token_or_a_revoked_token_is_401(client, world):
    url = f"/fhir/Patient/{world.record.pk}"
    outcome = _outcome(client.get(url), 401)
    assert outcome.issue[0].code == "login"
    token, raw = api_token_create(actor=Actor(world.dr_house.user), label="Revoked")
    api_token_revoke(actor=Actor(world.dr_house.user), token=token)
    response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {raw}")
    _outcome(response, 401)
    assert response["WWW-Authenticate"] == "Bearer"
    _outcome(client.get(url, HTTP_AUTHORIZATION="Bearer dmp_00000000_nothing"), 401)


@pytest.mark.django_db
def test_a_counter_agent_session_is_403(client, world):
    client.force_login(world.agent.user)
    outcome = _outcome(client.get(f"/fhir/Patient/{world.record.pk}"), 403)
    assert outcome.issue[0].code == "forbidden"
    _outcome(client.get("/fhir/Patient", {"identifier": world.record.provisional_id}), 403)


@pytest.mark.django_db
def test_search_by_nir_provisional_id_and_name_finds_the_patient_for_the_treating_doctor(client, world):
    record = world.record
    record.nir = NIR
    record.save(update_fields=["nir"])
    searches = [
        {"identifier": f"{INS_NIR_SYSTEM}|{NIR}"},
        {"identifier": f"{PROVISIONAL_ID_SYSTEM}|{record.provisional_id}"},
        {"identifier": record.provisional_id.lower()},  # no system: recognised by its shape
        {"family": "MARTIN", "given": "alice", "birthdate": "1970-05-17"},
    ]
    for params in searches:
        bundle = _search(client, world.dr_house, **params)
        assert bundle.total == 1, params
        entry = bundle.entry[0]
        patient = Patient.model_validate(entry.resource.model_dump())
        assert patient.id == str(record.pk)
        assert entry.fullUrl.endswith(f"/fhir/Patient/{record.pk}")
        assert entry.search.mode == "match"
        assert any(i.system == INS_NIR_SYSTEM and i.value == NIR for i in patient.identifier)
        # The criteria are personal data: not repeated in the answer's links.
        assert all("identifier" not in link.url and "family" not in link.url for link in bundle.link)
    # The same search in a form body (POST _search).
    response = client.post("/fhir/Patient/_search", urlencode({"identifier": f"{INS_NIR_SYSTEM}|{NIR}"}),
                           content_type="application/x-www-form-urlencoded", **_bearer(world.dr_house))
    assert response.status_code == 200
    assert Bundle.model_validate(response.json()).total == 1
    finds = AuditEntry.objects.filter(record_id_ref=record.pk, actor=world.dr_house.user, action=Action.FIND_RECORD)
    assert finds.count() == len(searches) + 1


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["stranger", "blocked_kine"])
def test_search_never_reveals_a_patient_the_professional_cannot_open(client, world, persona):
    pro = getattr(world, persona)
    found = _search(client, pro, identifier=f"{PROVISIONAL_ID_SYSTEM}|{world.record.provisional_id}")
    nothing = _search(client, pro, identifier=f"{PROVISIONAL_ID_SYSTEM}|PZZZZZZZZZZZ")
    by_name = _search(client, pro, family="Martin", given="Alice", birthdate="1970-05-17")
    for bundle in (found, nothing, by_name):
        assert bundle.total == 0 and not bundle.entry
    # Logged as the portal logs a search that finds a record.
    assert AuditEntry.objects.filter(record_id_ref=world.record.pk, actor=pro.user,
                                     action=Action.FIND_RECORD).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("params", [
    {},
    {"family": "Martin", "given": "Alice"},
    {"family": "Martin", "given": "Alice", "birthdate": "1970"},
    {"family": "Martin", "given": "Alice", "birthdate": "17/05/1970"},
    {"identifier": "http://example.org/ids|123"},
    {"identifier": f"{INS_NIR_SYSTEM}|123456789012345"},
    {"identifier": f"{PROVISIONAL_ID_SYSTEM}|{NIR}"},
    {"identifier": f"{INS_NIR_SYSTEM}|"},
])
def test_missing_or_invalid_search_parameters_are_400(client, world, params):
    outcome = _outcome(client.get("/fhir/Patient", params, **_bearer(world.dr_house)), 400)
    assert outcome.issue[0].code == "invalid"


@pytest.mark.django_db
def test_the_treating_doctor_reads_the_access_history_as_audit_events(client, world):
    record = world.record
    assert client.get(f"/fhir/Patient/{record.pk}", **_bearer(world.dr_grant)).status_code == 200
    response = client.get("/fhir/AuditEvent", {"patient": record.pk}, **_bearer(world.dr_house))
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith(FHIR_JSON)
    bundle = Bundle.model_validate(response.json())
    assert bundle.type == "searchset" and bundle.total >= 1
    events = [AuditEvent.model_validate(e.resource.model_dump()) for e in bundle.entry]
    grant = world.dr_grant.user.get_full_name()
    read = next(e for e in events if e.agent[0].who.display.startswith(grant))
    assert read.subtype[0].code == Action.VIEW_RECORD and read.action == "R" and read.outcome == "0"
    assert read.agent[0].requestor is True
    assert read.source.observer.display == "DMP"
    assert read.entity[0].what.reference == f"Patient/{record.pk}"
    # Newest first, and no document title anywhere.
    assert [e.recorded for e in events] == sorted((e.recorded for e in events), reverse=True)
    assert all(doc.title not in response.content.decode() for doc in world.docs.values())
    # Paging (reading the history is itself in the history: the total grew).
    page = Bundle.model_validate(client.get("/fhir/AuditEvent", {"patient": f"Patient/{record.pk}", "_count": 1},
                                            **_bearer(world.dr_house)).json())
    assert len(page.entry) == 1 and page.total > bundle.total
    assert any(link.relation == "next" and "_offset=1" in link.url for link in page.link)


@pytest.mark.django_db
def test_the_access_history_is_refused_to_other_professionals_as_not_found(client, world):
    url = "/fhir/AuditEvent"
    refused = _outcome(client.get(url, {"patient": world.record.pk}, **_bearer(world.dr_grant)), 404)
    missing = _outcome(client.get(url, {"patient": 999999999}, **_bearer(world.dr_grant)), 404)
    assert refused.model_dump() == missing.model_dump()
    _outcome(client.get(url, {"patient": world.record.pk}, **_bearer(world.stranger)), 404)
    assert AuditEntry.objects.filter(record_id_ref=world.record.pk, actor=world.dr_grant.user,
                                     action=Action.VIEW_ACCESS_HISTORY, allowed=False).exists()
    _outcome(client.get(url, **_bearer(world.dr_house)), 400)
    _outcome(client.get(url, {"patient": world.record.pk, "_count": "many"}, **_bearer(world.dr_house)), 400)


@pytest.mark.django_db
def test_the_access_history_pages_like_every_search(client, world):
    # The same paging as the DocumentReference search (dmp/api/fhir/base.py): a count above
    # the maximum is brought down to it, a previous link past the first page, a bad value is 400.
    headers = _bearer(world.dr_house)
    url = "/fhir/AuditEvent"
    for _n in range(3):
        client.get(url, {"patient": world.record.pk}, **headers)
    big = Bundle.model_validate(client.get(url, {"patient": world.record.pk, "_count": 100000},
                                           **headers).json())
    assert next(link.url for link in big.link if link.relation == "self").endswith("_count=500&_offset=0")
    second = Bundle.model_validate(client.get(url, {"patient": world.record.pk, "_count": 1, "_offset": 1},
                                              **headers).json())
    assert len(second.entry) == 1
    assert any(link.relation == "previous" and link.url.endswith("_count=1&_offset=0") for link in second.link)
    for bad in ({"_count": "-1"}, {"_offset": "-1"}, {"_offset": "1e3"}):
        assert "_" in _outcome(client.get(url, {"patient": world.record.pk, **bad}, **headers),
                               400).issue[0].diagnostics
