"""The MHD flow driven by an independent client library against a live server: `fhirclient`
(SMART on FHIR's Python client) publishes the PDSm guide's ITI-65 Bundle, searches the
patient's documents (ITI-67) and retrieves the file (ITI-68) through its own HTTP session;
every body is parsed by its R4 models and validated by `fhir.resources`."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle as ValidatedBundle
from fhir.resources.R4B.documentreference import DocumentReference as ValidatedDocumentReference
from fhirclient import client as fhir_client
from fhirclient.models.bundle import Bundle
from fhirclient.models.documentreference import DocumentReference

from dmp.models import Document
from dmp.policy import Actor
from dmp.services import api_token_create
from tests.personas import build_world
from tests.sample_files import text_pdf
from tests.test_fhir_mhd import NIR, pdsm_bundle

pytestmark = pytest.mark.django_db(transaction=True)


def test_fhirclient_publishes_searches_and_retrieves_an_mhd_document(live_server):
    world = build_world()
    world.record.nir = NIR
    world.record.save(update_fields=["nir"])
    _token, raw = api_token_create(actor=Actor(world.dr_house.user), label="fhirclient")
    smart = fhir_client.FHIRClient(settings={"app_id": "dmp-tests", "api_base": f"{live_server.url}/fhir/"})
    server = smart.server
    server.session.headers["Authorization"] = f"Bearer {raw}"
    pdf = text_pdf("Publié par un client indépendant")

    # ITI-65: the transaction Bundle, posted to the base.
    response = server.post_json("", pdsm_bundle(world.dr_house, pdf))
    assert response.status_code == 200
    answer = Bundle(response.json())
    ValidatedBundle.model_validate(response.json())
    assert answer.type == "transaction-response"
    assert [entry.response.status for entry in answer.entry] == ["200 OK", "201 Created", "201 Created"]
    document_id = answer.entry[1].response.location.split("/")[1]

    # Twice: nothing more is stored.
    count = Document.objects.count()
    again = Bundle(server.post_json("", pdsm_bundle(world.dr_house, pdf)).json())
    assert again.entry[1].response.location == answer.entry[1].response.location
    assert Document.objects.count() == count

    # ITI-67: the patient's current documents.
    search = DocumentReference.where(struct={"patient": str(world.record.pk), "status": "current"})
    found = {document.id: document for document in search.perform_resources_iter(server)}
    assert document_id in found
    published = found[document_id]
    assert published.masterIdentifier.value == "urn:oid:1.2.250.1.213.1.4.8.99999.101"
    assert published.status == "current" and published.meta.versionId == "1"
    ValidatedDocumentReference.model_validate(published.as_json())

    # ITI-68: the attachment's URL, byte for byte.
    assert server.request_data(published.content[0].attachment.url, headers={"Accept": "application/pdf"}) == pdf
