"""The constructs met in the ANS's own example documents (docs/cda.md "Checked against the ANS
corpus"), each in a small document written for the project: a CR-BIO whose values sit in an
untitled sub-chapter beside a value under a local code only, with CRLF line ends; a rapid
diagnostic test (BIO-TROD, filed as a laboratory report); a CDA Release 1 document; a report written
by the laboratory's software rather than a person; a child's measures (CSE-MDE, 29274-8).
Each through the professional's add and the FHIR API, refusals as much as acceptances."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from django.urls import reverse

from dmp.models import DocumentType, LabObservation
from dmp.policy import Actor
from dmp.selectors.results import results_for
from tests.test_cda import DATA, FHIR_JSON, NIR, _bearer, _pro_add, alice, cda  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def _crbio_crlf() -> bytes:
    """The CR-BIO byte for byte, its CRLF line ends kept (`cda()` reads text and would drop them)."""
    return (DATA / "crbio_ans_shape.xml").read_bytes().replace(b"{NIR}", NIR.encode())


def _fhir_add(client, pro, record, content: bytes, loinc: str):
    body = {"resourceType": "DocumentReference", "status": "current",
            "subject": {"reference": f"Patient/{record.pk}"},
            "type": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
            "description": "Compte rendu", "context": {"period": {"start": "2026-03-01"}},
            "content": [{"attachment": {"contentType": "application/xml", "data": base64.b64encode(content).decode()}}]}
    return client.post("/fhir/DocumentReference", body, content_type=FHIR_JSON, **_bearer(pro))


def test_a_crbio_in_the_ans_shape_keeps_its_loinc_value_and_shows_its_whole_table(
        client, alice, django_assert_max_num_queries):  # noqa: F811
    content = _crbio_crlf()
    assert b"\r\n" in content
    assert _pro_add(client, alice.dr_grant, alice.record, "crbio", content, DocumentType.LAB_REPORT).status_code == 302
    values = {v.code: v for v in results_for(Actor(alice.dr_grant.user), alice.record)}
    assert set(values) == {"3016-3"}  # the CRP under a local code alone is not a LOINC value
    tsh = values["3016-3"]
    assert (tsh.quantity, tsh.unit) == (Decimal("1.950"), "m[IU]/L")
    assert (tsh.low, tsh.high) == (Decimal("0.270"), Decimal("4.200"))
    document = alice.record.documents.get(mime_type="application/xml")
    with django_assert_max_num_queries(40):
        page = client.get(reverse("portal_pro:document_file", args=[document.pk])).content.decode()
    assert "<h2>BIOCHIMIE</h2>" in page and '<td rowspan="2">' in page
    assert "&lt;1.0 mg/l" in page and "(&lt; 5.0)" in page and "1.950 mUI/l" in page
    assert "&lt;td" not in page and "&lt;content" not in page  # no markup shown as text


def test_the_same_crbio_through_fhir_feeds_the_same_value(client, alice):  # noqa: F811
    response = _fhir_add(client, alice.dr_house, alice.record, _crbio_crlf(), "11502-2")
    assert response.status_code == 201, response.content[:800]
    assert list(LabObservation.objects.filter(record=alice.record).values_list("code", flat=True)) == ["3016-3"]


def test_a_rapid_test_is_filed_by_a_professional_and_readable(client, alice):  # noqa: F811
    assert _pro_add(client, alice.dr_grant, alice.record, "trod", cda("trod"),
                    DocumentType.LAB_REPORT).status_code == 302
    document = alice.record.documents.get(mime_type="application/xml")
    page = client.get(reverse("portal_pro:document_file", args=[document.pk])).content.decode()
    assert "Dépistage SARS-CoV2" in page and "négatif" in page
    assert not LabObservation.objects.filter(record=alice.record).exists()  # a coded result, no quantity


def test_fhir_files_a_rapid_test_as_a_laboratory_report_and_refuses_a_code_it_cannot_file(client, alice):  # noqa: F811
    """96173-0 (TROD) is in the DMP's type value set: a laboratory report. A code that is not
    is refused by name, never a 500, and nothing is stored."""
    refused = _fhir_add(client, alice.dr_house, alice.record, cda("trod"), "99999-9")
    assert refused.status_code == 422 and "99999-9" in refused.content.decode()
    assert not alice.record.documents.filter(mime_type="application/xml").exists()
    response = _fhir_add(client, alice.dr_house, alice.record, cda("trod"), "96173-0")
    assert response.status_code == 201, response.content[:800]
    assert alice.record.documents.get(mime_type="application/xml").doc_type == DocumentType.LAB_REPORT


def test_a_cda_release_1_document_is_refused_with_a_message_that_says_so(client, alice):  # noqa: F811
    response = _pro_add(client, alice.dr_grant, alice.record, "r1", cda("cda_r1"), DocumentType.LAB_REPORT)
    assert response.status_code == 400
    assert "is not a CDA R2 document" in response.content.decode().replace("&#x27;", "'")
    assert not alice.record.documents.filter(mime_type="application/xml").exists()


def test_fhir_refuses_a_cda_release_1_document_by_name(client, alice):  # noqa: F811
    response = _fhir_add(client, alice.dr_house, alice.record, cda("cda_r1"), "11502-2")
    assert response.status_code == 422 and "not a CDA R2 document" in response.content.decode()


def test_a_report_written_by_software_names_its_organisation_and_no_false_rpps(client, alice):  # noqa: F811
    """The ANS's CR-BIO TSH_2 and CNAM-HR are written by a device: no person, and (CNAM-HR) an
    organisation's identifier under the directory's root. The page named no one ("–") and showed
    that identifier as an RPPS number."""
    content = cda("software_author")
    assert _pro_add(client, alice.dr_grant, alice.record, "sgl", content, DocumentType.LAB_REPORT).status_code == 302
    document = alice.record.documents.get(mime_type="application/xml")
    page = client.get(reverse("portal_pro:document_file", args=[document.pk])).content.decode()
    author = page.split("<dt>Author</dt>", 1)[1].split("</dd>", 1)[0]
    assert "Laboratoire des Tilleuls (SGL), Dispositif médical" in author
    assert "RPPS" not in author and "375000123400041" not in page
    assert list(LabObservation.objects.filter(record=alice.record).values_list("code", flat=True)) == ["3016-3"]


def test_fhir_files_a_childs_measures_as_a_consultation_report_and_keeps_no_lab_values(client, alice):  # noqa: F811
    """29274-8 ("Mesures de signes vitaux", the ANS's CSE-MDE) is in the DMP's type value set: FHIR
    refused it (422) and the portal took any type for it. Its weight and heights are quantities
    but no laboratory results."""
    response = _fhir_add(client, alice.dr_house, alice.record, cda("vital_signs"), "29274-8")
    assert response.status_code == 201, response.content[:800]
    assert alice.record.documents.get(mime_type="application/xml").doc_type == DocumentType.CONSULTATION_REPORT
    assert not LabObservation.objects.filter(record=alice.record).exists()


def test_a_childs_measures_cannot_be_filed_as_a_laboratory_report(client, alice):  # noqa: F811
    """Filed as a lab report, the weight, height and head circumference would have become results."""
    refused = _pro_add(client, alice.dr_grant, alice.record, "mde", cda("vital_signs"), DocumentType.LAB_REPORT)
    assert refused.status_code == 400 and "choose that type" in refused.content.decode()
    assert not alice.record.documents.filter(mime_type="application/xml").exists()
    assert _pro_add(client, alice.dr_grant, alice.record, "mde", cda("vital_signs"),
                    DocumentType.CONSULTATION_REPORT).status_code == 302
    document = alice.record.documents.get(mime_type="application/xml")
    page = client.get(reverse("portal_pro:document_file", args=[document.pk])).content.decode()
    assert '<th colspan="2">Mesures</th>' in page and "Périmètre crânien" in page and "3900 g" in page
    assert not LabObservation.objects.filter(record=alice.record).exists()
