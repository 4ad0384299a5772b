"""CDA R2 documents (docs/cda.md), written for the project along the CI-SIS content models in
tests/data/cda/: accepted through every way in (the patient's upload, a professional's add, a
counter deposit, FHIR DocumentReference and the ITI-65 transaction), kept byte for byte, their
header read, their narrative rendered without any active content, their words searchable; the
broken ones refused by name (XXE, billion laughs, a header without an author), a document about
another patient refused and logged; a CR-BIO's LOINC values read with both units."""

from __future__ import annotations

import base64
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from dmp.cda.crbio import lab_values
from dmp.cda.hardened import parse
from dmp.file_safety import check_file
from dmp.models import AuditEntry, Document, DocumentType
from dmp.models.record import nir_key
from dmp.policy import Actor
from dmp.services import InvalidInput, InvalidInputCode, api_token_create
from tests.personas import make_record, make_user

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data" / "cda"
NIR13, OTHER13 = "2700575123456", "1651299123456"
NIR, OTHER_NIR = f"{NIR13}{nir_key(NIR13):02d}", f"{OTHER13}{nir_key(OTHER13):02d}"
FHIR_JSON = "application/fhir+json"


def cda(name: str, nir: str = NIR, provisional: str = "") -> bytes:
    """One of the project's CDA documents, for the patient with this INS-NIR."""
    text = (DATA / f"{name}.xml").read_text(encoding="utf-8")
    return text.replace("{NIR}", nir).replace("{PROVISIONAL}", provisional).encode()


@pytest.fixture
def alice(world):
    world.record.nir = NIR
    world.record.save(update_fields=["nir"])
    return world


def _crbio(world) -> bytes:
    return cda("crbio", provisional=world.record.provisional_id)


def _pro_add(client, pro, record, name: str, content: bytes, doc_type: str, title: str = "Compte rendu"):
    client.force_login(pro.user)
    return client.post(reverse("portal_pro:documents_add", args=[record.pk]), {
        "files": [SimpleUploadedFile(f"{name}.xml", content)], "file_type": [doc_type], "file_title": [title],
        "file_date": ["2026-02-01"]})


def _stored(document: Document) -> bytes:
    with document.file.open("rb") as stored:
        return stored.read()


def _no_active_content(page: str) -> None:
    html = page.split('<section class="cda-rendering"', 1)[1].split("</section>\n")[-2]
    assert "<script" not in html.lower() and "alert(" not in html
    assert not re.search(r"\son\w+\s*=", html), "an event handler attribute"
    assert "javascript:" not in html and "tracker.example" not in html and "images.example" not in html


# --- parsing: what is refused, by name --------------------------------------------------------


@pytest.mark.parametrize(("name", "message"), [
    ("xxe", "declares a DTD or entities"),
    ("billion_laughs", "declares a DTD or entities"),
    ("no_author", "its header has no effectiveTime, author"),
])
def test_broken_documents_are_refused_with_a_message_that_names_why(name, message):
    with pytest.raises(InvalidInput) as refused:
        check_file(cda(name))
    assert refused.value.code == InvalidInputCode.FILE_REFUSED and message in str(refused.value)


def test_xml_that_is_not_a_clinical_document_is_refused():
    for content, message in ((b'<note xmlns="urn:example:notes"><body/></note>', "not a CDA R2 document"),
                             (b'<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>', "Only PDF files"),
                             (b"<ClinicalDocument><code/>", "not well-formed XML")):
        with pytest.raises(InvalidInput, match=message):
            check_file(content)


def test_the_parser_itself_refuses_a_doctype_whatever_comes_before_it():
    padded = b"<?xml version='1.0'?>" + b"<!--" + b"x" * 70_000 + b"-->" + cda("xxe").split(b"?>", 1)[1]
    with pytest.raises(Exception, match="dtd"):
        parse(padded)


# --- CR-BIO values ----------------------------------------------------------------------------


def test_crbio_yields_its_loinc_values_with_both_units_of_a_value_given_in_two():
    values = {v.loinc: v for v in lab_values(parse(cda("crbio")))}
    assert set(values) == {"14771-0", "14682-9", "4548-4", "3016-3"}
    glucose = values["14771-0"]
    assert [(q.value, q.unit) for q in glucose.quantities] == [(Decimal("5.9"), "mmol/L"), (Decimal("1.06"), "g/L")]
    assert (glucose.low.value, glucose.high.value, glucose.low.unit) == (Decimal("3.9"), Decimal("6.0"), "mmol/L")
    assert glucose.interpretation == "N" and glucose.effective.isoformat() == "2026-02-11T07:35:00+01:00"
    hba1c = values["4548-4"]
    assert (hba1c.value, hba1c.unit, hba1c.interpretation) == (Decimal("7.4"), "%", "H")
    assert values["3016-3"].display.startswith("TSH")


# --- through the portals ----------------------------------------------------------------------


