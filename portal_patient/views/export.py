"""The patient's export screen (DOMAIN.md §3): the whole record as one ZIP, prepared in the
background, with its progress and a download link when ready."""

from __future__ import annotations

from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from dmp.http import decrypted_file_response, portal_view, protected_file_response, record_view
from dmp.models import RecordExport
from dmp.policy import Action
from dmp.selectors import EXPORT_RETENTION, get_record_export_for, record_exports_for
from dmp.services import record_export_request

from ._common import render_record_page


@require_http_methods(["GET", "POST"])
@record_view("patient", action=Action.EXPORT_RECORD)
def export(request, actor, rec):
    """What the ZIP holds, the latest export's state, and the button that prepares a new one."""
    if request.method == "POST":
        record_export_request(actor=actor, record=rec)
        return redirect("portal_patient:export", pk=rec.pk)
    latest = record_exports_for(actor, rec).first()
    preparing = latest is not None and latest.status in (RecordExport.Status.PENDING, RecordExport.Status.RUNNING)
    return render_record_page(request, "portal_patient/export/export.html", actor, rec, {
        "export": latest,
        "preparing": preparing,
        "expires_at": latest.created_at + EXPORT_RETENTION if latest else None,
        "retention_days": EXPORT_RETENTION.days,
    }, section="export")


@require_GET
@portal_view("patient")
def export_download(request, actor, pk: int, export_pk: int):
    """The ZIP, decrypted as it is sent, saved by the browser under a name that says nothing medical."""
    export = get_record_export_for(actor, pk, export_pk)
    day = timezone.localdate(export.finished_at)
    response = decrypted_file_response(export.file, "application/zip")
    return protected_file_response(response, f"dmp-export-{day:%Y-%m-%d}.zip")


urlpatterns = [
    path("records/<int:pk>/export/", export, name="export"),
    path("records/<int:pk>/export/<int:export_pk>/download/", export_download, name="export_download"),
]
