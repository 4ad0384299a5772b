"""The record export and CDA documents (docs/cda.md): the original XML byte for byte, and beside
it under the same name what it shows — the PDF of a level-3 document's rendering, the file a
level-1 document wraps."""

from __future__ import annotations

import base64
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from dmp.cda.hardened import embedded, parse
from dmp.models import DocumentType, RecordExport
from tests.test_cda import _crbio, _pro_add, alice, cda  # noqa: F401 - the fixture
from tests.test_patient_export import _download, eager  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def test_the_export_holds_each_cda_byte_for_byte_with_its_rendering_or_the_file_it_wraps(client, alice, eager):  # noqa: F811
    level3 = _crbio(alice)
    assert _pro_add(client, alice.dr_grant, alice.record, "crbio", level3, DocumentType.LAB_REPORT).status_code == 302
    level1 = cda("level1_pdf")
    client.force_login(alice.alice)
    assert client.post(reverse("portal_patient:documents_add", args=[alice.record.pk]), {
        "doc_type": DocumentType.PATIENT_DOCUMENT, "act_date": "2025-06-01", "title": "Cardio",
        "files": [SimpleUploadedFile("cardio.xml", level1)]}).status_code == 302
    crbio_doc = alice.record.documents.get(mime_type="application/xml", doc_type=DocumentType.LAB_REPORT)
    level1_doc = alice.record.documents.get(mime_type="application/xml", doc_type=DocumentType.PATIENT_DOCUMENT)

    eager(client, alice.record)
    _, archive = _download(client, RecordExport.objects.get(record=alice.record))
    names = archive.namelist()

    def beside(document, extension: str) -> tuple[bytes, bytes]:
        xml = next(n for n in names if re.search(rf"-{document.pk}\.xml$", n))
        return archive.read(xml), archive.read(xml.removesuffix(".xml") + f".{extension}")

    original, rendering = beside(crbio_doc, "pdf")
    assert original == level3 and rendering.startswith(b"%PDF-")
    original, wrapped = beside(level1_doc, "pdf")
    inner = base64.b64decode("".join(embedded(parse(level1))[1].split()))
    assert original == level1 and wrapped == inner
