"""Home page and error pages. Error pages say nothing about records: 403 and 404 are the same
page, whatever the cause."""

from __future__ import annotations

from django.http import HttpResponseServerError
from django.shortcuts import redirect, render
from django.template import loader
from django.views.decorators.http import require_GET

from .policy import PORTALS, Actor, portal_allowed

_PORTAL_HOMES = {"patient": "portal_patient:home", "pro": "portal_pro:home", "counter": "social_workers:home"}


@require_GET
def home(request):
    """Send a logged-in account to the first portal the policy lets it enter."""
    actor = Actor.from_request(request)
    for portal in PORTALS:
        if portal_allowed(actor, portal):
            return redirect(_PORTAL_HOMES[portal])
    return render(request, "home.html")


def error_403(request, exception=None):
    return render(request, "errors/not_available.html", status=403)


def error_404(request, exception=None):
    return render(request, "errors/not_available.html", status=404)


def error_500(request):
    # No request context: a failing context processor must not turn a 500 into a crash.
    return HttpResponseServerError(loader.get_template("errors/500.html").render())
