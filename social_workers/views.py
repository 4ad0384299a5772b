"""The counter agents' and social workers' portal: administrative status only, never content."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dmp.http import actor_for_portal
from dmp.selectors.counter import records_onboarded_by


@login_required
@require_GET
def home(request):
    actor = actor_for_portal(request, "counter")
    return render(request, "social_workers/home.html", {"rows": records_onboarded_by(actor)})
