"""The professional's results page (issue 18): each analyte over time, as a chart and a table,
filtered by period and analyte, each value linked to its report's document
(dmp/screens/results.py, shared with the patient's portal)."""

from __future__ import annotations

from django.urls import path
from django.views.decorators.http import require_http_methods

from dmp.http import record_view
from dmp.screens import results as screen

from ._common import render_record_page


@require_http_methods(["GET", "HEAD", "POST"])
@record_view("pro")
def results(request, actor, rec):
    return screen.respond(request, actor, rec, template="portal_pro/results/page.html", render=render_record_page,
                          session_prefix="pro_results_filters")


urlpatterns = [
    path("records/<int:pk>/results/", results, name="results"),
]
