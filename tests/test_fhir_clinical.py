"""FHIR clinical resources and the International Patient Summary (issue 8): AllergyIntolerance,
Condition, MedicationStatement, Immunization read and searched by patient, and
Patient/{id}/$summary, every answer validated against the fhir.resources R4B models, through the
same policy and audit log as the portals."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.composition import Composition
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from dmp import fhir
from dmp.models import (
    AuditEntry,
    MatrixEntry,
    PersonalProfile,
    ReimbursementLine,
    SelfDeclaredItem,
    SynthesisProblem,
    Vaccination,
)
from dmp.policy import Action, Actor
from dmp.services import api_token_create, synthesis_write
from dmp.services.synthesis import Problem

MODELS = {"Condition": Condition, "AllergyIntolerance": AllergyIntolerance,
          "MedicationStatement": MedicationStatement, "Immunization": Immunization}
CIP13 = "3400930000001"


@pytest.fixture
def chart(world):
    """Alice's synthesis by Dr House, a vaccination, a self-declared allergy, a dispensed medicine."""
    house = Actor(world.dr_house.user)
    synthesis = synthesis_write(
        actor=house, record=world.record,
        problems=[Problem("E11.9", "Type 2 diabetes", date(2019, 3, 1)), Problem("I10", "Hypertension")],
        allergies="Penicillin\n- Latex", current_treatments="Metformin 1000 mg x2/d\nRamipril 5 mg",
    )
    vaccination = Vaccination.objects.create(record=world.record, vaccine="DTP booster", date=date(2024, 5, 2),
                                             batch="AB12")
    declared = SelfDeclaredItem.objects.create(record=world.record, kind=SelfDeclaredItem.Kind.ALLERGY,
                                               label="Peanuts", year=2001)
    dispensed = ReimbursementLine.objects.create(
        record=world.record, date=timezone.localdate() - timedelta(days=30), kind=ReimbursementLine.Kind.MEDICINE,
        code=CIP13, label="METFORMINE 1000MG CPR", amount="3.20", provider="Pharmacie du centre")
    ReimbursementLine.objects.create(  # older than 24 months: not shown
        record=world.record, date=timezone.localdate() - timedelta(days=800), kind=ReimbursementLine.Kind.MEDICINE,
        code="3400930000002", label="OLD MEDICINE", amount="1.00")
    PersonalProfile.objects.create(record=world.record, advance_directives="No intubation.")
    return {"synthesis": synthesis, "vaccination": vaccination, "declared": declared, "dispensed": dispensed}


def _bearer(pro) -> dict[str, str]:
    _, raw = api_token_create(actor=Actor(pro.user), label="Logiciel de cabinet")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _search(client, headers, resource_type, record_id, param="patient"):
    return client.get(f"/fhir/{resource_type}", {param: record_id}, **headers)


def _searchset(response, resource_type) -> list:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(response.json())
    assert bundle.type == "searchset"
    resources = [MODELS[resource_type].model_validate(e.resource.model_dump()) for e in bundle.entry or []]
    assert bundle.total == len(resources)
    for entry, resource in zip(bundle.entry or [], resources, strict=True):
        assert entry.fullUrl.endswith(f"/fhir/{resource_type}/{resource.id}")
    return resources


def _codes(concept) -> set[str]:
    return {c.code for c in concept.coding or []}


def _texts(resources, field) -> list[str]:
    return [getattr(r, field).text for r in resources]


def _not_found(response) -> dict:
    assert response.status_code == 404, response.content
    OperationOutcome.model_validate(response.json())
    return response.json()


@pytest.mark.django_db
def test_each_search_returns_a_valid_searchset_with_the_expected_codes(client, world, chart):
    headers = _bearer(world.dr_house)
    rid = world.record.pk

    conditions = _searchset(_search(client, headers, "Condition", rid), "Condition")
    assert {c.code.coding[0].system for c in conditions} == {fhir.ICD10_SYSTEM}
    assert {c.code.coding[0].code for c in conditions} == {"E11.9", "I10"}
    assert all(c.subject.reference == f"Patient/{rid}" for c in conditions)
    assert all(c.recorder.reference == f"Practitioner/{world.dr_house.pk}" for c in conditions)
    # `subject` and "Patient/<id>" are accepted as well.
    again = _searchset(_search(client, headers, "Condition", f"Patient/{rid}", "subject"), "Condition")
    assert [c.id for c in again] == [c.id for c in conditions]

    allergies = _searchset(_search(client, headers, "AllergyIntolerance", rid), "AllergyIntolerance")
    assert _texts(allergies, "code") == ["Penicillin", "Latex", "Peanuts"]
    assert [_codes(a.verificationStatus) for a in allergies] == [{"confirmed"}, {"confirmed"}, {"unconfirmed"}]
    assert allergies[2].id == f"declared-{chart['declared'].pk}"

    medications = _searchset(_search(client, headers, "MedicationStatement", rid), "MedicationStatement")
    assert _texts(medications, "medicationCodeableConcept") == [
        "Metformin 1000 mg x2/d", "Ramipril 5 mg", "METFORMINE 1000MG CPR"]
    assert [m.status for m in medications] == ["active", "active", "completed"]
    coding = medications[2].medicationCodeableConcept.coding[0]
    assert (coding.system, coding.code) == (fhir.CIP13_SYSTEM, CIP13)
    assert medications[2].id == f"dispensed-{chart['dispensed'].pk}"

    immunizations = _searchset(_search(client, headers, "Immunization", rid), "Immunization")
    assert [(i.id, i.vaccineCode.text, i.lotNumber) for i in immunizations] == [
        (str(chart["vaccination"].pk), "DTP booster", "AB12")]


