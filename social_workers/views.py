"""The counter agents' and social workers' portal: administrative status only, never content."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dmp.policy import Actor, portal_allowed
from dmp.selectors.counter import records_onboarded_by


@login_required
@require_GET
def home(request):
    actor = Actor.from_request(request)
    if not portal_allowed(actor, "counter"):
        raise PermissionDenied
    return render(request, "social_workers/home.html", {"rows": records_onboarded_by(actor)})
