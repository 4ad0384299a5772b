"""The facilities of the authors one may see: a DocumentReference's `author` points to the
Practitioner and, for an author who works in a facility, to their PractitionerRole, whose
`organization` is that facility (as PDSm gives the author's institution). Every reference the
API gives out answers 200 to whoever received it, and the same 404 as a missing resource to
whoever may not see it; there is no listing of facilities."""

from __future__ import annotations

import re

import pytest

from dmp.fhir import FINESS_SYSTEM
from dmp.models import Document, Organisation, Synthesis
from dmp.policy import Actor
from dmp.selectors.professionals import organisation_seen_by, practitioner_role_seen_by
from dmp.services import api_token_create
from tests.personas import make_document, make_professional

pytestmark = pytest.mark.django_db

DR = "/fhir/DocumentReference"
_REFERENCE = re.compile(r"^(Practitioner|PractitionerRole|Organization)/(\d+)$")


def _bearer(pro) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(actor=Actor(pro.user), label='Cabinet')[1]}"}


def _facility(name: str, finess: str) -> Organisation:
    return Organisation.objects.create(name=name, kind=Organisation.Kind.FACILITY, finess=finess, city="Lille")


def _works_at(professional, facility: Organisation) -> None:
    professional.facility = facility
    professional.save(update_fields=["facility"])


@pytest.fixture
def clinic(world) -> Organisation:
    """Dr Grant, the author of Alice's documents, works at the Clinique du Parc."""
    facility = _facility("Clinique du Parc", "590000001")
    _works_at(world.dr_grant, facility)
    return facility


def _references(value) -> set[str]:
    """Every Practitioner, PractitionerRole and Organization reference anywhere in a body."""
    if isinstance(value, dict):
        return {ref for item in value.values() for ref in _references(item)}
    if isinstance(value, list):
        return {ref for item in value for ref in _references(item)}
    return {value} if isinstance(value, str) and _REFERENCE.match(value) else set()


def test_a_document_author_points_to_their_role_and_the_role_to_their_facility(client, world, clinic):
    house = _bearer(world.dr_house)
    resource = client.get(f"{DR}/{world.docs['consultation'].pk}", **house).json()
    grant = world.dr_grant.pk
    assert [a["reference"] for a in resource["author"]] == [f"Practitioner/{grant}", f"PractitionerRole/{grant}"]
    role = client.get(f"/fhir/PractitionerRole/{grant}", **house)
    assert role.status_code == 200, role.content[:300]
    assert role.json()["practitioner"]["reference"] == f"Practitioner/{grant}"
    assert role.json()["organization"] == {"reference": f"Organization/{clinic.pk}", "display": "Clinique du Parc"}
    organization = client.get(f"/fhir/Organization/{clinic.pk}", **house).json()
    assert organization["name"] == "Clinique du Parc"
    assert organization["identifier"] == [{"system": FINESS_SYSTEM, "value": "590000001"}]
    found = client.get("/fhir/Organization", {"identifier": f"{FINESS_SYSTEM}|590000001"}, **house).json()
    assert found["total"] == 1 and found["entry"][0]["resource"]["id"] == str(clinic.pk)


@pytest.mark.parametrize("reader", ["dr_house", "dr_grant", "kine", "urgentist"])
def test_every_reference_a_search_gives_out_answers_to_whoever_received_it(client, world, clinic, reader):
    """Followed one by one, each reference of a documents search with its authors included
    resolves for the professional who received it (the kinésithérapeute reads fewer documents:
    the references he gets are still his to follow)."""
    _works_at(world.dr_house, _facility("Maison de santé", "590000003"))
    make_document(world.record, "by house", author=world.dr_house)
    headers = _bearer(getattr(world, reader))
    bundle = client.get(DR, {"patient": world.record.pk, "_include": "DocumentReference:author"}, **headers).json()
    references = _references(bundle)
    assert any(ref.startswith("Organization/") for ref in references), references
    for reference in references:
        assert client.get(f"/fhir/{reference}", **headers).status_code == 200, (reader, reference)


def test_the_author_include_brings_the_practitioner_their_role_and_their_facility_once_each(client, world, clinic):
    bundle = client.get(DR, {"patient": world.record.pk, "_include": "DocumentReference:author"},
                        **_bearer(world.dr_house)).json()
    included = sorted((e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]
                      if e["search"]["mode"] == "include")
    grant = str(world.dr_grant.pk)
    assert included == [("Organization", str(clinic.pk)), ("Practitioner", grant), ("PractitionerRole", grant)]
    role = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "PractitionerRole")
    assert role["fullUrl"].endswith(f"/fhir/PractitionerRole/{grant}")


def test_a_professional_with_no_standing_on_the_authors_records_gets_404(client, world, clinic):
    stranger = _bearer(world.stranger)
    for path in (f"/fhir/Organization/{clinic.pk}", f"/fhir/PractitionerRole/{world.dr_grant.pk}"):
        response = client.get(path, **stranger)
        assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"
    for path, params in (("/fhir/Organization", {"identifier": "590000001"}),
                         ("/fhir/Organization", {"_id": clinic.pk}),
                         ("/fhir/PractitionerRole", {"practitioner": f"Practitioner/{world.dr_grant.pk}"})):
        bundle = client.get(path, params, **stranger).json()
        assert bundle["total"] == 0 and "entry" not in bundle
    # Blocked by Alice: her record is not his to open, so neither are its authors' facilities.
    assert client.get(f"/fhir/Organization/{clinic.pk}", **_bearer(world.blocked_kine)).status_code == 404