@pytest.mark.django_db
def test_each_read_returns_the_resource_a_search_lists(client, world, chart):
    headers = _bearer(world.dr_house)
    for resource_type, model in MODELS.items():
        listed = _searchset(_search(client, headers, resource_type, world.record.pk), resource_type)
        assert listed
        for resource in listed:
            response = client.get(f"/fhir/{resource_type}/{resource.id}", **headers)
            assert response.status_code == 200, response.content
            assert model.model_validate(response.json()) == resource


@pytest.mark.django_db
def test_a_superseded_synthesis_items_are_not_found_any_more(client, world, chart):
    headers = _bearer(world.dr_house)
    old = SynthesisProblem.objects.filter(synthesis=chart["synthesis"]).first()
    assert client.get(f"/fhir/Condition/{old.pk}", **headers).status_code == 200
    synthesis_write(actor=Actor(world.dr_house.user), record=world.record, problems=[Problem("I10", "Hypertension")])
    _not_found(client.get(f"/fhir/Condition/{old.pk}", **headers))
    _not_found(client.get(f"/fhir/AllergyIntolerance/synthesis-{chart['synthesis'].pk}-1", **headers))
    codes = [c.code.coding[0].code for c in _searchset(_search(client, headers, "Condition", world.record.pk),
                                                       "Condition")]
    assert codes == ["I10"]


def _references(value) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for k, v in value.items() for r in _references(v)]
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    return []


@pytest.mark.django_db
def test_summary_is_a_valid_ips_document_whose_references_resolve_inside(client, world, chart):
    response = client.get(f"/fhir/Patient/{world.record.pk}/$summary", **_bearer(world.dr_house))
    assert response.status_code == 200, response.content
    data = response.json()
    bundle = Bundle.model_validate(data)
    assert bundle.type == "document" and bundle.identifier.value and bundle.timestamp
    composition = bundle.entry[0].resource
    assert composition.get_resource_type() == "Composition"
    Composition.model_validate(composition.model_dump())
    assert _codes(composition.type) == {"60591-5"}
    sections = {s.code.coding[0].code: s for s in composition.section}
    assert set(sections) == {"11450-4", "10160-0", "48765-2", "11369-6", "42348-3"}
    assert len(sections["11450-4"].entry) == 2  # problems
    assert len(sections["10160-0"].entry) == 3  # two treatments, one dispensed medicine
    assert len(sections["48765-2"].entry) == 3  # two from the synthesis, one declared
    assert len(sections["11369-6"].entry) == 1
    # Every reference, the Composition's and the resources', names an entry of the Bundle.
    urls = {e["fullUrl"]: e["resource"] for e in data["entry"]}
    for reference in _references(data["entry"]):
        assert reference in urls, reference
    assert urls[composition.subject.reference]["resourceType"] == "Patient"
    author = urls[composition.author[0].reference]
    assert author["resourceType"] == "Practitioner" and author["id"] == str(world.dr_house.pk)
    types = {r["resourceType"] for r in urls.values()}
    assert types >= {"Composition", "Patient", "Practitioner", "Condition", "MedicationStatement",
                     "AllergyIntolerance", "Immunization"}
    # Each entry validates with its own model.
    for resource in urls.values():
        if resource["resourceType"] in MODELS:
            MODELS[resource["resourceType"]].model_validate(resource)


@pytest.mark.django_db
def test_summary_without_a_synthesis_is_authored_by_the_system(client, world):
    response = client.get(f"/fhir/Patient/{world.record.pk}/$summary", **_bearer(world.dr_house))
    assert response.status_code == 200, response.content
    data = response.json()
    bundle = Bundle.model_validate(data)
    composition = bundle.entry[0].resource
    urls = {e["fullUrl"]: e["resource"] for e in data["entry"]}
    assert urls[composition.author[0].reference]["resourceType"] == "Device"
    assert all(s.emptyReason for s in composition.section)


def _every_endpoint(world, chart) -> list[str]:
    rid = world.record.pk
    problem = SynthesisProblem.objects.filter(synthesis=chart["synthesis"]).first()
    return [
        *(f"/fhir/{t}?patient={rid}" for t in MODELS),
        f"/fhir/Condition/{problem.pk}",
        f"/fhir/AllergyIntolerance/synthesis-{chart['synthesis'].pk}-1",
        f"/fhir/AllergyIntolerance/declared-{chart['declared'].pk}",
        f"/fhir/MedicationStatement/synthesis-{chart['synthesis'].pk}-1",
        f"/fhir/MedicationStatement/dispensed-{chart['dispensed'].pk}",
        f"/fhir/Immunization/{chart['vaccination'].pk}",
        f"/fhir/Patient/{rid}/$summary",
    ]


