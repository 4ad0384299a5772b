"""The patient's access history (DOMAIN.md §3 "patient access history"): a summary first, the
detail on demand, filtered by person and period. The filters travel in the query string:
an account id and dates, nothing medical."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from dmp.selectors import HistoryFilters, access_history

from ._common import record_for_request, render_record_page


class HistoryFilterForm(forms.Form):
    who = forms.IntegerField(required=False, min_value=1)
    date_from = forms.DateField(required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError(_("The start of the period is after its end."))
        return data

    def filters(self) -> HistoryFilters:
        if not self.is_valid():
            return HistoryFilters()
        return HistoryFilters(
            actor_id=self.cleaned_data["who"], date_from=self.cleaned_data["date_from"],
            date_to=self.cleaned_data["date_to"],
        )


@login_required
@require_GET
def history(request, pk: int):
    actor, rec = record_for_request(request, pk)
    form = HistoryFilterForm(request.GET)
    result = access_history(actor, rec, filters=form.filters(), page=request.GET.get("page", 1))
    return render_record_page(request, "portal_patient/history/history.html", actor, rec, {
        "history": result, "form": form,
        # The detail opens by itself when asked for a page of it or for a filtered view.
        "detail_open": "page" in request.GET or result.total <= 10,
    }, section="history")


urlpatterns = [
    path("records/<int:pk>/history/", history, name="history"),
]
