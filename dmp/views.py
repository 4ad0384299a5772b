"""Home page and error pages. Error pages say nothing about records: 403 and 404 are the same
page, whatever the cause."""

from __future__ import annotations

from django.http import HttpResponseServerError
from django.shortcuts import redirect, render
from django.template import loader
from django.views.decorators.http import require_GET


@require_GET
def home(request):
    user = request.user
    if user.is_authenticated:
        if hasattr(user, "record"):
            return redirect("portal_patient:home")
        if hasattr(user, "professional"):
            return redirect("portal_pro:home")
        if hasattr(user, "counter_agent"):
            return redirect("social_workers:home")
        if user.represented.exists():
            return redirect("portal_patient:home")
    return render(request, "home.html")


def error_403(request, exception=None):
    return render(request, "errors/not_available.html", status=403)


def error_404(request, exception=None):
    return render(request, "errors/not_available.html", status=404)


def error_500(request):
    # No request context: a failing context processor must not turn a 500 into a crash.
    return HttpResponseServerError(loader.get_template("errors/500.html").render())
