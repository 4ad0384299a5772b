"""The IHE MHD ITI-67 parameters beyond the first ones, each mapped onto what we keep: the
context and format codings a client sent (`setting`, `facility`, `event`, `format`), the
visibility flags (`security-label`), the mime type, the version a document replaces
(`related`); the token forms (`code`, `system|code`, `|code`, `system|`) and modifiers (`:not`,
`:missing`), and the string modifiers on the author's names — never beyond what the policy
lets the professional read."""

from __future__ import annotations

import base64

import pytest

from dmp.models import Document
from dmp.policy import Actor
from dmp.services import api_token_create
from tests.sample_files import text_pdf

pytestmark = pytest.mark.django_db

FHIR_JSON = "application/fhir+json"
DR = "/fhir/DocumentReference"
STRICT = {"HTTP_PREFER": "handling=strict"}
SNOMED = "http://snomed.info/sct"
SETTING = "https://mos.esante.gouv.fr/NOS/TRE_A00-ProducteurDocNonPS/FHIR/TRE-A00-ProducteurDocNonPS"
FACILITY = "https://mos.esante.gouv.fr/NOS/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite"
FORMAT = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
VISIBILITY = "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"


def _bearer(pro) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(actor=Actor(pro.user), label='LGC')[1]}"}


def _push(client, headers, record_pk, label, **extra) -> int:
    body = {"resourceType": "DocumentReference", "status": "current", "subject": {"reference": f"Patient/{record_pk}"},
            "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]}, "description": label,
            "context": {"period": {"start": "2026-03-03"}},
            "content": [{"attachment": {"contentType": "application/pdf",
                                        "data": base64.b64encode(text_pdf(label)).decode()}}]}
    for key, value in extra.items():
        body[key] = {**body[key], **value} if isinstance(value, dict) and key in body else value
    response = client.post(DR, body, content_type=FHIR_JSON, **headers)
    assert response.status_code == 201, response.content[:500]
    return int(response.json()["id"])


def _found(client, headers, record_pk, **params) -> set[int]:
    response = client.get(DR, {"patient": record_pk, "_count": 100, **params}, **headers, **STRICT)
    assert response.status_code == 200, response.content[:500]
    return {int(entry["resource"]["id"]) for entry in response.json().get("entry", [])}


@pytest.fixture
def coded(client, world):
    """A document pushed by Dr House with a practice setting, a facility type, an event and a
    format, and all that Dr House may read of Alice's record."""
    headers = _bearer(world.dr_house)
    context = {"practiceSetting": {"coding": [{"system": SETTING, "code": "SA07"}]},
               "facilityType": {"coding": [{"system": FACILITY, "code": "SA01"}]},
               "event": [{"coding": [{"system": SNOMED, "code": "183452005"}]}]}
    pk = _push(client, headers, world.record.pk, "Codé", context=context,
               content=[{"attachment": {"contentType": "application/pdf",
                                        "data": base64.b64encode(text_pdf("Codé")).decode()},
                         "format": {"system": FORMAT, "code": "urn:ihe:iti:xds-sd:pdf:2008"}}])
    return headers, pk, _found(client, headers, world.record.pk)


def test_the_context_codings_a_client_sent_are_read_back_and_searched(client, world, coded):
    headers, pk, everything = coded
    read = client.get(f"{DR}/{pk}", **headers).json()
    assert read["context"]["practiceSetting"]["coding"][0]["code"] == "SA07"
    assert read["context"]["facilityType"]["coding"][0]["code"] == "SA01"
    assert read["context"]["event"][0]["coding"][0]["code"] == "183452005"
    assert read["content"][0]["format"]["code"] == "urn:ihe:iti:xds-sd:pdf:2008"
    found = lambda **p: _found(client, headers, world.record.pk, **p)  # noqa: E731
    assert found(setting=f"{SETTING}|SA07") == {pk} == found(setting="SA07") == found(facility=f"{FACILITY}|")
    assert found(event=f"{SNOMED}|183452005") == {pk} == found(**{"setting:missing": "false"})
    assert found(setting="|SA07") == set()  # `|code`: a coding without a system, which this is not
    assert found(setting=f"{SETTING}|SA99") == set() == found(facility=f"{SETTING}|SA01")
    assert found(**{"event:not": "183452005"}) == everything - {pk} == found(**{"event:missing": "true"})
    assert found(setting="SA99,SA07") == {pk}  # comma: any of them
    assert found(setting="SA07", facility="SA02") == set()  # two parameters: both


