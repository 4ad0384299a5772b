"""IHE MHD as the ANS PDSm guide profiles it, through the API: an ITI-65 transaction Bundle
(the guide's own example, adapted to our patient and practitioner) publishes a document that
an ITI-67-like search finds and ITI-68 retrieves byte for byte; the same Bundle twice stores
nothing more; one bad entry refuses the whole Bundle. What a push keeps (masterIdentifier,
identifiers, codings, visibility), replacing and withdrawing under the policy, and versions."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.operationoutcome import OperationOutcome

from dmp.models import AuditEntry, Document, DocumentType
from dmp.models.record import nir_key
from dmp.policy import Action, Actor
from dmp.services import api_token_create
from tests.sample_files import text_pdf

pytestmark = pytest.mark.django_db

FHIR_JSON = "application/fhir+json"
DR = "/fhir/DocumentReference"
NIR13 = "2700575123456"
NIR = f"{NIR13}{nir_key(NIR13):02d}"
EXAMPLE = Path(__file__).parent / "data" / "pdsm_iti65_submission.json"
VISIBILITY = "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"


def _bearer(pro) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(actor=Actor(pro.user), label='LGC')[1]}"}


def pdsm_bundle(pro, pdf: bytes, *, master: str = "urn:oid:1.2.250.1.213.1.4.8.99999.101") -> dict:
    """The PDSm guide's ITI-65 example Bundle, for our patient (her INS-NIR), our practitioner
    (his IDNPS) and a real PDF."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = (text.replace("{{NIR}}", NIR).replace("{{IDNPS}}", f"8{pro.rpps}")
            .replace("{{PDF_BASE64}}", base64.b64encode(pdf).decode())
            .replace("urn:oid:1.2.250.1.213.1.4.8.99999.101", master))
    return json.loads(text)


@pytest.fixture
def nir_world(world):
    world.record.nir = NIR
    world.record.save(update_fields=["nir"])
    return world


def _post(client, headers, body, url="/fhir/"):
    return client.post(url, body, content_type=FHIR_JSON, **headers)


def _outcome(response, status: int) -> str:
    assert response.status_code == status, response.content[:800]
    return OperationOutcome.model_validate(response.json()).issue[0].diagnostics


def _doc(record_pk, pdf, **extra) -> dict:
    return {"resourceType": "DocumentReference", "status": "current",
            "subject": {"reference": f"Patient/{record_pk}"},
            "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
            "description": "Consultation", "context": {"period": {"start": "2026-03-03"}},
            "content": [{"attachment": {"contentType": "application/pdf", "data": base64.b64encode(pdf).decode()}}],
            **extra}


def test_iti65_publishes_the_document_found_by_search_and_retrieved_byte_for_byte(client, nir_world):
    world, headers = nir_world, _bearer(nir_world.dr_house)
    pdf = text_pdf("Compte rendu PDSm")
    response = _post(client, headers, pdsm_bundle(world.dr_house, pdf))
    assert response.status_code == 200, response.content[:800]
    answer = Bundle.model_validate(response.json())
    assert answer.type == "transaction-response"
    statuses = [entry.response.status for entry in answer.entry]
    assert statuses == ["200 OK", "201 Created", "201 Created"]
    location = answer.entry[1].response.location
    document = Document.objects.get(pk=int(location.split("/")[1]))
    assert location == f"DocumentReference/{document.pk}/_history/1"
    assert answer.entry[2].response.location == f"Binary/{document.pk}"
    assert document.record == world.record and document.doc_type == DocumentType.CONSULTATION_REPORT
    assert document.author_professional == world.dr_house
    assert document.master_identifier == "urn:oid:1.2.250.1.213.1.4.8.99999.101"

    # ITI-67-like: by patient and status.
    found = client.get(DR, {"patient": world.record.pk, "status": "current"}, **headers).json()
    entries = [e["resource"] for e in found["entry"] if e["resource"]["id"] == str(document.pk)]
    assert len(entries) == 1
    resource = DocumentReference.model_validate(entries[0])
    assert resource.masterIdentifier.value == "urn:oid:1.2.250.1.213.1.4.8.99999.101"
    assert resource.masterIdentifier.system == "urn:ietf:rfc:3986"
    # ITI-68: the attachment's URL gives the file back, byte for byte.
    retrieved = client.get(f"/fhir/{resource.content[0].attachment.url}", HTTP_ACCEPT="application/pdf", **headers)
    assert retrieved.status_code == 200 and retrieved.content == pdf


