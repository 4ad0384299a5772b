"""An off-the-shelf FHIR client library (`fhirclient`, SMART on FHIR's Python client) works
against the API unchanged: it reads the patient, searches their documents and reads one, and
its own R4 models parse every answer. Only the Bearer header is added to its HTTP session."""

from __future__ import annotations

import pytest
from fhirclient import client as fhir_client
from fhirclient.models.documentreference import DocumentReference
from fhirclient.models.patient import Patient

from dmp.policy import Actor
from dmp.services import api_token_create
from tests.personas import build_world

pytestmark = pytest.mark.django_db(transaction=True)


def _client(live_server, raw: str) -> fhir_client.FHIRClient:
    smart = fhir_client.FHIRClient(settings={"app_id": "dmp-tests", "api_base": f"{live_server.url}/fhir"})
    smart.server.session.headers["Authorization"] = f"Bearer {raw}"
    return smart


def test_fhirclient_reads_the_patient_and_their_documents(live_server):
    world = build_world()
    _token, raw = api_token_create(actor=Actor(world.dr_house.user), label="fhirclient")
    smart = _client(live_server, raw)
    server = smart.server

    patient = Patient.read(str(world.record.pk), server)
    assert patient.id == str(world.record.pk)
    assert patient.name[0].family == world.record.family_name
    assert patient.birthDate.isostring == world.record.birth_date.isoformat()

    search = DocumentReference.where(struct={"patient": str(world.record.pk)})
    documents = list(search.perform_resources_iter(server))
    ids = {document.id for document in documents}
    assert str(world.docs["consultation"].pk) in ids and str(world.docs["hidden"].pk) in ids
    assert str(world.docs["leo_visit"].pk) not in ids
    assert all(document.subject.reference == f"Patient/{world.record.pk}" for document in documents)

    imaging = DocumentReference.where(struct={"patient": str(world.record.pk), "category": "imaging"})
    assert {d.id for d in imaging.perform_resources_iter(server)} == {
        str(world.docs["imaging"].pk), str(world.docs["hidden_imaging"].pk)}

    one = DocumentReference.read(str(world.docs["consultation"].pk), server)
    assert one.type.coding[0].code == "consultation_report"
    assert one.content[0].attachment.url == f"Binary/{world.docs['consultation'].pk}"
    assert one.content[0].attachment.contentType == "application/pdf"


def test_fhirclient_gets_404_for_what_the_policy_refuses(live_server):
    from fhirclient.server import FHIRNotFoundException

    world = build_world()
    _token, raw = api_token_create(actor=Actor(world.stranger.user), label="fhirclient")
    server = _client(live_server, raw).server
    with pytest.raises(FHIRNotFoundException):
        DocumentReference.read(str(world.docs["consultation"].pk), server)
    with pytest.raises(FHIRNotFoundException):
        list(DocumentReference.where(struct={"patient": str(world.record.pk)}).perform_resources_iter(server))
