"""The International Patient Summary a doctor abroad can use (issue 17): the current medicines
with, per medicine, its last dispensing only; allergies said once and coded where the substance
is known; vaccines coded; a results section only when there are results; and the whole
`$summary` valid against the HL7 IPS 2.0.0 profiles, checked offline by
scripts/fhir-validate/validate_ips.mjs (make deps-node)."""

from __future__ import annotations

import atexit
import json
import select
import shutil
import subprocess
import tempfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from dmp import fhir
from dmp.models import ReimbursementLine, SelfDeclaredItem, Vaccination
from dmp.policy import Actor
from dmp.services import api_token_create, synthesis_write
from dmp.services.synthesis import Problem
from tests.conftest import CI

VALIDATOR = Path(__file__).resolve().parent.parent / "scripts" / "fhir-validate" / "validate_ips.mjs"
METFORMIN_CIP13 = "3400930000001"


class _Validator:
    """The Node validator in its `--lines` mode, started by the first validation of the test
    process and kept for the next ones: indexing the IPS profiles costs Node a second, paid once
    rather than once per validation. One line of named Bundles out, one line of reports back."""

    process: subprocess.Popen | None = None
    errors = None  # the file its standard error goes to

    def __call__(self, bundles: dict[str, dict]) -> dict[str, dict]:
        if self.process is None or self.process.poll() is not None:
            self.process = self._start()
        self.process.stdin.write(json.dumps(bundles) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], 120)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.process.kill()
            self.errors.seek(0)
            raise AssertionError(self.errors.read()[-2000:] or "the validator gave no answer")
        report = json.loads(line)
        return {name: report[name] for name in bundles}

    def _start(self) -> subprocess.Popen:
        node = shutil.which("node")
        if node is None or not (VALIDATOR.parent / "node_modules" / "@medplum" / "core").is_dir():
            message = "the IPS validator is not installed: run `make deps-node` (Node 20.19+ and npm)"
            if CI:
                pytest.fail(message)  # in CI a validator that did not run proves nothing
            pytest.skip(message)
        # stderr to a file (Popen keeps no handle on it: we do): a pipe nobody reads could fill
        # up and stop the validator.
        self.errors = tempfile.TemporaryFile(mode="w+")
        process = subprocess.Popen([node, str(VALIDATOR), "--lines"],  # noqa: S603 - our script
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors, text=True)
        atexit.register(self._stop, process)
        return process

    @staticmethod
    def _stop(process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.stdin.close()  # the end of its input: it exits
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


# Each Bundle's errors and warnings under the IPS profiles.
validate = _Validator()


def _bearer(pro) -> dict[str, str]:
    _, raw = api_token_create(actor=Actor(pro.user), label="Logiciel de cabinet")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _summary(client, record, pro) -> dict:
    response = client.get(f"/fhir/Patient/{record.pk}/$summary", **_bearer(pro))
    assert response.status_code == 200, response.content
    return response.json()


def _section(bundle: dict, loinc: str) -> list[dict]:
    """The resources the Composition's section `loinc` references, in its order."""
    resources = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    composition = bundle["entry"][0]["resource"]
    section = next(s for s in composition["section"] if s["code"]["coding"][0]["code"] == loinc)
    return [resources[ref["reference"]] for ref in section.get("entry", [])]


def _codes(concept: dict) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in concept.get("coding", [])}


@pytest.fixture
def chart(world):
    """Alice: a synthesis by Dr House, an allergy she declared too, vaccines, and a medicine
    dispensed every month for two years."""
    synthesis = synthesis_write(
        actor=Actor(world.dr_house.user), record=world.record,
        problems=[Problem("E11.9", "Diabète de type 2", date(2019, 3, 1))],
        allergies="Pénicilline : urticaire (1995)\n- Latex",
        current_treatments="Metformine 1000 mg : 1 comprimé matin et soir. Ramipril 5 mg : 1 comprimé le matin.\n"
                           "Crème hydratante",
    )
    SelfDeclaredItem.objects.create(record=world.record, kind=SelfDeclaredItem.Kind.ALLERGY,
                                    label="pénicilline", year=1995)
    SelfDeclaredItem.objects.create(record=world.record, kind=SelfDeclaredItem.Kind.ALLERGY, label="Arachide")
    Vaccination.objects.create(record=world.record, vaccine="Grippe saisonnière", date=date(2025, 10, 20),
                               batch="FLU1", declared_by_patient=False)
    Vaccination.objects.create(record=world.record, vaccine="Vaccin du voyage (nom oublié)", date=date(2019, 4, 2))
    today = timezone.localdate()
    ReimbursementLine.objects.bulk_create([
        ReimbursementLine(record=world.record, date=today - timedelta(days=30 * months), amount="3.20",
                          kind=ReimbursementLine.Kind.MEDICINE, code=METFORMIN_CIP13,
                          label="METFORMINE 1000 mg, comprimé pelliculé", provider="Pharmacie du centre")
        for months in range(1, 24)
    ])
    return synthesis



