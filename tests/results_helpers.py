"""Reports and values attached to the world's documents, and laboratory Bundles, for the
results tests (tests/test_results_*.py)."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from dmp.models import Document, LabObservation, LabReport

HBA1C, CREATININE, POTASSIUM = "4548-4", "2160-0", "2823-3"


def attach_report(document: Document, *, values=((HBA1C, "7.1", "%"),), at: datetime | None = None,
                  interpretation: str = "") -> LabReport:
    """A report on an existing document, with its values (code, value, unit), as the service
    would store it: the selectors' rule is the document's, whatever wrote the rows."""
    at = at or timezone.now() - timedelta(days=10)
    report = LabReport.objects.create(record=document.record, document=document, code="11502-2",
                                      text="Bilan", effective_at=at, fingerprint=f"fp-{document.pk}")
    LabObservation.objects.bulk_create([
        LabObservation(report=report, record=document.record, position=i, code=code, text=code,
                       kind=LabObservation.Kind.QUANTITY, value=value, unit=unit, effective_at=at,
                       interpretation=interpretation)
        for i, (code, value, unit) in enumerate(values)
    ])
    return report


def quantity(code: str, value: str, unit: str | None = "%", *, display: str = "") -> dict:
    """An Observation's code and valueQuantity (unit None: no UCUM unit at all)."""
    q: dict = {"value": float(Decimal(value))}
    if unit is not None:
        q |= {"unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    return {"code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display or code}],
                     "text": display or code},
            "valueQuantity": q}


def lab_bundle(patient_id: int, values: list[dict], *, identifier: str = "CR-0001",
               effective: str = "2026-01-15T08:30:00+01:00", pdf: bytes | None = None) -> dict:
    """A laboratory's transaction Bundle: a DiagnosticReport and its Observations (and its PDF as
    `presentedForm` when given)."""
    observations = []
    for i, value in enumerate(values):
        observations.append({
            "fullUrl": f"urn:uuid:00000000-0000-0000-0000-{i + 1:012d}",
            "resource": {"resourceType": "Observation", "status": "final",
                         "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                             "observation-category", "code": "laboratory"}]}],
                         "subject": {"reference": f"Patient/{patient_id}"}, "effectiveDateTime": effective,
                         **value},
            "request": {"method": "POST", "url": "Observation"},
        })
    report = {
        "resourceType": "DiagnosticReport", "status": "final",
        "identifier": [{"system": "urn:oid:1.2.250.1.999.1", "value": identifier}] if identifier else [],
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "11502-2"}], "text": "Bilan biologique"},
        "subject": {"reference": f"Patient/{patient_id}"}, "effectiveDateTime": effective,
        "issued": effective,
        "performer": [{"display": "Laboratoire du Beffroi"}],
        "result": [{"reference": o["fullUrl"]} for o in observations],
    }
    if not report["identifier"]:
        del report["identifier"]
    if pdf is not None:
        report["presentedForm"] = [{"contentType": "application/pdf", "data": base64.b64encode(pdf).decode()}]
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:10000000-0000-0000-0000-000000000001", "resource": report,
         "request": {"method": "POST", "url": "DiagnosticReport"}},
        *observations,
    ]}
