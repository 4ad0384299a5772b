"""The professional's home: their patients, finding a patient, opening a record."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from dmp.http import actor_for_portal
from dmp.selectors import records_followed_by


@login_required
@require_GET
def home(request):
    actor = actor_for_portal(request, "pro")
    return render(request, "portal_pro/home.html", {"records": records_followed_by(actor)})


urlpatterns = [
    path("", home, name="home"),
]
