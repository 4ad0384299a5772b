"""The patient's export screen (DOMAIN.md §3): the whole record as one ZIP, prepared in the
background, with its progress and a download link when ready."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from dmp.http import actor_for_portal, protected_file_response
from dmp.models import RecordExport
from dmp.policy import Action
from dmp.selectors import EXPORT_RETENTION, get_record_export_for, record_exports_for
from dmp.services import AccessRefused, record_export_request

from ._common import record_for_request, render_record_page


@login_required
@require_http_methods(["GET", "POST"])
def export(request, pk: int):
    """What the ZIP holds, the latest export's state, and the button that prepares a new one."""
    actor, rec = record_for_request(request, pk, action=Action.EXPORT_RECORD)
    if request.method == "POST":
        try:
            record_export_request(actor=actor, record=rec)
        except AccessRefused:
            raise Http404 from None
        return redirect("portal_patient:export", pk=rec.pk)
    latest = record_exports_for(actor, rec).first()
    preparing = latest is not None and latest.status in (RecordExport.Status.PENDING, RecordExport.Status.RUNNING)
    return render_record_page(request, "portal_patient/export/export.html", actor, rec, {
        "export": latest,
        "preparing": preparing,
        "expires_at": latest.created_at + EXPORT_RETENTION if latest else None,
        "retention_days": EXPORT_RETENTION.days,
    }, section="export")


@login_required
@require_GET
def export_download(request, pk: int, export_pk: int):
    """The decrypted ZIP, saved by the browser under a name that says nothing medical."""
    export = get_record_export_for(actor_for_portal(request, "patient"), pk, export_pk)
    day = timezone.localdate(export.finished_at)
    response = FileResponse(export.file.open("rb"), content_type="application/zip")
    return protected_file_response(response, f"dmp-export-{day:%Y-%m-%d}.zip")


urlpatterns = [
    path("records/<int:pk>/export/", export, name="export"),
    path("records/<int:pk>/export/<int:export_pk>/download/", export_download, name="export_download"),
]
