"""The IPS results section (LOINC 30954-2): each test's latest value of the last year, from the
reports the professional may read, validating against the IPS profiles with no error."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from dmp import fhir
from dmp.models import Document, LabObservation, LabReport
from tests.results_helpers import CREATININE, HBA1C, lab_bundle, quantity
from tests.test_fhir_ips import _bearer, _section, _summary, chart, validate  # noqa: F401 - chart: a fixture

pytestmark = pytest.mark.django_db
GLUCOSE = "14749-6"  # glucose in serum or plasma, in moles per volume


def _send(client, world, identifier: str, days_ago: int, hba1c: str) -> None:
    effective = (timezone.now() - timedelta(days=days_ago)).isoformat(timespec="seconds")
    bundle = lab_bundle(world.record.pk, [quantity(HBA1C, hba1c, "%", display="HbA1c"),
                                          quantity(CREATININE, "91", "umol/L", display="Créatinine")],
                        identifier=identifier, effective=effective)
    bundle["entry"][1]["resource"]["referenceRange"] = [{"low": {"value": 4.0}, "high": {"value": 6.0},
                                                         "text": "4,0 – 6,0 %"}]
    bundle["entry"][1]["resource"]["interpretation"] = [{"coding": [{
        "system": fhir.INTERPRETATION_SYSTEM, "code": "H"}]}]
    response = client.post("/fhir/", bundle, content_type="application/fhir+json", **_bearer(world.dr_grant))
    assert response.status_code == 200, response.content[:600]


def test_the_summary_holds_each_tests_latest_value_and_validates(client, world, chart):  # noqa: F811
    _send(client, world, "CR-1", 200, "7.9")
    _send(client, world, "CR-2", 20, "7.2")
    bundle = _summary(client, world.record, world.dr_house)
    results = _section(bundle, fhir.IPS_RESULTS[0])
    assert sorted((r["code"]["coding"][0]["code"], r.get("valueQuantity", {}).get("value")) for r in results) == [
        (CREATININE, 91.0), (HBA1C, 7.2)]
    hba1c = next(r for r in results if r["code"]["coding"][0]["code"] == HBA1C)
    assert hba1c["interpretation"][0]["coding"][0]["code"] == "H" and hba1c["referenceRange"][0]["high"]["value"] == 6
    assert validate({"results": bundle})["results"]["errors"] == []


def test_a_value_of_a_hidden_report_is_not_in_a_break_glass_summary(client, world, chart):  # noqa: F811
    _send(client, world, "CR-1", 20, "7.2")
    Document.objects.filter(pk=LabReport.objects.get().document_id).update(hidden_from_professionals=True)
    bundle = _summary(client, world.record, world.urgentist)
    codes = [s["code"]["coding"][0]["code"] for s in bundle["entry"][0]["resource"]["section"]]
    assert fhir.IPS_RESULTS[0] not in codes
    assert fhir.IPS_RESULTS[0] in [s["code"]["coding"][0]["code"]
                                   for s in _summary(client, world.record, world.dr_house)["entry"][0]["resource"]
                                   ["section"]]


def test_a_value_in_two_units_keeps_its_second_unit_as_a_pq_translation_and_validates(
        client, world, chart):  # noqa: F811
    """Glucose in mmol/L and g/L (as a CDA gives it with a `translation`): one quantity, the
    second unit in FHIR R4's PQ-translation extension, on the way in and on the way out."""
    effective = (timezone.now() - timedelta(days=20)).isoformat(timespec="seconds")
    glucose = quantity(GLUCOSE, "5.5", "mmol/L", display="Glycémie")
    glucose["valueQuantity"]["extension"] = [{"url": fhir.PQ_TRANSLATION, "valueQuantity": {
        "value": 0.99, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"}}]
    bundle = lab_bundle(world.record.pk, [glucose], identifier="CR-G", effective=effective)
    assert client.post("/fhir/", bundle, content_type="application/fhir+json",
                       **_bearer(world.dr_grant)).status_code == 200
    stored = LabObservation.objects.get(code=GLUCOSE)
    assert (stored.quantity, stored.unit, stored.alternative_quantity, stored.alternative_unit) == (
        Decimal("5.5"), "mmol/L", Decimal("0.99"), "g/L")

    read = client.get(f"/fhir/Observation/{stored.pk}", **_bearer(world.dr_house)).json()["valueQuantity"]
    assert (read["value"], read["code"]) == (5.5, "mmol/L")
    assert read["extension"] == [{"url": fhir.PQ_TRANSLATION, "valueQuantity": {
        "value": 0.99, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"}}]
    summary = _summary(client, world.record, world.dr_house)
    [value] = _section(summary, fhir.IPS_RESULTS[0])
    assert value["valueQuantity"]["extension"][0]["valueQuantity"]["code"] == "g/L"
    assert validate({"results": summary})["results"]["errors"] == []


def test_a_value_in_one_unit_has_no_translation(client, world):
    _send(client, world, "CR-1", 20, "7.2")
    value = LabObservation.objects.get(code=HBA1C)
    read = client.get(f"/fhir/Observation/{value.pk}", **_bearer(world.dr_house)).json()["valueQuantity"]
    assert "extension" not in read and value.alternative_unit == ""
