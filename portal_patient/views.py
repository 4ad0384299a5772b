"""The patient's portal (and a legal representative's, acting for the patient)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from dmp.http import document_file_response
from dmp.models import Record
from dmp.policy import Actor, portal_allowed
from dmp.selectors import documents_visible_to, get_record_for


@login_required
@require_GET
def home(request):
    if not portal_allowed(Actor.from_request(request), "patient"):
        raise PermissionDenied
    # The records this account may act on: its own and those it represents.
    records = Record.objects.filter(holder=request.user) | Record.objects.filter(
        representatives__user=request.user
    )
    records = list(records.distinct())
    if len(records) == 1:
        return redirect("portal_patient:record", pk=records[0].pk)
    return render(request, "portal_patient/home.html", {"records": records})


@login_required
@require_GET
def record(request, pk: int):
    actor = Actor.from_request(request)
    rec = get_record_for(actor, pk)
    documents = documents_visible_to(actor, rec, include_archived=True)
    return render(request, "portal_patient/record.html", {"record": rec, "documents": documents})


@login_required
@require_GET
def document_file(request, pk: int):
    return document_file_response(request, pk)