def test_format_is_the_format_code_or_the_mime_type(client, world, coded):
    headers, pk, everything = coded
    found = lambda **p: _found(client, headers, world.record.pk, **p)  # noqa: E731
    assert found(format="urn:ietf:bcp:13|application/pdf") == everything
    assert found(format="urn:ietf:bcp:13|image/png") == set()
    assert found(format=f"{FORMAT}|urn:ihe:iti:xds-sd:pdf:2008") == {pk}
    # Documents whose client sent no format are "the mime type says it all".
    assert found(format=f"{FORMAT}|urn:ihe:iti:xds:2017:mimeTypeSufficient") == everything - {pk}
    assert found(**{"format:missing": "true"}) == set()


def test_security_label_is_the_visibility_and_never_shows_what_the_policy_hides(client, world):
    headers = _bearer(world.dr_grant)
    withheld = _push(client, headers, world.record.pk, "Résultat à annoncer",
                     securityLabel=[{"coding": [{"system": VISIBILITY, "code": "INVISIBLE_PATIENT"}]}])
    found = lambda pro_headers, **p: _found(client, pro_headers, world.record.pk, **p)  # noqa: E731
    everything = found(headers)
    assert found(headers, **{"security-label": f"{VISIBILITY}|INVISIBLE_PATIENT"}) >= {withheld}
    assert withheld not in found(headers, **{"security-label:not": "INVISIBLE_PATIENT"})
    confidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality|N"
    assert found(headers, **{"security-label": confidentiality}) == everything
    assert found(headers, **{"security-label:missing": "true"}) == set()
    # The documents hidden from professionals are listed to no professional who may not read
    # them, whatever the label asked: the physiotherapist never sees them.
    kine = _bearer(world.kine)
    hidden = {world.docs["hidden"].pk, world.docs["hidden_imaging"].pk}
    assert not found(kine, **{"security-label": "MASQUE_PS"}) & hidden
    assert not found(kine, **{"security-label:not": "INVISIBLE_PATIENT"}) & hidden


def test_category_and_type_token_forms(client, world):
    headers = _bearer(world.dr_house)
    found = lambda **p: _found(client, headers, world.record.pk, **p)  # noqa: E731
    everything = found()
    imaging = found(category="imaging")
    assert imaging and imaging < everything
    assert found(category="urn:dmp:space|imaging") == imaging == found(type="http://loinc.org|18748-4")
    assert found(category="|imaging") == set()  # ours always carry their system
    assert found(category="urn:dmp:space|") == everything
    assert found(**{"category:not": "imaging"}) == everything - imaging
    assert found(**{"type:not": "urn:dmp:document-type|imaging_report"}) >= everything - imaging
    assert found(**{"category:missing": "false"}) == everything


def test_related_finds_the_version_that_replaces_a_document(client, world):
    headers, old = _bearer(world.dr_grant), world.docs["consultation"]
    new = _push(client, headers, world.record.pk, "Version 2",
                relatesTo=[{"code": "replaces", "target": {"reference": f"{DR}/{old.pk}"}}])
    found = lambda **p: _found(client, headers, world.record.pk, **p)  # noqa: E731
    assert found(related=f"DocumentReference/{old.pk}") == {new} == found(**{"related:missing": "false"})
    assert new not in found(**{"related:missing": "true"}) and found(**{"related:missing": "true"})
    assert found(related="DocumentReference/999999") == set()


def test_author_names_start_with_ignoring_case_and_accents_exact_and_contains(client, world):
    user = world.dr_grant.user
    user.first_name, user.last_name = "Hélène", "Écuyer-Grant"
    user.save(update_fields=["first_name", "last_name"])
    headers = _bearer(world.dr_house)
    found = lambda **p: _found(client, headers, world.record.pk, **p)  # noqa: E731
    by_grant = {pk for pk in found() if Document.objects.get(pk=pk).author_professional_id == world.dr_grant.pk}
    assert by_grant
    assert found(**{"author.family": "ecuy"}) == by_grant == found(**{"author.given": "HELE"})
    assert found(**{"author.family": "grant"}) == set()  # starts with, not contains
    assert found(**{"author.family:contains": "GRANT"}) == by_grant == found(**{"author.given:contains": "lèn"})
    assert found(**{"author.family:exact": "Écuyer-Grant"}) == by_grant
    assert found(**{"author.family:exact": "ecuyer-grant"}) == set() == found(**{"author.family:exact": "Écuyer"})


@pytest.mark.parametrize("params", [
    {"security-label:missing": "maybe"}, {"setting": ""}, {"related:missing": "1"}, {"format": "|"},
])
def test_a_malformed_value_is_a_400_before_anything_is_read(client, world, params):
    response = client.get(DR, {"patient": world.record.pk, **params}, **_bearer(world.dr_house))
    assert response.status_code == 400 and response.json()["resourceType"] == "OperationOutcome"


def test_the_new_parameters_change_no_refusal(client, world):
    for pro in (world.stranger, world.blocked_kine):
        response = client.get(DR, {"patient": world.record.pk, "security-label": "N", "format:missing": "false"},
                              **_bearer(pro))
        assert response.status_code == 404