def _lab_result(subject_url: str) -> dict:
    """A structured laboratory result as the results issue will bring them (HbA1c)."""
    return {
        "resourceType": "Observation", "id": "hba1c-1", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4",
                             "display": "Hemoglobin A1c/Hemoglobin.total in Blood"}], "text": "HbA1c"},
        "subject": {"reference": subject_url}, "effectiveDateTime": "2026-01-12",
        "performer": [{"display": "Laboratoire du Vieux-Lille"}],
        "valueQuantity": {"value": 6.9, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    }


# --- Validation against the IPS profiles ----------------------------------------------------------

@pytest.mark.django_db
def test_alices_summary_validates_against_the_ips_profiles_with_no_error(client, world, chart):
    bundles = {"doctor": _summary(client, world.record, world.dr_house),
               # the physiotherapist does not read the reimbursements: no dispensed medicine
               "physiotherapist": _summary(client, world.record, world.kine)}
    for name, result in validate(bundles).items():
        assert result["errors"] == [], name


# The demo's chronic patient's summary: tests/test_demo_chronic_patient.py (one seed).


@pytest.mark.django_db
def test_a_results_section_validates_when_there_are_results(world, chart):
    from fhir.resources.R4B.observation import Observation

    from dmp.selectors.summary import summary_for_api

    content = summary_for_api(Actor(world.dr_house.user), world.record)
    subject = fhir.full_url("Patient", str(world.record.pk))
    bundle = fhir.patient_summary(
        world.record, synthesis=content.synthesis, treating_doctor=content.treating_doctor,
        declared_allergies=content.declared_allergies, vaccinations=content.vaccinations,
        dispensed=content.dispensed, results=[Observation.model_validate(_lab_result(subject))],
    )
    data = json.loads(fhir.bundle_json(bundle))
    [result] = _section(data, fhir.IPS_RESULTS[0])
    assert result["code"]["text"] == "HbA1c"
    assert validate({"results": data})["results"]["errors"] == []


@pytest.mark.django_db
def test_the_validator_refuses_what_the_ips_profiles_forbid(client, world, chart):
    """The validation proves something: a summary missing effective[x], the medications section
    or its Patient is refused, and the Bundles the IPS package gives as examples pass."""
    bundle = _summary(client, world.record, world.dr_house)
    no_effective = json.loads(json.dumps(bundle))
    for entry in no_effective["entry"]:
        entry["resource"].pop("effectiveDateTime", None)
        entry["resource"].pop("_effectiveDateTime", None)
    no_section = json.loads(json.dumps(bundle))
    no_section["entry"][0]["resource"]["section"] = [
        s for s in no_section["entry"][0]["resource"]["section"] if s["code"]["coding"][0]["code"] != "10160-0"]
    no_patient = json.loads(json.dumps(bundle))
    no_patient["entry"] = [e for e in no_patient["entry"] if e["resource"]["resourceType"] != "Patient"]
    wrong_section = json.loads(json.dumps(bundle))
    allergies = next(s for s in wrong_section["entry"][0]["resource"]["section"]
                     if s["code"]["coding"][0]["code"] == "48765-2")
    allergies["entry"].append({"reference": fhir.full_url("Patient", str(world.record.pk))})
    examples = sorted((VALIDATOR.parent / "node_modules" / "hl7.fhir.uv.ips" / "example").glob("Bundle-*.json"))
    report = validate({"no_effective": no_effective, "no_section": no_section, "no_patient": no_patient,
                                 "wrong_section": wrong_section,
                                 **{p.stem: json.loads(p.read_text()) for p in examples}})
    assert any("effective[x]" in str(e["expression"]) for e in report["no_effective"]["errors"])
    assert any("sectionMedications" in e["text"] for e in report["no_section"]["errors"])
    assert any("Patient" in e["text"] for e in report["no_patient"]["errors"])
    assert any("Patient is not allowed" in e["text"] for e in report["wrong_section"]["errors"])
    assert len(examples) == 5
    for example in examples:
        assert report[example.stem]["errors"] == [], example.stem


# --- What the summary says ------------------------------------------------------------------------