def test_the_same_transaction_twice_makes_no_second_copy(client, nir_world):
    headers, body = _bearer(nir_world.dr_house), pdsm_bundle(nir_world.dr_house, text_pdf("Deux fois"))
    first = _post(client, headers, body).json()
    count = Document.objects.count()
    second = _post(client, headers, body)
    assert second.status_code == 200
    assert Document.objects.count() == count
    again = Bundle.model_validate(second.json())
    assert [e.response.status for e in again.entry] == ["200 OK", "200 OK", "200 OK"]
    assert again.entry[1].response.location == first["entry"][1]["response"]["location"]


def test_the_same_master_identifier_with_another_file_is_a_conflict(client, nir_world):
    headers = _bearer(nir_world.dr_house)
    assert _post(client, headers, pdsm_bundle(nir_world.dr_house, text_pdf("Premier"))).status_code == 200
    count = Document.objects.count()
    message = _outcome(_post(client, headers, pdsm_bundle(nir_world.dr_house, text_pdf("Autre"))), 409)
    assert "entry[1]" in message and "masterIdentifier" in message
    assert Document.objects.count() == count


def test_one_bad_entry_refuses_the_whole_bundle_and_stores_nothing(client, nir_world, settings):
    headers = _bearer(nir_world.dr_house)
    body = pdsm_bundle(nir_world.dr_house, text_pdf("Bon"))
    bad = json.loads(json.dumps(body["entry"][1]))
    bad["fullUrl"] = "urn:uuid:bbbbbbbb-0000-0000-0000-000000000002"
    bad["resource"]["masterIdentifier"]["value"] = "urn:oid:1.2.250.1.213.1.4.8.99999.102"
    bad["resource"]["type"]["coding"] = [{"system": "http://loinc.org", "code": "99999-9"}]
    bad["resource"]["content"][0]["attachment"] = {
        "contentType": "application/pdf", "data": base64.b64encode(text_pdf("Mauvais")).decode()}
    body["entry"].append(bad)
    count, files = Document.objects.count(), sorted(Path(settings.MEDIA_ROOT).rglob("*"))
    message = _outcome(_post(client, headers, body), 422)
    assert message.startswith("entry[3]:") and "http://loinc.org|99999-9" in message
    assert Document.objects.count() == count
    assert sorted(Path(settings.MEDIA_ROOT).rglob("*")) == files


def test_a_refused_record_refuses_the_bundle_as_not_found(client, nir_world):
    count = Document.objects.count()
    message = _outcome(_post(client, _bearer(nir_world.stranger), pdsm_bundle(nir_world.dr_house, text_pdf("x"))), 404)
    assert message.startswith("entry[1]:")
    assert Document.objects.count() == count


@pytest.mark.parametrize(("code", "doc_type"), [
    ("34108-1", DocumentType.CONSULTATION_REPORT), ("68604-8", DocumentType.IMAGING_REPORT),
    ("47420-5", DocumentType.FUNCTIONAL_ASSESSMENT), ("60593-1", DocumentType.MEDICATION_DISPENSING),
])
def test_loinc_types_of_the_dmp_value_set_are_filed_under_our_types(client, world, code, doc_type):
    body = _doc(world.record.pk, text_pdf(code), type={"coding": [{"system": "http://loinc.org", "code": code}]})
    response = _post(client, _bearer(world.dr_house), body, url=DR)
    assert response.status_code == 201, response.content[:500]
    resource = DocumentReference.model_validate(response.json())
    assert Document.objects.get(pk=int(resource.id)).doc_type == doc_type
    assert {(c.system, c.code) for c in resource.type.coding} >= {("http://loinc.org", code)}


