"""The record's home page, the list of records an account acts for, and document files."""

from __future__ import annotations

from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET

from dmp.http import (
    document_file_response,
    patient_summary_response,
    portal_view,
    record_view,
    synthesis_cda_response,
)
from dmp.paging import page_number, page_of, page_urls
from dmp.selectors import records_acted_for, synthesis_for
from dmp.selectors.patient import patient_home
from dmp.selectors.summary import summary_to_print

from ._common import render_record_page


@require_GET
@portal_view("patient")
def home(request, actor):
    """One record: straight to it. Several (a parent for their children, and their own): choose."""
    records = page_of(records_acted_for(actor), page_number(request.GET.get("page")))
    if records.paginator.count == 1:
        return redirect("portal_patient:record", pk=records[0].pk)
    return render(request, "portal_patient/home.html", {
        "records": records.object_list, "page": records,
        "page_urls": page_urls(reverse("portal_patient:home"), records),
    })


@require_GET
@record_view("patient")
def record(request, actor, rec):
    return render_record_page(request, "portal_patient/record.html", actor, rec, {"home": patient_home(actor, rec)},
                              section="home")


@require_GET
@record_view("patient")
def synthesis(request, actor, rec):
    """The medical synthesis the médecin traitant keeps, read-only for the patient."""
    return render_record_page(request, "portal_patient/synthesis.html", actor, rec,
                              {"synthesis": synthesis_for(actor, rec)}, section="home")


@require_GET
@record_view("patient")
def synthesis_cda(request, actor, rec):
    """The synthesis as a CDA VSM document, to hand to a doctor's software."""
    return synthesis_cda_response(actor, rec)


@require_GET
@portal_view("patient")
def summary_pdf(request, actor, pk: int):
    """The International Patient Summary as a PDF, to carry to a doctor abroad: always a
    download, never cached (the access policy decides, dmp/selectors/summary.py)."""
    content = summary_to_print(actor, pk)
    return patient_summary_response(content)


@require_GET
@portal_view("patient")
def document_file(request, actor, pk: int):
    return document_file_response(actor, pk)


urlpatterns = [
    path("", home, name="home"),
    path("records/<int:pk>/", record, name="record"),
    path("records/<int:pk>/synthesis/", synthesis, name="synthesis"),
    path("records/<int:pk>/synthesis/vsm.xml", synthesis_cda, name="synthesis_cda"),
    path("records/<int:pk>/summary.pdf", summary_pdf, name="summary_pdf"),
    path("documents/<int:pk>/file/", document_file, name="document_file"),
]