def _missing_twin(url: str) -> str:
    """The same request about a patient or resource that does not exist."""
    return (url.replace("?patient=", "?patient=9999999").replace("synthesis-", "synthesis-999999")
            .replace("declared-", "declared-999999").replace("dispensed-", "dispensed-999999")
            .replace("/Patient/", "/Patient/999999").replace("Condition/", "Condition/999999")
            .replace("Immunization/", "Immunization/999999"))


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["stranger", "blocked_kine"])
def test_a_refused_professional_gets_the_404_of_a_missing_patient_everywhere(client, world, chart, persona):
    headers = _bearer(getattr(world, persona))
    for url in _every_endpoint(world, chart):
        refused = _not_found(client.get(url, **headers))
        missing = _not_found(client.get(_missing_twin(url), **headers))
        assert refused == missing, url
    # Every attempt, refused or about nothing, is in the audit log, none allowed (the creation of
    # the API token the test uses is an entry of its own).
    entries = AuditEntry.objects.filter(actor=getattr(world, persona).user).exclude(action="api_token_create")
    assert entries.count() >= 2 * len(_every_endpoint(world, chart))
    assert not entries.filter(allowed=True).exists()


@pytest.mark.django_db
def test_the_physiotherapist_reads_as_the_matrix_says(client, world, chart):
    """The default matrix lets a physiotherapist read the record synthesis (not the
    reimbursement history): he gets the synthesis' resources without the dispensed medicines.
    With the matrix cell turned off, the synthesis resources are refused like a missing patient,
    while the vaccination record (personal data, which he reads on the portal) stays readable."""
    headers = _bearer(world.kine)
    rid = world.record.pk
    assert len(_searchset(_search(client, headers, "Condition", rid), "Condition")) == 2
    medications = _searchset(_search(client, headers, "MedicationStatement", rid), "MedicationStatement")
    assert [m.status for m in medications] == ["active", "active"]
    _not_found(client.get(f"/fhir/MedicationStatement/dispensed-{chart['dispensed'].pk}", **headers))
    assert client.get(f"/fhir/Patient/{rid}/$summary", **headers).status_code == 200

    MatrixEntry.objects.filter(profession="physiotherapist", doc_type="record_synthesis").update(allowed=False)
    headers = _bearer(world.kine)  # a fresh actor: the matrix is read once per request anyway
    for url in _every_endpoint(world, chart):
        if "Immunization" in url:
            assert client.get(url, **headers).status_code == 200, url
        else:
            assert _not_found(client.get(url, **headers)) == _not_found(client.get(_missing_twin(url), **headers))
    assert AuditEntry.objects.filter(actor=world.kine.user, action=Action.VIEW_SYNTHESIS, allowed=False,
                                     rule="matrix_refuses").exists()


@pytest.mark.django_db
def test_counter_agent_session_is_forbidden_and_no_token_is_unauthorised(client, world, chart):
    urls = _every_endpoint(world, chart)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == "Bearer"
        OperationOutcome.model_validate(response.json())
    client.force_login(world.agent.user)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 403, url
        OperationOutcome.model_validate(response.json())


@pytest.mark.django_db
def test_a_search_without_a_patient_is_a_400_and_a_malformed_one_a_404(client, world, chart):
    headers = _bearer(world.dr_house)
    response = client.get("/fhir/Condition", **headers)
    assert response.status_code == 400
    OperationOutcome.model_validate(response.json())
    for value in (f"Condition/{world.record.pk}", "x", "１２", "1" * 30):
        _not_found(client.get("/fhir/Condition", {"patient": value}, **headers))
    absolute = f"http://testserver/fhir/Patient/{world.record.pk}"
    assert len(_searchset(client.get("/fhir/Condition", {"patient": absolute}, **headers), "Condition")) == 2


@pytest.mark.django_db
def test_every_read_by_a_professional_is_in_the_audit_log(client, world, chart):
    headers = _bearer(world.dr_house)
    for url in _every_endpoint(world, chart):
        before = AuditEntry.objects.count()
        assert client.get(url, **headers).status_code == 200, url
        new = AuditEntry.objects.filter(actor=world.dr_house.user).order_by("-seq")[:AuditEntry.objects.count()
                                                                                      - before]
        actions = {e.action for e in new}
        assert new and all(e.allowed and e.record_id_ref == world.record.pk for e in new), url
        if "Immunization" in url:
            assert actions == {Action.VIEW_PERSONAL_DATA}
        else:
            assert Action.VIEW_SYNTHESIS in actions, url
    summary = f"/fhir/Patient/{world.record.pk}/$summary"
    client.get(summary, **headers)
    assert {Action.VIEW_SYNTHESIS, Action.VIEW_PERSONAL_DATA, Action.VIEW_REIMBURSEMENTS} <= set(
        AuditEntry.objects.filter(actor=world.dr_house.user).order_by("-seq")[:3].values_list("action", flat=True))