def test_a_french_type_code_is_mapped_and_an_unknown_one_refused_by_name(client, world):
    headers = _bearer(world.dr_house)
    system = "https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire"
    body = _doc(world.record.pk, text_pdf("ALD"), type={"coding": [{"system": system, "code": "PROT_ALD"}]})
    response = _post(client, headers, body, url=DR)
    assert response.status_code == 201
    assert Document.objects.get(pk=int(response.json()["id"])).doc_type == DocumentType.ALD_PROTOCOL
    body = _doc(world.record.pk, text_pdf("KOS"), type={"coding": [{"system": system, "code": "IMG-KOS"}]})
    assert f"{system}|IMG-KOS" in _outcome(_post(client, headers, body, url=DR), 422)


def test_a_push_keeps_the_client_identifiers_and_codings(client, world):
    extra = {
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.3.4.99"},
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:5b1d1d0e-4e0c-4c4e-9e57-3c3b0f7a9a10"}],
        "category": [{"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/"
                                            "TRE-A03-ClasseDocument", "code": "10"}]}],
    }
    headers = _bearer(world.dr_house)
    created = _post(client, headers, _doc(world.record.pk, text_pdf("Identifiants"), **extra), url=DR)
    assert created.status_code == 201
    read = DocumentReference.model_validate(client.get(f"{DR}/{created.json()['id']}", **headers).json())
    assert (read.masterIdentifier.system, read.masterIdentifier.value) == ("urn:ietf:rfc:3986", "urn:oid:1.2.3.4.99")
    assert "urn:uuid:5b1d1d0e-4e0c-4c4e-9e57-3c3b0f7a9a10" in {i.value for i in read.identifier}
    assert "urn:dmp:content-sha256" in {i.system for i in read.identifier}
    assert ("http://loinc.org", "11488-4") in {(c.system, c.code) for c in read.type.coding}
    assert "10" in {c.code for c in read.category[0].coding}


def test_a_subject_given_by_its_ins_nir_identifier_is_the_record(client, nir_world):
    body = _doc(0, text_pdf("INS"), subject={"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": NIR}})
    response = _post(client, _bearer(nir_world.dr_house), body, url=DR)
    assert response.status_code == 201, response.content[:500]
    assert Document.objects.get(pk=int(response.json()["id"])).record == nir_world.record
    unknown = _doc(0, text_pdf("INS2"), subject={"reference": "Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|"
                                                               "180017512345612"})
    _outcome(_post(client, _bearer(nir_world.dr_house), unknown, url=DR), 404)


def test_security_labels_map_to_the_visibility_flags_and_others_are_refused(client, world):
    headers = _bearer(world.dr_house)
    labels = [{"coding": [{"system": VISIBILITY, "code": "INVISIBLE_PATIENT"}]},
              {"coding": [{"system": VISIBILITY, "code": "MASQUE_PS"}]}]
    response = _post(client, headers, _doc(world.record.pk, text_pdf("Labels"), securityLabel=labels), url=DR)
    assert response.status_code == 201
    document = Document.objects.get(pk=int(response.json()["id"]))
    assert document.is_withheld_from_patient() and document.hidden_from_professionals
    codes = {c["code"] for label in response.json()["securityLabel"] for c in label["coding"]}
    assert {"N", "INVISIBLE_PATIENT", "MASQUE_PS"} <= codes
    restricted = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}]}]
    message = _outcome(_post(client, headers, _doc(world.record.pk, text_pdf("V"), securityLabel=restricted),
                             url=DR), 422)
    assert "v3-Confidentiality|V" in message


def _replacing(record_pk, old_pk, label):
    return _doc(record_pk, text_pdf(label),
                relatesTo=[{"code": "replaces", "target": {"reference": f"DocumentReference/{old_pk}"}}])


