"""The patient's results page (issue 18): the same values as the professional's page, in plain
words, with the reference range; nothing of a report not yet released to the patient, nothing a
representative may not see (dmp/screens/results.py and its selectors)."""

from __future__ import annotations

from django.urls import path
from django.views.decorators.http import require_http_methods

from dmp.http import record_view
from dmp.screens import results as screen

from ._common import render_record_page


@require_http_methods(["GET", "HEAD", "POST"])
@record_view("patient")
def results(request, actor, rec):
    return screen.respond(request, actor, rec, template="portal_patient/results/page.html",
                          render=render_record_page, session_prefix="patient_results_filters")


urlpatterns = [
    path("records/<int:pk>/results/", results, name="results"),
]
