"""The patient's portal (and a legal representative's, acting for the patient)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from dmp.http import actor_for_portal, document_file_response
from dmp.policy import Actor
from dmp.selectors import documents_visible_to, get_record_for, records_acted_for


@login_required
@require_GET
def home(request):
    records = list(records_acted_for(actor_for_portal(request, "patient")))
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