def test_relates_to_replaces_makes_a_new_current_version(client, world):
    headers, old = _bearer(world.dr_grant), world.docs["consultation"]
    response = _post(client, headers, _replacing(world.record.pk, old.pk, "v2"), url=DR)
    assert response.status_code == 201, response.content[:500]
    new = DocumentReference.model_validate(response.json())
    assert new.meta.versionId == "2" and new.relatesTo[0].target.reference == f"DocumentReference/{old.pk}"
    old.refresh_from_db()
    assert not old.is_latest_version
    assert client.get(f"{DR}/{old.pk}", **headers).json()["status"] == "superseded"
    listed = {e["resource"]["id"] for e in client.get(DR, {"patient": world.record.pk}, **headers).json()["entry"]}
    assert new.id in listed and str(old.pk) not in listed
    # The history: version 1 from the new id, version 2 from the old one.
    v1 = client.get(f"{DR}/{new.id}/_history/1", **headers)
    assert v1.status_code == 200 and v1.json()["id"] == str(old.pk) and v1["ETag"] == 'W/"1"'
    assert client.get(f"{DR}/{old.pk}/_history/2", **headers).json()["id"] == new.id
    _outcome(client.get(f"{DR}/{new.id}/_history/3", **headers), 404)


def test_replacing_someone_elses_document_is_refused_and_stores_nothing(client, world):
    count = Document.objects.count()
    response = _post(client, _bearer(world.dr_house), _replacing(world.record.pk, world.docs["consultation"].pk, "x"),
                     url=DR)
    assert "author" in _outcome(response, 403)
    assert Document.objects.count() == count
    world.docs["consultation"].refresh_from_db()
    assert world.docs["consultation"].is_latest_version


def test_entered_in_error_withdraws_ones_own_document(client, world):
    headers, document = _bearer(world.dr_grant), world.docs["consultation"]
    read = client.get(f"{DR}/{document.pk}", **headers)
    assert read["ETag"] == 'W/"1"' and read["Last-Modified"] and read.json()["meta"]["versionId"] == "1"
    body = {**read.json(), "status": "entered-in-error"}
    _outcome(client.put(f"{DR}/{document.pk}", body, content_type=FHIR_JSON, HTTP_IF_MATCH='W/"7"', **headers), 412)
    response = client.put(f"{DR}/{document.pk}", body, content_type=FHIR_JSON, HTTP_IF_MATCH='W/"1"', **headers)
    assert response.status_code == 200 and response.json()["status"] == "entered-in-error"
    document.refresh_from_db()
    assert document.status == Document.Status.ENTERED_IN_ERROR  # kept, for the audit log
    listed = client.get(DR, {"patient": world.record.pk}, **headers).json().get("entry", [])
    assert str(document.pk) not in {e["resource"]["id"] for e in listed}
    assert AuditEntry.objects.filter(action=Action.WITHDRAW_DOCUMENT, allowed=True,
                                     object_id=str(document.pk)).exists()


def test_withdrawing_someone_elses_document_is_refused(client, world):
    document = world.docs["consultation"]
    body = {"resourceType": "DocumentReference", "status": "entered-in-error",
            "content": [{"attachment": {"url": f"Binary/{document.pk}"}}]}
    assert "author" in _outcome(client.put(f"{DR}/{document.pk}", body, content_type=FHIR_JSON,
                                           **_bearer(world.dr_house)), 403)
    _outcome(client.put(f"{DR}/{document.pk}", body, content_type=FHIR_JSON, **_bearer(world.stranger)), 404)
    document.refresh_from_db()
    assert document.status == Document.Status.CURRENT


