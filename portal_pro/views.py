"""The health professionals' portal."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dmp.http import document_file_response
from dmp.policy import Actor, portal_allowed
from dmp.selectors import documents_visible_to, get_record_for, records_followed_by


def _professional(request) -> Actor:
    actor = Actor.from_request(request)
    if not portal_allowed(actor, "pro"):
        raise PermissionDenied
    return actor


@login_required
@require_GET
def home(request):
    actor = _professional(request)
    return render(request, "portal_pro/home.html", {"records": records_followed_by(actor)})


@login_required
@require_GET
def record(request, pk: int):
    actor = _professional(request)
    rec = get_record_for(actor, pk)
    documents = documents_visible_to(actor, rec)
    return render(request, "portal_pro/record.html", {"record": rec, "documents": documents})


@login_required
@require_GET
def document_file(request, pk: int):
    _professional(request)
    return document_file_response(request, pk)
