"""The patient screen: what matters in 15 seconds (DOMAIN.md §3, clinician patient screen)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.urls import path
from django.views.decorators.http import require_GET

from dmp.http import actor_for_portal, document_file_response
from dmp.selectors import documents_visible_to

from ._common import record_for_request, render_record_page


@login_required
@require_GET
def record(request, pk: int):
    actor, rec = record_for_request(request, pk)
    return render_record_page(request, "portal_pro/record.html", actor, rec,
                              {"documents": documents_visible_to(actor, rec)}, section="patient")


@login_required
@require_GET
def document_file(request, pk: int):
    actor_for_portal(request, "pro")
    return document_file_response(request, pk)


urlpatterns = [
    path("records/<int:pk>/", record, name="record"),
    path("documents/<int:pk>/file/", document_file, name="document_file"),
]