def test_a_batch_answers_each_entry_on_its_own(client, world):
    headers = _bearer(world.dr_house)
    good = _doc(world.record.pk, text_pdf("Lot bon"))
    bad = _doc(world.record.pk, text_pdf("Lot mauvais"), type={"coding": [{"system": "http://loinc.org",
                                                                            "code": "00000-0"}]})
    body = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": good, "request": {"method": "POST", "url": "DocumentReference"}},
        {"resource": bad, "request": {"method": "POST", "url": "DocumentReference"}},
        {"request": {"method": "DELETE", "url": f"DocumentReference/{world.docs['consultation'].pk}"}},
    ]}
    response = _post(client, headers, body)
    assert response.status_code == 200
    answer = Bundle.model_validate(response.json())
    assert answer.type == "batch-response"
    assert [e.response.status for e in answer.entry] == ["201 Created", "422", "422"]
    assert "00000-0" in answer.entry[1].response.outcome.issue[0].diagnostics


@pytest.mark.parametrize("body", [
    {"resourceType": "Patient"},
    {"resourceType": "Bundle", "type": "collection", "entry": []},
    {"resourceType": "Bundle", "type": "transaction", "entry": []},
])
def test_what_is_not_a_transaction_or_batch_is_refused(client, world, body):
    response = _post(client, _bearer(world.dr_house), body)
    assert response.status_code in (400, 422)
    OperationOutcome.model_validate(response.json())


def test_the_bundle_endpoint_needs_a_professional_token(client, world):
    response = client.post("/fhir/", {"resourceType": "Bundle", "type": "batch"}, content_type=FHIR_JSON)
    assert response.status_code == 401


def test_a_refusal_met_while_storing_rolls_back_the_documents_and_files_already_written(client, world, settings):
    """The first document is stored before the service refuses the second (replacing a document
    one did not write): the whole Bundle is undone, rows and files."""
    headers = _bearer(world.dr_house)
    body = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _doc(world.record.pk, text_pdf("Stocké puis défait")),
         "request": {"method": "POST", "url": "DocumentReference"}},
        {"resource": _replacing(world.record.pk, world.docs["consultation"].pk, "Remplacement refusé"),
         "request": {"method": "POST", "url": "DocumentReference"}},
    ]}
    count, files = Document.objects.count(), sorted(Path(settings.MEDIA_ROOT).rglob("*"))
    assert "author" in _outcome(_post(client, headers, body), 403)
    assert Document.objects.count() == count
    assert sorted(Path(settings.MEDIA_ROOT).rglob("*")) == files


def test_a_withdrawn_document_is_no_copy_its_file_can_be_published_again(client, nir_world):
    """The author withdraws a document published by mistake, then publishes the same Bundle
    (the same file, the same masterIdentifier) again: a new current document, the withdrawn
    one kept as it was."""
    headers, body = _bearer(nir_world.dr_house), pdsm_bundle(nir_world.dr_house, text_pdf("Retiré puis republié"))
    first = Bundle.model_validate(_post(client, headers, body).json())
    withdrawn_id = first.entry[1].response.location.split("/")[1]
    read = client.get(f"{DR}/{withdrawn_id}", **headers).json()
    response = client.put(f"{DR}/{withdrawn_id}", {**read, "status": "entered-in-error"}, content_type=FHIR_JSON,
                          **headers)
    assert response.status_code == 200, response.content[:500]
    again = Bundle.model_validate(_post(client, headers, body).json())
    assert [e.response.status for e in again.entry] == ["200 OK", "201 Created", "201 Created"]
    republished = Document.objects.get(pk=int(again.entry[1].response.location.split("/")[1]))
    withdrawn = Document.objects.get(pk=int(withdrawn_id))
    assert republished.pk != withdrawn.pk and republished.content_hash == withdrawn.content_hash
    assert republished.status == Document.Status.CURRENT and withdrawn.status == Document.Status.ENTERED_IN_ERROR
    with withdrawn.file.open("rb") as old, republished.file.open("rb") as new:
        assert old.read() == new.read()
    # The same Bundle a third time: now the republished document is the copy, nothing stored.
    count = Document.objects.count()
    third = Bundle.model_validate(_post(client, headers, body).json())
    assert [e.response.status for e in third.entry] == ["200 OK", "200 OK", "200 OK"]
    assert Document.objects.count() == count
