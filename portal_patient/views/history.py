"""The patient's access history (DOMAIN.md §3 "patient access history"): the screen shared
with the médecin traitant (dmp/screens/history.py, templates/access_history/)."""

from __future__ import annotations

from django.urls import path
from django.views.decorators.http import require_GET

from dmp.http import record_view
from dmp.screens.history import history_context

from ._common import render_record_page


@require_GET
@record_view("patient")
def history(request, actor, rec):
    return render_record_page(request, "portal_patient/history/history.html", actor, rec, history_context(
        request, actor, rec, history_view="portal_patient:history", base_template="portal_patient/base_record.html",
    ), section="history")


urlpatterns = [
    path("records/<int:pk>/history/", history, name="history"),
]
