"""The results page, one feature for both portals: each analyte over time, as a chart and a
table, for a period and one analyte or all, each value linked to its report's document. The
professional's page and the patient's (plain words, the reference range) differ only by their
templates; what each may see is the selectors' (dmp/selectors/results.py: a value shows only
where its report's document does).

The filters (period, analyte) are POSTed and kept in the session for this record, sealed, then
the page is shown again by GET: which tests a patient had is medical, and never reaches a URL.
The page is bounded: at most `MAX_VALUES` values, the most recent, with a word when there are
more (a shorter period or one analyte shows the rest)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from django import forms
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext_lazy

from dmp import loinc
from dmp.models import LabObservation, Record
from dmp.policy import Actor
from dmp.selectors.results import ResultFilters, results_for
from dmp.storage import sealed, unsealed
from dmp.trend import CHART, trend_svg

MAX_VALUES = 300
PERIODS = {
    "3m": (92, gettext_lazy("The last 3 months")),
    "1y": (366, gettext_lazy("The last 12 months")),
    "2y": (731, gettext_lazy("The last 2 years")),
    "5y": (1827, gettext_lazy("The last 5 years")),
    "all": (None, gettext_lazy("All dates")),
}
DEFAULT_PERIOD = "2y"


class ResultsFilterForm(forms.Form):
    period = forms.ChoiceField(label=gettext_lazy("Period"), required=False,
                               choices=[(key, label) for key, (_days, label) in PERIODS.items()])
    analyte = forms.ChoiceField(label=gettext_lazy("Test"), required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["analyte"].choices = [("", gettext_lazy("All tests"))] + [
            (key, group.name()) for key, group in loinc.groups().items()]


@dataclass
class AnalyteHistory:
    """One analyte's values in the period, newest first, and their chart (the values in the
    latest one's unit: a chart never mixes units)."""

    key: str
    name: str
    values: list[LabObservation] = field(default_factory=list)
    chart: str = ""


@dataclass(frozen=True)
class ResultsPage:
    analytes: list[AnalyteHistory]
    date_from: date | None
    more: bool  # more values than MAX_VALUES in the period: the oldest are left out


def _key_and_name(value: LabObservation) -> tuple[str, str]:
    """Values of one analyte group show together; a code we do not know alone, with its words."""
    group = loinc.groups().get(loinc.analyte_of(value.code))
    if group is not None:
        return group.group, group.name()
    return value.code or f"text:{value.text}", loinc.display(value.code, fallback=value.text)


def results_page(actor: Actor, record: Record, chosen: dict) -> ResultsPage:
    """The values of `record` the actor may read in the chosen period and analyte, by analyte
    (the analytes in the table's order, then the others). The caller has authorised the record
    read: a list is part of it, as the documents list."""
    days = PERIODS.get(chosen.get("period") or DEFAULT_PERIOD, PERIODS[DEFAULT_PERIOD])[0]
    date_from = timezone.localdate() - timedelta(days=days) if days else None
    analyte = chosen.get("analyte") or ""
    codes = frozenset(loinc.codes_of(analyte)) if analyte in loinc.groups() else None
    values = list(results_for(actor, record, ResultFilters(codes=codes, date_from=date_from))[:MAX_VALUES + 1])
    by_key: dict[str, AnalyteHistory] = {}
    for value in values[:MAX_VALUES]:
        key, name = _key_and_name(value)
        by_key.setdefault(key, AnalyteHistory(key, name)).values.append(value)
    order = list(loinc.groups())
    analytes = sorted(by_key.values(), key=lambda a: (order.index(a.key) if a.key in order else len(order), a.name))
    for history in analytes:
        unit = history.values[0].unit
        history.chart = trend_svg(history.name, [v for v in reversed(history.values) if v.unit == unit], CHART)
    return ResultsPage(analytes, date_from, more=len(values) > MAX_VALUES)


def respond(request, actor: Actor, record: Record, *, template: str, render: Callable, session_prefix: str):
    """The page: GET shows it with the filters kept for this record; POST sets (or clears) them
    and comes back by GET. `render` is the portal's record-page renderer."""
    key = f"{session_prefix}:{record.pk}"
    if request.method == "POST":
        form = ResultsFilterForm(request.POST)
        if "clear" in request.POST:
            request.session.pop(key, None)
        elif form.is_valid():
            request.session[key] = sealed(form.cleaned_data)  # which tests were done is medical
        else:
            return _page(request, actor, record, form, {}, template=template, render=render, status=400)
        return redirect(request.path)
    chosen = unsealed(request.session.get(key))
    form = ResultsFilterForm(initial={"period": DEFAULT_PERIOD, **chosen})
    return _page(request, actor, record, form, chosen, template=template, render=render)


def _page(request, actor, record, form, chosen: dict, *, template: str, render: Callable, status: int = 200):
    return render(request, template, actor, record, {
        "form": form, "results": results_page(actor, record, chosen),
        "filtered": any(chosen.values()),
    }, section="results", status=status)
