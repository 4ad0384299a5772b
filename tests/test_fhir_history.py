"""Versions beyond the DocumentReference read: the Patient's version and its headers, its
`_history/{vid}` (the one version we keep) and `_history`, and a document's `_history`: the
versions of its chain the professional may read, each its own DocumentReference."""

from __future__ import annotations

import base64

import pytest
from fhir.resources.R4B.bundle import Bundle

from dmp.policy import Actor
from dmp.services import api_token_create
from tests.sample_files import text_pdf

pytestmark = pytest.mark.django_db

FHIR_JSON = "application/fhir+json"
DR = "/fhir/DocumentReference"


def _bearer(pro) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(actor=Actor(pro.user), label='LGC')[1]}"}


def test_a_patient_read_carries_its_version_and_the_version_changes_with_the_identity(client, world):
    headers, url = _bearer(world.dr_house), f"/fhir/Patient/{world.record.pk}"
    read = client.get(url, **headers)
    version = read.json()["meta"]["versionId"]
    assert read["ETag"] == f'W/"{version}"' and read["Last-Modified"] and read.json()["meta"]["lastUpdated"]
    assert client.get(f"{url}/_history/{version}", **headers).json()["id"] == str(world.record.pk)
    history = Bundle.model_validate(client.get(f"{url}/_history", **headers).json())
    assert history.type == "history" and history.total == 1
    assert history.entry[0].resource.meta.versionId == version
    world.record.family_name = "Martin-Durand"
    world.record.save(update_fields=["family_name"])
    assert client.get(url, **headers).json()["meta"]["versionId"] != version
    # Only the current version is kept: the old one is gone (404, like any missing resource).
    assert client.get(f"{url}/_history/{version}", **headers).status_code == 404


@pytest.mark.parametrize("suffix", ["", "/_history", "/_history/1"])
def test_a_patient_version_or_history_is_refused_like_the_read(client, world, suffix):
    for pro in (world.stranger, world.blocked_kine):
        response = client.get(f"/fhir/Patient/{world.record.pk}{suffix}", **_bearer(pro))
        assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"


def test_a_document_history_holds_the_versions_of_its_chain(client, world):
    headers, old = _bearer(world.dr_grant), world.docs["consultation"]
    body = {"resourceType": "DocumentReference", "status": "current",
            "subject": {"reference": f"Patient/{world.record.pk}"},
            "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
            "relatesTo": [{"code": "replaces", "target": {"reference": f"DocumentReference/{old.pk}"}}],
            "content": [{"attachment": {"contentType": "application/pdf",
                                        "data": base64.b64encode(text_pdf("v2")).decode()}}]}
    new = client.post(DR, body, content_type=FHIR_JSON, **headers).json()["id"]
    for pk in (old.pk, new):
        history = Bundle.model_validate(client.get(f"{DR}/{pk}/_history", **headers).json())
        assert history.type == "history"
        assert [(e.resource.id, e.resource.meta.versionId) for e in history.entry] == [(new, "2"), (str(old.pk), "1")]
        assert [e.response.etag for e in history.entry] == ['W/"2"', 'W/"1"']
    single = Bundle.model_validate(client.get(f"{DR}/{world.docs['imaging'].pk}/_history", **headers).json())
    assert single.total == 1 and single.entry[0].resource.id == str(world.docs["imaging"].pk)
    assert client.get(f"{DR}/{old.pk}/_history", **_bearer(world.stranger)).status_code == 404