def test_a_gp_adds_a_crbio_kept_byte_for_byte_read_and_rendered(client, alice, django_assert_max_num_queries):
    content = _crbio(alice)
    response = _pro_add(client, alice.dr_grant, alice.record, "crbio", content, DocumentType.LAB_REPORT)
    assert response.status_code == 302, response.content.decode()[:2000]
    document = alice.record.documents.get(mime_type="application/xml")
    assert _stored(document) == content and document.act_date.isoformat() == "2026-02-11"
    assert AuditEntry.objects.filter(actor=alice.dr_grant.user, action="add_document", allowed=True).exists()

    with django_assert_max_num_queries(25):
        page = client.get(reverse("portal_pro:document_file", args=[document.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and "<table" in html and "<td>Glycémie à jeun</td>" in html.replace(
        ' rowspan="2"', "")
    assert "Dr Hélène DUVAL" in html and "10001234567" in html
    pdf = client.get(reverse("portal_pro:document_print", args=[document.pk]))
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    original = client.get(reverse("portal_pro:document_original", args=[document.pk]))
    assert b"".join(original.streaming_content) == content and original["Content-Type"] == "application/xml"

    # Its narrative's words are searchable; a word it does not hold finds nothing.
    url = reverse("portal_pro:documents", args=[alice.record.pk])
    opens = reverse("portal_pro:document_file", args=[document.pk])
    client.post(url, {"text": "creatinine"})
    assert opens in client.get(url).content.decode()
    client.post(url, {"text": "echographie"})
    assert opens not in client.get(url).content.decode()


def test_the_type_the_document_states_must_be_the_one_chosen(client, alice):
    response = _pro_add(client, alice.dr_grant, alice.record, "crbio", _crbio(alice), DocumentType.CERTIFICATE)
    assert "choose that type" in response.content.decode()
    assert not alice.record.documents.filter(mime_type="application/xml").exists()


def test_a_cda_about_another_patient_is_refused_logged_and_never_filed(client, alice):
    response = _pro_add(client, alice.dr_grant, alice.record, "imaging", cda("imaging", nir=OTHER_NIR),
                        DocumentType.IMAGING_REPORT)
    assert "about another patient" in response.content.decode()
    assert not Document.objects.filter(mime_type="application/xml").exists()
    assert AuditEntry.objects.filter(actor=alice.dr_grant.user, action="add_document", allowed=False,
                                     rule="cda_other_patient").count() == 1


def test_a_cda_naming_no_identifier_of_ours_is_refused(client, alice):
    content = cda("imaging").replace(b'root="1.2.250.1.213.1.4.8"', b'root="1.2.250.1.999"')
    response = _pro_add(client, alice.dr_grant, alice.record, "imaging", content, DocumentType.IMAGING_REPORT)
    assert "about another patient" in response.content.decode()


def test_the_patient_uploads_a_level_1_cda_and_opens_the_pdf_inside(client, alice):
    content = cda("level1_pdf")
    client.force_login(alice.alice)
    response = client.post(reverse("portal_patient:documents_add", args=[alice.record.pk]), {
        "doc_type": DocumentType.PATIENT_DOCUMENT, "act_date": "2025-06-01", "title": "Cardio",
        "files": [SimpleUploadedFile("cardio.xml", content)]})
    assert response.status_code == 302, response.content.decode()[:2000]
    document = alice.record.documents.get(mime_type="application/xml")
    assert _stored(document) == content and document.thumbnail  # of the PDF inside
    page = client.get(reverse("portal_patient:document", args=[alice.record.pk, document.pk])).content.decode()
    assert "Marc LEROY" in page and "CDA (XML)" in page
    opened = client.get(reverse("portal_patient:document_file", args=[document.pk]))
    assert opened["Content-Type"] == "application/pdf" and opened.content.startswith(b"%PDF-")
    assert opened["Content-Disposition"].startswith("attachment")
    download = client.get(reverse("portal_patient:document_download", args=[alice.record.pk, document.pk]))
    assert b"".join(download.streaming_content) == content

    # The words of the PDF inside are searchable.
    url = reverse("portal_patient:documents", args=[alice.record.pk])
    client.post(url, {"text": "echocardiographie"})
    assert ">Cardio</a>" in client.get(url).content.decode()


def test_the_rendering_carries_no_active_content_even_when_the_source_does(client, alice):
    assert _pro_add(client, alice.dr_grant, alice.record, "imaging", cda("imaging"),
                    DocumentType.IMAGING_REPORT).status_code == 302
    document = alice.record.documents.get(mime_type="application/xml")
    for reader, url in ((alice.dr_grant.user, reverse("portal_pro:document_file", args=[document.pk])),
                        (alice.alice, reverse("portal_patient:document", args=[alice.record.pk, document.pk]))):
        client.force_login(reader)
        html = client.get(url).content.decode()
        assert "gonarthrose interne débutante" in html and "Visualiser les images" in html
        _no_active_content(html)
    client.force_login(alice.alice)
    url = reverse("portal_patient:documents", args=[alice.record.pk])
    client.post(url, {"text": "gonarthrose"})
    assert ">Compte rendu</a>" in client.get(url).content.decode()


def test_a_counter_deposits_a_cda_write_only(client, alice):
    client.force_login(alice.agent.user)
    response = client.post(reverse("social_workers:counter_deposit", args=[alice.record.pk]), {
        "files": [SimpleUploadedFile("imaging.xml", cda("imaging"))], "file_type": [DocumentType.IMAGING_REPORT],
        "file_title": ["Radio"], "file_date": ["2026-01-20"]})
    assert response.status_code in (200, 302)
    assert alice.record.documents.filter(mime_type="application/xml", author_kind="counter").count() == 1


def test_a_document_of_an_unknown_content_model_is_stored_and_read_by_its_narrative(client, alice):
    assert _pro_add(client, alice.dr_grant, alice.record, "unknown", cda("unknown_model"),
                    DocumentType.CONSULTATION_REPORT, title="Diététique").status_code == 302
    document = alice.record.documents.get(mime_type="application/xml")
    html = client.get(reverse("portal_pro:document_file", args=[document.pk])).content.decode()
    assert "Apports caloriques adaptés." in html and "Texte gardé" in html and "<ol><li>Fruits" in html


# --- through the API --------------------------------------------------------------------------


def _bearer(pro) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(actor=Actor(pro.user), label='LGC')[1]}"}


def test_fhir_document_reference_with_application_xml_stores_the_cda(client, alice):
    content = cda("vsm")
    body = {"resourceType": "DocumentReference", "status": "current",
            "subject": {"reference": f"Patient/{alice.record.pk}"},
            "type": {"coding": [{"system": "http://loinc.org", "code": "60591-5"}]},
            "description": "Synthèse", "context": {"period": {"start": "2026-01-20"}},
            "content": [{"attachment": {"contentType": "text/xml", "data": base64.b64encode(content).decode()},
                         "format": {"system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
                                    "code": "urn:asip:ci-sis:vsm:2012"}}]}
    response = client.post("/fhir/DocumentReference", body, content_type=FHIR_JSON, **_bearer(alice.dr_house))
    assert response.status_code == 201, response.content[:800]
    document = alice.record.documents.get(mime_type="application/xml")
    assert _stored(document) == content and document.doc_type == DocumentType.RECORD_SYNTHESIS
    binary = client.get(f"/fhir/Binary/{document.pk}", HTTP_ACCEPT="application/xml", **_bearer(alice.dr_house))
    assert binary.status_code == 200 and binary.content == content


def test_fhir_refuses_a_cda_about_another_patient(client, alice):
    body = {"resourceType": "DocumentReference", "status": "current",
            "subject": {"reference": f"Patient/{alice.record.pk}"},
            "type": {"coding": [{"system": "http://loinc.org", "code": "60591-5"}]},
            "content": [{"attachment": {"contentType": "application/xml",
                                        "data": base64.b64encode(cda("vsm", nir=OTHER_NIR)).decode()}}]}
    response = client.post("/fhir/DocumentReference", body, content_type=FHIR_JSON, **_bearer(alice.dr_house))
    assert response.status_code == 422 and "another patient" in response.content.decode()
    assert AuditEntry.objects.filter(rule="cda_other_patient", allowed=False).count() == 1


def iti65_with_crbio(world, content: bytes) -> dict:
    """The ANS's PDSm ITI-65 example carrying the CR-BIO `content`, published by the médecin traitant."""
    text = (Path(__file__).parent / "data" / "pdsm_iti65_submission.json").read_text(encoding="utf-8")
    text = (text.replace("{{NIR}}", NIR).replace("{{IDNPS}}", f"8{world.dr_house.rpps}")
            .replace("{{PDF_BASE64}}", base64.b64encode(content).decode())
            .replace('"application/pdf"', '"application/xml"').replace('"11488-4"', '"11502-2"')
            .replace("urn:ihe:iti:xds-sd:pdf:2008", "urn:asip:ci-sis:cr-bio:2024"))
    body = json.loads(text)
    body["entry"][1]["resource"]["category"] = [
        c for c in body["entry"][1]["resource"].get("category", []) if "11488-4" not in json.dumps(c)]
    return body


def test_the_iti65_transaction_carrying_a_cda_publishes_it(client, alice):
    content = _crbio(alice)
    response = client.post("/fhir/", iti65_with_crbio(alice, content), content_type=FHIR_JSON,
                           **_bearer(alice.dr_house))
    assert response.status_code == 200, response.content[:1500]
    document = alice.record.documents.get(mime_type="application/xml")
    assert _stored(document) == content and document.doc_type == DocumentType.LAB_REPORT


def test_another_record_is_not_confused_with_alice(alice):
    other = make_record(make_user("bob_other"), family_name="Durand", nir=OTHER_NIR)
    assert check_file(cda("vsm")).cda.is_about(alice.record) and not check_file(cda("vsm")).cda.is_about(other)
