"""The health professionals' portal."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dmp.http import actor_for_portal, document_file_response
from dmp.selectors import documents_visible_to, get_record_for, records_followed_by


@login_required
@require_GET
def home(request):
    actor = actor_for_portal(request, "pro")
    return render(request, "portal_pro/home.html", {"records": records_followed_by(actor)})


@login_required
@require_GET
def record(request, pk: int):
    actor = actor_for_portal(request, "pro")
    rec = get_record_for(actor, pk)
    documents = documents_visible_to(actor, rec)
    return render(request, "portal_pro/record.html", {"record": rec, "documents": documents})


@login_required
@require_GET
def document_file(request, pk: int):
    actor_for_portal(request, "pro")
    return document_file_response(request, pk)
