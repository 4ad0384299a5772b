"""The OpenAPI 3 description of the FHIR API (drf-spectacular, /fhir/openapi.json): public,
valid, lists every FHIR endpoint with FHIR JSON answers; and a schemathesis run against the
WSGI application, as dr_house with an API token, finds no server error in any operation."""

from __future__ import annotations

import re

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error

from dmp.policy import Actor
from dmp.services import api_token_create
from dmp.wsgi import application

SCHEMA_URL = "/fhir/openapi.json"
FHIR_JSON = "application/fhir+json"
# Every endpoint of the three FHIR modules: (method, path; "{}" stands for any path parameter).
EXPECTED = {
    ("get", "/fhir/metadata"),
    ("get", "/fhir/Patient"), ("post", "/fhir/Patient/_search"), ("get", "/fhir/Patient/{}"),
    ("get", "/fhir/Patient/{}/$summary"),
    ("get", "/fhir/AuditEvent"),
    ("get", "/fhir/DocumentReference"), ("post", "/fhir/DocumentReference"), ("get", "/fhir/DocumentReference/{}"),
    ("post", "/fhir/Binary"), ("get", "/fhir/Binary/{}"),
    *((method, path) for kind in ("AllergyIntolerance", "Condition", "MedicationStatement", "Immunization")
      for method, path in (("get", f"/fhir/{kind}"), ("get", f"/fhir/{kind}/{{}}"))),
}
MAX_EXAMPLES = 8


@pytest.fixture
def schema(client, db):
    response = client.get(SCHEMA_URL)  # no credentials: public
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/") and "json" in response["Content-Type"]
    return response.json()


def test_the_schema_is_valid_openapi_3_and_lists_every_fhir_endpoint(schema):
    validate_schema(schema)  # against the OpenAPI 3.0 JSON schema
    assert schema["openapi"].startswith("3.")
    offered = {(method, re.sub(r"\{[^}]+\}", "{}", path))
               for path, operations in schema["paths"].items() for method in operations if method != "parameters"}
    assert EXPECTED <= offered, EXPECTED - offered
    assert all(p.startswith("/fhir/") for p in schema["paths"]) and SCHEMA_URL not in schema["paths"]
    # Each operation answers FHIR JSON, documents its parameters, and says how to authenticate.
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            ok = operation["responses"].get("200") or operation["responses"].get("201")
            assert ok and FHIR_JSON in ok["content"], (path, method)
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == {part[1:-1] for part in path.split("/") if part.startswith("{")}, (path, method)
            if path != "/fhir/metadata":
                assert {"bearerAuth": []} in operation["security"], (path, method)
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "An API token (dmp_…) created in the professional portal.",
    }
    search = {p["name"] for p in schema["paths"]["/fhir/Patient"]["get"]["parameters"]}
    assert {"identifier", "family", "given", "birthdate"} <= search
    assert "patient" in {p["name"] for p in schema["paths"]["/fhir/AuditEvent"]["get"]["parameters"]}


@pytest.mark.slow
@pytest.mark.django_db
def test_schemathesis_finds_no_server_error(world, settings_override):
    _token, raw = api_token_create(actor=Actor(world.dr_house.user), label="schemathesis")
    headers = {"Authorization": f"Bearer {raw}"}
    api = schemathesis.openapi.from_wsgi(SCHEMA_URL, application)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= len(EXPECTED)
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error], headers=headers)
            # Again with the ids of things that exist, so that the generated rest meets real data.
            if _use_real_ids(case, record=world.record.pk, document=world.docs["consultation"].pk):
                response = case.call(headers=headers)
                case.validate_response(response, checks=[not_a_server_error], headers=headers)

        run()


def _use_real_ids(case, *, record: int, document: int) -> bool:
    """Put existing ids in the case's path and `patient` parameter; False if it has none."""
    changed = False
    for name in list(case.path_parameters or {}):
        if name in ("resource_type",):
            continue
        is_document = case.path.startswith(("/fhir/DocumentReference", "/fhir/Binary"))
        case.path_parameters[name] = str(document if is_document else record)
        changed = True
    if isinstance(case.query, dict) and "patient" in case.query:
        case.query["patient"] = str(record)
        changed = True
    return changed


@pytest.fixture
def settings_override(settings):
    """The schemathesis WSGI client calls the application under its own host name, and the
    application must keep the test's database connection (and transaction) open, as Django's
    test client does."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield settings
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
