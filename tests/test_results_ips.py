"""The IPS results section (LOINC 30954-2): each test's latest value of the last year, from the
reports the professional may read, validating against the IPS profiles with no error."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dmp import fhir
from dmp.models import Document, LabReport
from tests.results_helpers import CREATININE, HBA1C, lab_bundle, quantity
from tests.test_fhir_ips import _bearer, _section, _summary, chart, validate  # noqa: F401 - chart: a fixture

pytestmark = pytest.mark.django_db


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


def test_the_summary_holds_each_tests_latest_value_and_validates(client, world, chart, tmp_path):  # noqa: F811
    _send(client, world, "CR-1", 200, "7.9")
    _send(client, world, "CR-2", 20, "7.2")
    bundle = _summary(client, world.record, world.dr_house)
    results = _section(bundle, fhir.IPS_RESULTS[0])
    assert sorted((r["code"]["coding"][0]["code"], r.get("valueQuantity", {}).get("value")) for r in results) == [
        (CREATININE, 91.0), (HBA1C, 7.2)]
    hba1c = next(r for r in results if r["code"]["coding"][0]["code"] == HBA1C)
    assert hba1c["interpretation"][0]["coding"][0]["code"] == "H" and hba1c["referenceRange"][0]["high"]["value"] == 6
    assert validate(tmp_path, {"results": bundle})["results"]["errors"] == []


def test_a_value_of_a_hidden_report_is_not_in_a_break_glass_summary(client, world, chart):  # noqa: F811
    _send(client, world, "CR-1", 20, "7.2")
    Document.objects.filter(pk=LabReport.objects.get().document_id).update(hidden_from_professionals=True)
    bundle = _summary(client, world.record, world.urgentist)
    codes = [s["code"]["coding"][0]["code"] for s in bundle["entry"][0]["resource"]["section"]]
    assert fhir.IPS_RESULTS[0] not in codes
    assert fhir.IPS_RESULTS[0] in [s["code"]["coding"][0]["code"]
                                   for s in _summary(client, world.record, world.dr_house)["entry"][0]["resource"]
                                   ["section"]]
