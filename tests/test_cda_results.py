"""A laboratory that sends only CDA feeds the results: a level-3 CR-BIO's LOINC values become
the structured results bound to that CDA document (no second document), in the transaction that
stores it, through the portals and the MHD ITI-65 transaction; visible exactly where the
document is; the same CDA twice is one document and one report; values the results checks
refuse leave the document stored and readable, with no values (docs/cda.md)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from dmp.models import Document, DocumentType, LabObservation, LabReport
from dmp.policy import Actor
from dmp.selectors.results import results_for
from tests.test_cda import FHIR_JSON, _bearer, _crbio, _pro_add, alice, iti65_with_crbio  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def _observations(client, pro, record) -> dict:
    response = client.get(f"/fhir/Observation?patient={record.pk}", **_bearer(pro))
    assert response.status_code == 200, response.content[:800]
    return {(e["resource"]["code"]["coding"][0]["code"], e["resource"]["valueQuantity"]["code"]):
            e["resource"]["valueQuantity"]["value"] for e in response.json().get("entry", [])}


def test_a_gp_adds_a_crbio_and_its_values_are_the_results_of_that_document(client, alice):  # noqa: F811
    documents_before = alice.record.documents.count()
    assert _pro_add(client, alice.dr_grant, alice.record, "crbio", _crbio(alice),
                    DocumentType.LAB_REPORT).status_code == 302
    document = alice.record.documents.get(mime_type="application/xml")
    report = document.lab_report
    assert (report.code, report.laboratory, report.effective_at.isoformat()) == (
        "11502-2", "Laboratoire des Tilleuls", "2026-02-11T06:35:00+00:00")
    assert (report.identifier_system, report.identifier) == ("urn:oid:1.2.250.1.999.1.1", "CRBIO-2026-0001")
    assert alice.record.documents.count() == documents_before + 1  # the CDA, no rendered copy beside it

    values = {v.code: v for v in results_for(Actor(alice.dr_grant.user), alice.record)}
    assert set(values) == {"14771-0", "14682-9", "4548-4", "3016-3"}
    glucose = values["14771-0"]
    assert (glucose.quantity, glucose.unit, glucose.alternative_quantity, glucose.alternative_unit) == (
        Decimal("5.9"), "mmol/L", Decimal("1.06"), "g/L")
    assert (glucose.low, glucose.high, glucose.interpretation) == (Decimal("3.9"), Decimal("6.0"), "N")
    assert values["4548-4"].is_abnormal and values["14682-9"].alternative_unit == ""
    assert _observations(client, alice.dr_house, alice.record)[("4548-4", "%")] == 7.4


def test_the_same_crbio_twice_is_one_document_and_one_report(client, alice):  # noqa: F811
    for _ in range(2):
        response = _pro_add(client, alice.dr_grant, alice.record, "crbio", _crbio(alice), DocumentType.LAB_REPORT)
    assert "already in the record" in response.content.decode()
    assert alice.record.documents.filter(mime_type="application/xml").count() == 1
    assert LabReport.objects.filter(record=alice.record).count() == 1
    assert LabObservation.objects.filter(record=alice.record).count() == 4


def test_values_the_results_checks_refuse_leave_the_document_stored_and_readable_without_values(client, alice):  # noqa: F811
    content = _crbio(alice).replace(b'value="72" unit="umol/L"', b'value="72"')  # creatinine without unit
    assert _pro_add(client, alice.dr_grant, alice.record, "crbio", content, DocumentType.LAB_REPORT).status_code == 302
    document = alice.record.documents.get(mime_type="application/xml")
    assert not LabReport.objects.filter(document=document).exists()
    assert not results_for(Actor(alice.dr_grant.user), alice.record).exists()
    page = client.get(reverse("portal_pro:document_file", args=[document.pk])).content.decode()
    assert "Créatinine" in page and "72 µmol/L" in page


def test_a_crbio_kept_in_the_patients_own_space_feeds_no_results(client, alice):  # noqa: F811
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(alice.alice)
    response = client.post(reverse("portal_patient:documents_add", args=[alice.record.pk]), {
        "doc_type": DocumentType.PATIENT_DOCUMENT, "act_date": "2026-02-11", "title": "Bilan",
        "files": [SimpleUploadedFile("bilan.xml", _crbio(alice))]})
    assert response.status_code == 302
    assert not LabReport.objects.filter(record=alice.record).exists()


def test_the_iti65_transaction_feeds_the_values_seen_exactly_where_the_document_is(client, alice):  # noqa: F811
    response = client.post("/fhir/", iti65_with_crbio(alice, _crbio(alice)), content_type=FHIR_JSON,
                           **_bearer(alice.dr_house))
    assert response.status_code == 200, response.content[:1500]
    document = alice.record.documents.get(mime_type="application/xml")
    assert document.lab_report.observations.count() == 4
    both_units = _observations(client, alice.dr_grant, alice.record)
    assert both_units[("14771-0", "mmol/L")] == 5.9 and len(both_units) == 4

    client.force_login(alice.alice)
    client.post(reverse("portal_patient:document_visibility", args=[alice.record.pk, document.pk]), {"hidden": "1"})
    assert Document.objects.get(pk=document.pk).hidden_from_professionals
    assert _observations(client, alice.dr_grant, alice.record) == {}
    assert not results_for(Actor(alice.dr_grant.user), alice.record).exists()
    # The médecin traitant, who published it, still sees the values.
    assert len(_observations(client, alice.dr_house, alice.record)) == 4