def test_a_document_the_reader_may_not_see_does_not_reveal_its_authors_facility(client, world):
    hospital = _facility("Hôpital Nord", "590000002")
    writer = make_professional("hana_hidden")
    _works_at(writer, hospital)
    make_document(world.record, "hidden by writer", author=writer, hidden_from_professionals=True)
    assert client.get(f"/fhir/Organization/{hospital.pk}", **_bearer(world.kine)).status_code == 404
    assert client.get(f"/fhir/PractitionerRole/{writer.pk}", **_bearer(world.kine)).status_code == 404
    assert client.get(f"/fhir/Organization/{hospital.pk}", **_bearer(world.dr_house)).status_code == 200
    # Withdrawn, the only document no longer points there.
    Document.objects.filter(author_professional=writer).update(status=Document.Status.ENTERED_IN_ERROR)
    assert client.get(f"/fhir/Organization/{hospital.pk}", **_bearer(world.dr_house)).status_code == 404


def test_the_facility_of_the_synthesis_author_can_be_read(client, world):
    hospital = _facility("Hôpital Nord", "590000002")
    writer = make_professional("sybil_synthesis")
    _works_at(writer, hospital)
    Synthesis.objects.create(record=world.record, version=1, author=writer)
    assert client.get(f"/fhir/Organization/{hospital.pk}", **_bearer(world.dr_house)).status_code == 200
    assert client.get(f"/fhir/Organization/{hospital.pk}", **_bearer(world.stranger)).status_code == 404


def test_a_professional_without_a_facility_has_no_role_and_oneself_is_always_seen(client, world, clinic):
    house = _bearer(world.dr_house)
    make_document(world.record, "by house", author=world.dr_house)  # Dr House works in no facility
    resource = client.get(DR, {"patient": world.record.pk, "author": f"Practitioner/{world.dr_house.pk}"},
                          **house).json()["entry"][0]["resource"]
    assert [a["reference"] for a in resource["author"]] == [f"Practitioner/{world.dr_house.pk}"]
    assert client.get(f"/fhir/PractitionerRole/{world.dr_house.pk}", **house).status_code == 404
    grant = _bearer(world.dr_grant)
    assert client.get(f"/fhir/PractitionerRole/{world.dr_grant.pk}", **grant).status_code == 200
    assert client.get(f"/fhir/Organization/{clinic.pk}", **grant).status_code == 200


def test_the_role_search_is_by_id_or_practitioner_and_includes_what_the_role_points_to(client, world, clinic):
    house = _bearer(world.dr_house)
    grant = world.dr_grant.pk
    bundle = client.get("/fhir/PractitionerRole", {"practitioner": f"Practitioner/{grant}", "_include": [
        "PractitionerRole:practitioner", "PractitionerRole:organization"]}, **house).json()
    assert bundle["total"] == 1
    assert [(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]] == [
        ("PractitionerRole", "match"), ("Practitioner", "include"), ("Organization", "include")]
    assert client.get("/fhir/PractitionerRole", {"_id": grant}, **house).json()["total"] == 1
    for params in ({}, {"organization": f"Organization/{clinic.pk}"}, {"name": "Grant"}):
        response = client.get("/fhir/PractitionerRole", params, **house)
        assert response.status_code == 400 and response.json()["resourceType"] == "OperationOutcome"


def test_a_patient_sees_the_facilities_of_their_own_documents_authors_and_no_other(world, clinic):
    """The API is for professionals (a patient is refused at its door); the rule itself, which
    the patient's side shares, admits the facilities of the authors of the documents they read."""
    hospital = _facility("Hôpital Nord", "590000002")
    _works_at(world.dr_house, hospital)  # the author of Léo's documents, not of Alice's
    alice, mother = Actor(world.alice), Actor(world.mother)
    assert organisation_seen_by(alice, clinic.pk) == clinic
    assert practitioner_role_seen_by(alice, world.dr_grant.pk) == world.dr_grant
    assert organisation_seen_by(alice, hospital.pk) is None
    assert organisation_seen_by(mother, hospital.pk) == hospital  # Léo's documents, read by his mother
    assert organisation_seen_by(mother, clinic.pk) is None


@pytest.mark.parametrize("persona", ["agent", "admin", "nobody"])
def test_a_counter_agent_or_an_administrator_sees_no_facility(client, world, clinic, persona):
    user = world.agent.user if persona == "agent" else getattr(world, persona)
    assert organisation_seen_by(Actor(user), clinic.pk) is None
    assert practitioner_role_seen_by(Actor(user), world.dr_grant.pk) is None
    client.force_login(user)
    assert client.get(f"/fhir/Organization/{clinic.pk}").status_code == 403


def test_a_patient_is_refused_at_the_apis_door(client, world, clinic):
    client.force_login(world.alice)
    response = client.get(f"/fhir/Organization/{clinic.pk}")
    assert response.status_code == 403 and response.json()["resourceType"] == "OperationOutcome"
