"""The patient screen: what matters in 15 seconds (DOMAIN.md §3, clinician patient screen), on
one screen, and the same as a one-page A4 PDF."""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET

from dmp import pdf
from dmp.cda.reading import is_cda, reading_of
from dmp.http import document_file_response, document_original_response, document_response, portal_view, record_view
from dmp.selectors import get_document_for
from dmp.selectors.clinician import patient_screen

from ._common import render_record_page

PDF_TEMPLATE = "portal_pro/patient/pdf.html"
# Less and less detail until the page fits on one A4 sheet.
PDF_LEVELS = (
    {"per_space": 3, "items": 12, "chars": 500, "font_size": "9pt"},
    {"per_space": 2, "items": 8, "chars": 280, "font_size": "8.5pt"},
    {"per_space": 1, "items": 5, "chars": 160, "font_size": "8pt"},
    {"per_space": 0, "items": 3, "chars": 80, "font_size": "7.5pt"},
)


@require_GET
@record_view("pro")
def record(request, actor, rec):
    return render_record_page(request, "portal_pro/record.html", actor, rec,
                              {"screen": patient_screen(actor, rec)}, section="patient")


@require_GET
@record_view("pro")
def record_pdf(request, actor, rec):
    """The patient screen as one A4 page (WeasyPrint), saved under a name that says nothing
    medical. Read through the same selector as the screen, so it is logged the same way."""
    context = {"screen": patient_screen(actor, rec), "printed_at": timezone.now(),
               "printed_by": actor.user.get_full_name() or actor.user.username}
    response = HttpResponse(pdf.one_page_pdf(PDF_TEMPLATE, context, PDF_LEVELS), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="dmp-patient-{rec.pk}-{timezone.localdate():%Y%m%d}.pdf"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@portal_view("pro")
def document_file(request, actor, pk: int):
    """Open a document: its file, or a level-3 CDA's rendering as a page (docs/cda.md)."""
    document = get_document_for(actor, pk)
    reading = reading_of(document) if is_cda(document) else None
    if reading is None or reading.embedded_content:
        return document_response(document)
    return render_record_page(request, "portal_pro/documents/cda.html", actor, document.record,
                              {"document": document, "reading": reading}, section="documents")


@require_GET
@portal_view("pro")
def document_print(request, actor, pk: int):
    """A CDA's rendering as a PDF, or any other document's file."""
    return document_file_response(actor, pk)


@require_GET
@portal_view("pro")
def document_original(request, actor, pk: int):
    """The document as it was sent (a CDA's XML byte for byte)."""
    return document_original_response(get_document_for(actor, pk))


urlpatterns = [
    path("records/<int:pk>/", record, name="record"),
    path("records/<int:pk>/pdf/", record_pdf, name="record_pdf"),
    path("documents/<int:pk>/file/", document_file, name="document_file"),
    path("documents/<int:pk>/print/", document_print, name="document_print"),
    path("documents/<int:pk>/original/", document_original, name="document_original"),
]