@pytest.mark.django_db
def test_medications_are_the_current_treatments_and_each_medicines_last_dispensing(client, world, chart):
    medications = _section(_summary(client, world.record, world.dr_house), fhir.IPS_MEDICATIONS[0])
    treatments = [m for m in medications if m["status"] == "active"]
    dispensed = [m for m in medications if m["status"] == "completed"]
    # Three treatments written on two lines, each its own statement, coded when a substance is named.
    assert [m["medicationCodeableConcept"]["text"] for m in treatments] == [
        "Metformine 1000 mg : 1 comprimé matin et soir", "Ramipril 5 mg : 1 comprimé le matin", "Crème hydratante"]
    assert [_codes(m["medicationCodeableConcept"]) for m in treatments] == [
        {(fhir.ATC_SYSTEM, "A10BA02")}, {(fhir.ATC_SYSTEM, "C09AA05")}, set()]
    # 23 monthly dispensings of one medicine: one statement, the last dispensing, CIP13 and ATC coded.
    [metformin] = dispensed
    newest = ReimbursementLine.objects.filter(record=world.record).order_by("-date").first()
    assert metformin["effectiveDateTime"] == newest.date.isoformat()
    assert _codes(metformin["medicationCodeableConcept"]) == {(fhir.CIP13_SYSTEM, METFORMIN_CIP13),
                                                               (fhir.ATC_SYSTEM, "A10BA02")}
    # effective[x] is always there: a date, or the reason it is absent.
    for treatment in treatments:
        assert "effectiveDateTime" not in treatment
        assert treatment["_effectiveDateTime"]["extension"] == [
            {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]


@pytest.mark.django_db
def test_the_fhir_search_still_lists_every_dispensing(client, world, chart):
    """The summary sums up; the MedicationStatement search stays the full 24-month history."""
    response = client.get("/fhir/MedicationStatement", {"patient": world.record.pk}, **_bearer(world.dr_house))
    assert response.status_code == 200
    statuses = [e["resource"]["status"] for e in response.json()["entry"]]
    assert statuses.count("completed") == 23 and statuses.count("active") == 3


@pytest.mark.django_db
def test_an_allergy_stated_by_the_synthesis_and_the_patient_is_said_once_and_coded(client, world, chart):
    allergies = _section(_summary(client, world.record, world.dr_house), fhir.IPS_ALLERGIES[0])
    assert [(a["code"]["text"], a["verificationStatus"]["coding"][0]["code"]) for a in allergies] == [
        ("Pénicilline : urticaire (1995)", "confirmed"), ("Latex", "confirmed"), ("Arachide", "unconfirmed")]
    assert [_codes(a["code"]) for a in allergies] == [
        {(fhir.SNOMED_SYSTEM, "764146007")}, {(fhir.SNOMED_SYSTEM, "111088007")}, {(fhir.SNOMED_SYSTEM, "762952008")}]


@pytest.mark.parametrize(("words", "code"), [
    ("Allergie à la pénicilline et au latex", None),  # two substances: no guess, the words only
    ("Poils de chat", None),  # a substance not in the table
    ("PENICILLINES", "764146007"),
    ("Oeufs", "102263004"),
])
def test_an_allergy_is_coded_only_when_it_names_one_known_substance(words, code):
    concept = fhir.allergy_code(words)
    assert concept.text == words
    assert ([c.code for c in concept.coding] if concept.coding else [None]) == [code]


@pytest.mark.django_db
def test_vaccines_are_coded_when_the_vaccine_is_known_and_kept_as_words_otherwise(client, world, chart):
    immunizations = _section(_summary(client, world.record, world.dr_house), fhir.IPS_IMMUNIZATIONS[0])
    by_text = {i["vaccineCode"]["text"]: _codes(i["vaccineCode"]) for i in immunizations}
    assert by_text == {"Grippe saisonnière": {(fhir.ATC_SYSTEM, "J07BB")}, "Vaccin du voyage (nom oublié)": set()}


@pytest.mark.parametrize(("words", "code"), [
    ("Diphtérie, tétanos, poliomyélite (rappel)", "J07CA01"),
    ("dTcaPolio rappel 25 ans", "J07CA02"),
    ("Tétanos seul", "J07AM01"),
    ("COVID-19 (ARNm, dose de rappel)", "J07BN"),
    ("Pneumocoque (vaccin conjugué 20-valent)", "J07AL"),
    ("ROR 2e dose", "J07BD52"),
    ("Hépatite B", "J07BC01"),
])
def test_a_vaccine_is_coded_by_its_most_specific_row(words, code):
    assert [c.code for c in fhir.vaccine_code(words).coding] == [code]


@pytest.mark.django_db
def test_the_results_section_is_left_out_when_there_is_no_structured_result(client, world, chart):
    composition = _summary(client, world.record, world.dr_house)["entry"][0]["resource"]
    codes = [s["code"]["coding"][0]["code"] for s in composition["section"]]
    assert fhir.IPS_RESULTS[0] not in codes
    assert codes[:3] == [fhir.IPS_PROBLEMS[0], fhir.IPS_MEDICATIONS[0], fhir.IPS_ALLERGIES[0]]


@pytest.mark.django_db
def test_the_printed_summary_says_what_the_fhir_summary_says(client, world, chart):
    """The PDF is drawn from the same Bundle: the medicine dispensed 23 times is printed once, the
    penicillin allergy once."""
    from tests.test_ips_pdf import pdf_text

    client.force_login(world.alice)
    response = client.get(reverse("portal_patient:summary_pdf", args=[world.record.pk]))
    assert response.status_code == 200
    text = pdf_text(b"".join(response.streaming_content) if response.streaming else response.content)
    assert text.count("METFORMINE 1000 mg") == 1
    assert text.lower().count("pénicilline") == 1
