"""Laboratory results through the FHIR API: a laboratory's transaction Bundle creates the report,
its values and its document once; an unknown LOINC code is kept with its words; a quantity
without a UCUM unit is refused naming its entry; all or nothing; Observation and
DiagnosticReport read and search under the document's rule, logged like document reads."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from dmp.models import AuditEntry, Document, DocumentType, LabObservation, LabReport
from dmp.policy import Action, Actor
from dmp.services import api_token_create
from tests.results_helpers import CREATININE, HBA1C, POTASSIUM, lab_bundle, quantity
from tests.sample_files import text_pdf

pytestmark = pytest.mark.django_db
FHIR_JSON = "application/fhir+json"


def _bearer(pro) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(actor=Actor(pro.user), label='LAB')[1]}"}


def _post(client, pro, body):
    return client.post("/fhir/", body, content_type=FHIR_JSON, **_bearer(pro))


def _get(client, pro, url):
    return client.get(url, **_bearer(pro))


def _outcome(response, status: int) -> str:
    assert response.status_code == status, response.content[:800]
    return OperationOutcome.model_validate(response.json()).issue[0].diagnostics


VALUES = [quantity(HBA1C, "7.4", "%", display="HbA1c"), quantity(CREATININE, "88", "umol/L"),
          quantity(POTASSIUM, "4.1", "mmol/L")]


def test_a_laboratory_transaction_creates_the_report_its_values_and_its_document_once(client, world):
    bundle = lab_bundle(world.record.pk, VALUES)
    response = _post(client, world.dr_grant, bundle)
    assert response.status_code == 200, response.content[:800]
    answer = Bundle.model_validate(response.json())
    assert [e.response.status for e in answer.entry] == ["201 Created"] * 4
    report = LabReport.objects.get(record=world.record)
    assert answer.entry[0].response.location == f"DiagnosticReport/{report.pk}"
    assert report.document.doc_type == DocumentType.LAB_REPORT and report.document.mime_type == "application/pdf"
    assert report.document.author_professional == world.dr_grant
    # No PDF was sent: the one rendered from the values (in French) is the document, and says them.
    assert "LOINC 4548-4" in report.document.extracted_text and "7,4 %" in report.document.extracted_text
    assert [(v.code, v.quantity, v.unit) for v in report.observations.order_by("position")] == [
        (HBA1C, Decimal("7.4"), "%"), (CREATININE, Decimal("88"), "umol/L"), (POTASSIUM, Decimal("4.1"), "mmol/L")]
    assert report.laboratory == "Laboratoire du Beffroi" and report.identifier == "CR-0001"
    assert AuditEntry.objects.filter(action=Action.ADD_DOCUMENT, object_id=str(report.document_id)).count() == 1
    # The same Bundle again: the same report answered, nothing more stored.
    again = _post(client, world.dr_grant, bundle)
    assert [e.response.status for e in Bundle.model_validate(again.json()).entry] == ["200 OK"] * 4
    assert LabReport.objects.count() == 1 and LabObservation.objects.count() == 3
    assert Document.objects.filter(record=world.record, doc_type=DocumentType.LAB_REPORT).count() == 3  # 2 + 1


def test_a_decimal_keeps_the_places_the_laboratory_sent(client, world):
    """In FHIR a decimal's precision is part of its value: 7.40 is stored as 7.40, not as the
    float 7.4, and shown so on the screens."""
    sent = json.dumps(lab_bundle(world.record.pk, [quantity(HBA1C, "7.4", "%")]))
    text = sent.replace('"value": 7.4', '"value": 7.40')
    assert '"value": 7.40' in text
    assert client.post("/fhir/", text, content_type=FHIR_JSON, **_bearer(world.dr_grant)).status_code == 200
    value = LabObservation.objects.get(record=world.record)
    assert str(value.quantity) == "7.40"


def test_the_same_content_without_an_identifier_is_one_report(client, world):
    bundle = lab_bundle(world.record.pk, VALUES, identifier="")
    assert _post(client, world.dr_grant, bundle).status_code == 200
    assert _post(client, world.dr_grant, bundle).status_code == 200
    assert LabReport.objects.filter(record=world.record).count() == 1


def test_the_pdf_sent_as_presented_form_is_the_document(client, world):
    pdf = text_pdf("Compte rendu de biologie")
    assert _post(client, world.dr_grant, lab_bundle(world.record.pk, VALUES, pdf=pdf)).status_code == 200
    document = LabReport.objects.get().document
    assert document.file.open("rb").read() == pdf


def test_the_pdf_sent_as_a_document_reference_and_binary_is_the_document(client, world):
    pdf = text_pdf("Compte rendu de biologie (DocumentReference)")
    bundle = lab_bundle(world.record.pk, VALUES)
    bundle["entry"] += [
        {"fullUrl": "urn:uuid:20000000-0000-0000-0000-000000000001",
         "resource": {"resourceType": "DocumentReference", "status": "current",
                      "subject": {"reference": f"Patient/{world.record.pk}"},
                      "content": [{"attachment": {"contentType": "application/pdf",
                                                  "url": "urn:uuid:20000000-0000-0000-0000-000000000002"}}]},
         "request": {"method": "POST", "url": "DocumentReference"}},
        {"fullUrl": "urn:uuid:20000000-0000-0000-0000-000000000002",
         "resource": {"resourceType": "Binary", "contentType": "application/pdf",
                      "data": base64.b64encode(pdf).decode()},
         "request": {"method": "POST", "url": "Binary"}},
    ]
    response = _post(client, world.dr_grant, bundle)
    assert response.status_code == 200, response.content[:800]
    report = LabReport.objects.get()
    locations = [e.response.location for e in Bundle.model_validate(response.json()).entry]
    assert locations[-2:] == [f"DocumentReference/{report.document_id}", f"Binary/{report.document_id}"]
    assert report.document.file.open("rb").read() == pdf


def test_an_unknown_loinc_code_is_kept_with_its_words(client, world):
    unknown = quantity("99999-9", "12", "mg/L", display="Dosage maison")
    assert _post(client, world.dr_grant, lab_bundle(world.record.pk, [unknown])).status_code == 200
    value = LabObservation.objects.get()
    assert (value.code, value.text) == ("99999-9", "Dosage maison")


def test_a_quantity_without_its_ucum_unit_is_refused_naming_the_entry_and_nothing_is_stored(client, world):
    bundle = lab_bundle(world.record.pk, [VALUES[0], quantity(CREATININE, "88", None)])
    message = _outcome(_post(client, world.dr_grant, bundle), 422)
    assert message.startswith("entry[2]:") and "UCUM" in message and CREATININE in message
    assert not LabReport.objects.exists() and not LabObservation.objects.exists()
    assert not Document.objects.filter(doc_type=DocumentType.LAB_REPORT, record=world.record,
                                       author_professional=world.dr_grant).exclude(
        pk__in=[world.docs["withheld"].pk, world.docs["released"].pk]).exists()


def test_a_unitless_analyte_needs_no_unit(client, world):
    inr = quantity("6301-6", "2.6", None, display="INR")
    assert _post(client, world.dr_grant, lab_bundle(world.record.pk, [inr])).status_code == 200


def test_an_observation_no_report_names_refuses_the_bundle(client, world):
    bundle = lab_bundle(world.record.pk, VALUES)
    bundle["entry"][0]["resource"]["result"].pop()
    assert _outcome(_post(client, world.dr_grant, bundle), 422).startswith("entry[3]:")
    assert not LabReport.objects.exists()


@pytest.mark.parametrize("persona", ["stranger", "blocked_kine", "urgentist"])
def test_who_may_not_add_to_the_record_adds_no_report(client, world, persona):
    response = _post(client, getattr(world, persona), lab_bundle(world.record.pk, VALUES))
    assert response.status_code in (403, 404)
    assert not LabReport.objects.exists()
    assert AuditEntry.objects.filter(action=Action.ADD_DOCUMENT, allowed=False).exists()


def _stored(client, world, **extra) -> LabReport:
    assert _post(client, world.dr_grant, lab_bundle(world.record.pk, VALUES, **extra)).status_code == 200
    return LabReport.objects.latest("pk")


def test_observation_search_by_patient_code_date_and_category_with_paging(client, world):
    _stored(client, world)
    _stored(client, world, identifier="CR-0002", effective="2025-06-01T09:00:00+02:00")
    base = f"/fhir/Observation?patient={world.record.pk}"
    everything = _get(client, world.dr_house, base).json()
    assert everything["total"] == 6
    hba1c = _get(client, world.dr_house, f"{base}&code=http://loinc.org|{HBA1C}").json()
    assert hba1c["total"] == 2 and {e["resource"]["code"]["coding"][0]["code"] for e in hba1c["entry"]} == {HBA1C}
    assert hba1c["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{world.record.pk}"
    assert _get(client, world.dr_house, f"{base}&date=ge2026-01-01").json()["total"] == 3
    assert _get(client, world.dr_house, f"{base}&date=ne2026-01-15").status_code == 400
    assert _get(client, world.dr_house, f"{base}&category=laboratory").json()["total"] == 6
    assert _get(client, world.dr_house, f"{base}&category=vital-signs").json()["total"] == 0
    page = _get(client, world.dr_house, f"{base}&_count=4").json()
    assert len(page["entry"]) == 4 and any(link["relation"] == "next" for link in page["link"])


def test_diagnostic_report_search_and_read_carry_the_values_and_the_document(client, world):
    report = _stored(client, world)
    found = _get(client, world.dr_house, f"/fhir/DiagnosticReport?patient={world.record.pk}&category=LAB").json()
    assert found["total"] == 1
    resource = found["entry"][0]["resource"]
    assert resource["presentedForm"][0]["url"] == f"Binary/{report.document_id}"
    assert len(resource["result"]) == 3 and resource["result"][0]["reference"].startswith("Observation/")
    read = _get(client, world.dr_house, f"/fhir/DiagnosticReport/{report.pk}")
    assert read.status_code == 200 and read.json()["id"] == str(report.pk)
    value = report.observations.order_by("position").first()
    observation = _get(client, world.dr_house, f"/fhir/Observation/{value.pk}").json()
    assert observation["valueQuantity"] == {"value": 7.4, "unit": "%", "system": "http://unitsofmeasure.org",
                                            "code": "%"}


def test_a_hidden_report_and_its_values_are_404_like_a_missing_one_and_the_refusal_is_logged(client, world):
    report = _stored(client, world)
    Document.objects.filter(pk=report.document_id).update(hidden_from_professionals=True)
    value = report.observations.first()
    for url in (f"/fhir/DiagnosticReport/{report.pk}", f"/fhir/Observation/{value.pk}",
                "/fhir/Observation/999999", "/fhir/DiagnosticReport/999999"):
        assert _get(client, world.urgentist, url).status_code == 404, url
    refused = AuditEntry.objects.filter(action=Action.VIEW_DOCUMENT, allowed=False,
                                        object_id=str(report.document_id))
    assert refused.count() == 2
    search = _get(client, world.urgentist, f"/fhir/Observation?patient={world.record.pk}").json()
    assert search["total"] == 0
    # The médecin traitant still reads them.
    assert _get(client, world.dr_house, f"/fhir/Observation/{value.pk}").status_code == 200


def test_a_search_on_a_record_one_may_not_open_is_404(client, world):
    _stored(client, world)
    assert _get(client, world.stranger, f"/fhir/Observation?patient={world.record.pk}").status_code == 404
    assert _get(client, world.stranger, f"/fhir/DiagnosticReport?patient={world.record.pk}").status_code == 404
    assert _get(client, world.dr_house, "/fhir/Observation").status_code == 400


API_RULES = [
    # (what the document is, persona, sees): the professional personas the API serves
    ("visible", "dr_house", True),
    ("visible", "regulator", True),  # SAMU
    ("visible", "urgentist", True),  # break-glass reads what is not hidden
    ("visible", "blocked_kine", False),  # blocked: not even the record
    ("visible", "late_urgentist", False),  # expired break-glass
    ("visible", "stranger", False),
    ("hidden", "dr_house", True),  # the médecin traitant sees hidden documents
    ("hidden", "dr_grant", True),  # so does their author
    ("hidden", "urgentist", False),  # break-glass never reveals them
    ("matrix refuses", "kine", False),
    ("matrix allows", "kine", True),
]


@pytest.mark.parametrize(("case", "persona", "sees"), API_RULES, ids=[f"{c}-{p}" for c, p, _s in API_RULES])
def test_through_the_api_values_are_found_exactly_where_the_report_document_is(client, world, case, persona, sees):
    from dmp.models import MatrixEntry

    report = _stored(client, world)
    if case == "hidden":
        Document.objects.filter(pk=report.document_id).update(hidden_from_professionals=True)
    if case.startswith("matrix"):
        MatrixEntry.objects.update_or_create(profession="physiotherapist", doc_type="lab_report",
                                             defaults={"allowed": case == "matrix allows"})
    pro = getattr(world, persona)
    documents = _get(client, pro, f"/fhir/DocumentReference?patient={world.record.pk}")
    listed = documents.status_code == 200 and any(
        e["resource"]["id"] == str(report.document_id) for e in documents.json().get("entry", []))
    values = _get(client, pro, f"/fhir/Observation?patient={world.record.pk}")
    found = values.status_code == 200 and values.json()["total"] == 3
    read = _get(client, pro, f"/fhir/DiagnosticReport/{report.pk}").status_code == 200
    assert (listed, found, read) == (sees, sees, sees)
