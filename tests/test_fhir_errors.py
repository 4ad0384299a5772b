"""Everything under /fhir/ answers FHIR: an OperationOutcome with the right status for every
unknown type, operation and path, never Django's HTML page; JSON only (406 for XML); the
Practitioner and Organization every reference points to, and no directory; and a
CapabilityStatement that declares exactly the routes and search parameters the code has."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.practitioner import Practitioner

from dmp.api.fhir import base, metadata
from dmp.fhir import IDNPS_SYSTEM
from dmp.models import Document, Organisation
from dmp.policy import Actor
from dmp.services import api_token_create
from tests.personas import make_document, make_professional

pytestmark = pytest.mark.django_db


def _bearer(pro) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(actor=Actor(pro.user), label='Cabinet')[1]}"}


def _outcome(response, status: int) -> OperationOutcome:
    assert response.status_code == status, response.content[:400]
    assert response["Content-Type"].startswith("application/fhir+json")
    return OperationOutcome.model_validate(response.json())


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/fhir/Encounter"), ("get", "/fhir/Procedure/1"), ("get", "/fhir/Encounter?patient=1"),
    ("get", "/fhir/Patient/1/$everything"), ("post", "/fhir/Patient/$match"), ("get", "/fhir/$export"),
    ("get", "/fhir/.well-known/smart-configuration"), ("get", "/fhir/Patient/1/extra/segments"),
    ("delete", "/fhir/Unknown/1"), ("get", "/fhir/patient"), ("get", "/fhir/Patient/"),
])
@pytest.mark.parametrize("who", ["token", "nobody"])
def test_every_unknown_path_is_a_fhir_404(client, world, method, path, who):
    headers = _bearer(world.dr_house) if who == "token" else {}
    outcome = _outcome(getattr(client, method)(path, **headers), 404)
    assert outcome.issue[0].code == "not-found"
    assert "<html" not in outcome.issue[0].diagnostics.lower()


@pytest.mark.parametrize(("method", "path"), [
    ("delete", "/fhir/Patient/{pk}"), ("put", "/fhir/Patient/{pk}"), ("post", "/fhir/metadata"),
    ("delete", "/fhir/AuditEvent"), ("post", "/fhir/Practitioner/{house}"), ("patch", "/fhir/Condition"),
])
def test_an_interaction_a_type_does_not_offer_is_405(client, world, method, path):
    path = path.format(pk=world.record.pk, house=world.dr_house.pk)
    outcome = _outcome(getattr(client, method)(path, content_type="application/fhir+json", **_bearer(world.dr_house)),
                       405)
    assert outcome.issue[0].code == "not-supported"


@pytest.mark.parametrize("request_", [{"_format": "xml"}, {"_format": "application/fhir+xml"},
                                      {"_format": "text/turtle"}, {"HTTP_ACCEPT": "application/fhir+xml"},
                                      {"HTTP_ACCEPT": "application/xml"}])
def test_xml_is_406_and_json_is_answered(client, world, request_):
    headers = _bearer(world.dr_house)
    query = {k: v for k, v in request_.items() if not k.startswith("HTTP_")}
    accept = {k: v for k, v in request_.items() if k.startswith("HTTP_")}
    for path in (f"/fhir/Patient/{world.record.pk}", "/fhir/metadata",
                 f"/fhir/DocumentReference?patient={world.record.pk}"):
        outcome = _outcome(client.get(path, query, **headers, **accept), 406)
        assert outcome.issue[0].code == "not-supported"
    for fmt in ("json", "application/fhir+json", "application/json"):
        response = client.get(f"/fhir/Patient/{world.record.pk}", {"_format": fmt}, **headers)
        assert response.status_code == 200 and response.json()["resourceType"] == "Patient"


def test_a_bad_request_is_400_and_a_missing_token_401_as_operation_outcomes(client, world):
    assert _outcome(client.get("/fhir/DocumentReference", **_bearer(world.dr_house)), 400).issue[0].code == "invalid"
    response = client.get(f"/fhir/Patient/{world.record.pk}")
    assert _outcome(response, 401) and response["WWW-Authenticate"] == "Bearer"


def test_a_search_post_without_a_form_body_is_400_not_a_server_error(client, world):
    headers = _bearer(world.dr_house)
    for content_type in ("application/octet-stream", "application/fhir+json"):
        response = client.generic("POST", "/fhir/Patient/_search", b"", content_type=content_type, **headers)
        assert response.status_code in (400, 415) and response.json()["resourceType"] == "OperationOutcome"
    response = client.generic("POST", "/fhir/Patient/_search", b"", **headers)
    assert _outcome(response, 400).issue[0].code == "invalid"


# --- Practitioner and Organization ----------------------------------------------------------

def test_the_authors_of_the_documents_a_professional_may_read_can_be_read_and_no_one_else(client, world):
    house = _bearer(world.dr_house)
    grant = world.dr_grant  # the author of Alice's documents
    response = client.get(f"/fhir/Practitioner/{grant.pk}", **house)
    assert response.status_code == 200
    practitioner = Practitioner.model_validate(response.json())
    assert practitioner.id == str(grant.pk) and practitioner.identifier[0].value == f"8{grant.rpps}"
    assert client.get(f"/fhir/Practitioner/{world.dr_house.pk}", **house).status_code == 200  # oneself
    # Someone who wrote nothing the professional may read is missing, like an unknown id.
    nobody = make_professional("olga_unrelated")
    for pk in (nobody.pk, 99999999, "x1", world.stranger.pk):
        assert _outcome(client.get(f"/fhir/Practitioner/{pk}", **house), 404).issue[0].diagnostics == \
            "Resource not found."
    # The stranger may not read Alice's record: Dr Grant is not theirs to see.
    stranger = _bearer(world.stranger)
    assert client.get(f"/fhir/Practitioner/{grant.pk}", **stranger).status_code == 404
    # A document the reader may not see does not make its author visible: hidden from
    # professionals, written by someone else, it is not the kinésithérapeute's to see.
    writer = make_professional("hana_hidden")
    make_document(world.record, "hidden by writer", author=writer, hidden_from_professionals=True)
    assert client.get(f"/fhir/Practitioner/{writer.pk}", **_bearer(world.kine)).status_code == 404
    assert client.get(f"/fhir/Practitioner/{writer.pk}", **house).status_code == 200  # the médecin traitant
    # Once the only document is archived, the author is no longer referenced.
    Document.objects.filter(author_professional=writer).update(status=Document.Status.ARCHIVED)
    assert client.get(f"/fhir/Practitioner/{writer.pk}", **house).status_code == 404


def test_the_practitioner_search_is_by_id_or_identifier_only_and_never_a_directory(client, world):
    house = _bearer(world.dr_house)
    grant = world.dr_grant
    for params in ({"identifier": f"{IDNPS_SYSTEM}|8{grant.rpps}"}, {"identifier": grant.rpps}, {"_id": grant.pk}):
        bundle = client.get("/fhir/Practitioner", params, **house).json()
        assert bundle["total"] == 1 and bundle["entry"][0]["resource"]["id"] == str(grant.pk), params
    nobody = make_professional("olga_unrelated")
    for params in ({"identifier": f"{IDNPS_SYSTEM}|8{nobody.rpps}"}, {"_id": nobody.pk}, {"identifier": "urn:x|1"}):
        bundle = client.get("/fhir/Practitioner", params, **house).json()
        assert bundle["total"] == 0 and "entry" not in bundle
    for params in ({}, {"name": "Grant"}, {"family": "Grant"}):
        assert _outcome(client.get("/fhir/Practitioner", params, **house), 400)


def test_an_organization_is_the_professionals_own_facility_only(client, world):
    facility = Organisation.objects.create(name="Clinique du Parc", kind=Organisation.Kind.FACILITY,
                                           finess="590000001", city="Lille")
    other = Organisation.objects.create(name="Hôpital Nord", kind=Organisation.Kind.FACILITY, finess="590000002")
    world.dr_house.facility = facility
    world.dr_house.save(update_fields=["facility"])
    house = _bearer(world.dr_house)
    response = client.get(f"/fhir/Organization/{facility.pk}", **house)
    assert response.status_code == 200 and response.json()["name"] == "Clinique du Parc"
    assert client.get("/fhir/Organization", {"identifier": "urn:oid:1.2.250.1.71.4.2.2|590000001"},
                      **house).json()["total"] == 1
    assert _outcome(client.get(f"/fhir/Organization/{other.pk}", **house), 404)
    assert client.get("/fhir/Organization", {"identifier": "590000002"}, **house).json()["total"] == 0
    assert client.get(f"/fhir/Organization/{facility.pk}", **_bearer(world.dr_grant)).status_code == 404


# --- the CapabilityStatement says exactly what works ----------------------------------------

def _fhir_routes() -> list[str]:
    resolver = next(p for p in get_resolver().url_patterns
                    if isinstance(p, URLResolver) and str(p.pattern) == "fhir/")
    return [p for p in resolver.url_patterns if isinstance(p, URLPattern)]


def _methods(view_class) -> set[str]:
    return {m for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m)}


def test_the_capability_statement_matches_the_routes_and_the_search_parameters(client, world):
    statement = CapabilityStatement.model_validate(client.get("/fhir/metadata").json())
    declared = {r.type: r for r in statement.rest[0].resource}
    # Each route's type and interactions, from the URL patterns and the views' methods.
    offered: dict[str, set[str]] = {}
    for pattern in _fhir_routes():
        view = pattern.callback.view_class
        if view is base.UnknownPath:
            assert pattern is _fhir_routes()[-1]  # the catch-all comes last
            continue
        route = str(pattern.pattern).strip("^$")
        if route == "":  # the base: Bundles of type transaction and batch (IHE MHD ITI-65)
            assert "post" in _methods(view)
            assert {i.code for i in statement.rest[0].interaction} == {"transaction", "batch"}
            continue
        kind, _sep, rest = route.partition("/")
        if kind in ("metadata", "openapi.json") or "$" in rest.replace("\\$", "$"):
            continue
        if not kind[:1].isupper() or not kind.isalpha():
            continue
        interactions = offered.setdefault(kind, set())
        methods = _methods(view)
        if rest in ("", "_search"):
            interactions |= {"search-type"} if "get" in methods or rest == "_search" else set()
            interactions |= {"create"} if "post" in methods and rest == "" else set()
        elif "_history/" in rest:
            interactions |= {"vread"} if "get" in methods else set()
        elif rest.endswith("_history"):
            interactions |= {"history-instance"} if "get" in methods else set()
        else:
            interactions |= {"read"} if "get" in methods else set()
            interactions |= {"update"} if "put" in methods else set()
    assert set(declared) == set(offered)
    for kind, interactions in offered.items():
        assert {i.code for i in declared[kind].interaction} == interactions, kind
    # Each declared search parameter is accepted by the code in strict mode, and nothing else.
    for kind, spec in metadata.RESOURCES.items():
        names = {p.name for p in declared[kind].searchParam or []}
        search = spec.get("search")
        assert names == ({n for n, _t, _d in search.parameters} if search else set())
        assert set(declared[kind].searchInclude or []) == set(search.includes if search else ())
        assert set(declared[kind].searchRevInclude or []) == set(search.revincludes if search else ())
    headers = {**_bearer(world.dr_house), "HTTP_PREFER": "handling=strict"}
    probes = {"patient": world.record.pk, "subject": world.record.pk, "_id": world.dr_house.pk}
    for kind in ("DocumentReference", "AuditEvent", "Condition", "Immunization", "Practitioner"):
        for param in declared[kind].searchParam:
            query = {"patient": world.record.pk} if kind not in ("Practitioner",) else {"_id": world.dr_house.pk}
            if param.name in ("patient", "subject", "patient.identifier"):
                query = {}
            value = probes.get(param.name, {
                "date": "ge2020", "period": "ge2020", "identifier": f"8{world.dr_house.rpps}",
                "patient.identifier": world.record.provisional_id}.get(param.name, "x"))
            response = client.get(f"/fhir/{kind}", {**query, param.name: value}, **headers)
            if response.status_code == 400:
                assert "unknown" not in response.json()["issue"][0]["diagnostics"].lower(), (kind, param.name)
            else:
                assert response.status_code in (200, 404), (kind, param.name, response.content[:200])
        # And an undeclared one is refused.
        response = client.get(f"/fhir/{kind}", {"patient": world.record.pk, "undeclared-parameter": "1"}, **headers)
        assert _outcome(response, 400)
