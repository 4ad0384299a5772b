"""The access-history screen (DOMAIN.md §3), one feature for the patient and the médecin
traitant: a summary first, the detail on demand, filtered by person and period. The filters
travel in the query string: an account id and dates, nothing medical. Who may read it is the
policy's answer (VIEW_ACCESS_HISTORY), asked by `access_history()`."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy

from dmp.selectors import HistoryFilters, access_history

TEMPLATE_BASE = "access_history/history.html"


class HistoryFilterForm(forms.Form):
    who = forms.IntegerField(required=False, min_value=1)
    date_from = forms.DateField(required=False, label=gettext_lazy("From"),
                                widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError(gettext_lazy("The start of the period is after its end."))
        return data

    def filters(self) -> HistoryFilters:
        if not self.is_valid():
            return HistoryFilters()
        return HistoryFilters(
            actor_id=self.cleaned_data["who"], date_from=self.cleaned_data["date_from"],
            date_to=self.cleaned_data["date_to"],
        )


def history_context(request, actor, record, *, history_view: str, base_template: str) -> dict:
    """What the history page shows, for a portal whose screen is the URL name `history_view`
    and whose record layout is `base_template` (templates/access_history/history.html)."""
    form = HistoryFilterForm(request.GET)
    result = access_history(actor, record, filters=form.filters(), page=request.GET.get("page", 1))
    return {
        "history": result,
        "form": form,
        "history_view": history_view,
        "base_template": base_template,
        # The detail opens by itself when asked for a page of it or for a filtered view.
        "detail_open": "page" in request.GET or result.total <= 10,
    }
