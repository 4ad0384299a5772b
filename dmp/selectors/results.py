"""Laboratory results for an actor: the values of a record (by code, by period, paged), the
latest value of each code with the ones before it (a trend), one report with its values.

One rule, one place: a report and its values are visible exactly where its document is. Every
query here starts from `_visible_reports()`, the reports whose document is among
`documents_visible_to()` (the document's `document_scope()`: the matrix cell of biology, hidden
from professionals, withheld from the patient, hidden from representatives, no standing at all),
so no rule about values is written twice. Entered-in-error documents are listed nowhere, and
neither are their values; archived ones keep theirs (archiving tidies the list, the values
stay true).

Reads are logged like document reads: a list is part of reading the record, which the caller
has authorised (one audit entry, as the documents list); one report is a read of its document
(`Action.VIEW_DOCUMENT` on it, refused and missing alike a 404)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.http import Http404
from django.utils import timezone

from ..access_log import authorise_read
from ..models import Interpretation, LabObservation, LabReport, Record, ResultStatus
from ..policy import Action, Actor
from .records import documents_visible_to

# Values of these statuses are shown nowhere: nothing to read (cancelled), or not yet a result.
NOT_SHOWN = (ResultStatus.CANCELLED, ResultStatus.REGISTERED)
TREND_LENGTH = 8  # the values a trend draws: the latest and up to seven before it


def _visible_reports(actor: Actor, record: Record) -> QuerySet[LabReport]:
    """THE rule: the record's reports whose document the actor may read."""
    documents = documents_visible_to(actor, record, include_archived=True).order_by().values("pk")
    return LabReport.objects.filter(record=record, document__in=documents).exclude(status__in=NOT_SHOWN)


def _visible_values(actor: Actor, record: Record) -> QuerySet[LabObservation]:
    reports = _visible_reports(actor, record).values("pk")
    return LabObservation.objects.filter(record=record, report__in=reports).exclude(status__in=NOT_SHOWN)


def _start_of_day(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass(frozen=True)
class ResultFilters:
    """What a list of values is asked for. `codes`: LOINC codes, any of them (None: every code;
    empty: none). `date_from`/`date_to`: days, both included, in the server's time zone.
    `abnormal_only`: the values the laboratory flagged."""

    codes: frozenset[str] | None = None
    date_from: date | None = None
    date_to: date | None = None
    abnormal_only: bool = False


def _filtered(values: QuerySet[LabObservation], filters: ResultFilters) -> QuerySet[LabObservation]:
    if filters.codes is not None:
        values = values.filter(code__in=sorted(filters.codes))
    if filters.date_from:
        values = values.filter(effective_at__gte=_start_of_day(filters.date_from))
    if filters.date_to:
        values = values.filter(effective_at__lt=_start_of_day(filters.date_to + timedelta(days=1)))
    if filters.abnormal_only:
        values = values.filter(interpretation__in=Interpretation.abnormal())
    return values


def results_for(actor: Actor, record: Record, filters: ResultFilters | None = None) -> QuerySet[LabObservation]:
    """The record's values the actor may read under `filters`, newest first, each with its
    report (for the link to it): the results page and the FHIR Observation search. An ordered
    queryset: page it with `dmp.paging.page_of` or a slice. The caller has authorised the
    record read."""
    return (_filtered(_visible_values(actor, record), filters or ResultFilters()).select_related("report")
            .order_by("-effective_at", "report_id", "position"))


def reports_for(actor: Actor, record: Record, *, codes: frozenset[str] | None = None,
                date_from: date | None = None, date_to: date | None = None) -> QuerySet[LabReport]:
    """The record's reports the actor may read, newest first (the FHIR DiagnosticReport
    search): by report code and by period. The caller has authorised the record read."""
    reports = _visible_reports(actor, record)
    if codes is not None:
        reports = reports.filter(code__in=sorted(codes))
    if date_from:
        reports = reports.filter(effective_at__gte=_start_of_day(date_from))
    if date_to:
        reports = reports.filter(effective_at__lt=_start_of_day(date_to + timedelta(days=1)))
    return reports.order_by("-effective_at", "-pk")


@dataclass
class ResultSeries:
    """One code's values for a tile or a trend: the latest first, then the ones before it."""

    code: str
    values: list[LabObservation] = field(default_factory=list)  # newest first, at least one

    @property
    def latest(self) -> LabObservation:
        return self.values[0]

    @property
    def previous(self) -> list[LabObservation]:
        return self.values[1:]

    @property
    def oldest_first(self) -> list[LabObservation]:
        """The values in the order a chart draws them."""
        return self.values[::-1]


def _series_by_code(values: QuerySet[LabObservation], length: int) -> dict[str, ResultSeries]:
    """Each coded value's series, its `length` newest values, in ONE query whatever the number
    of reports: a window numbers each code's values, newest first, and only the first `length`
    come back."""
    ranked = values.exclude(code="").annotate(rank=Window(
        RowNumber(), partition_by=[F("code")], order_by=[F("effective_at").desc(), F("pk").desc()],
    )).filter(rank__lte=length).select_related("report").order_by("code", "rank")
    series: dict[str, ResultSeries] = {}
    for value in ranked:
        series.setdefault(value.code, ResultSeries(value.code)).values.append(value)
    return series


def latest_results_for(actor: Actor, record: Record, *, codes: Iterable[str] | None = None,
                       length: int = TREND_LENGTH, since: date | None = None) -> list[ResultSeries]:
    """For each code (of `codes`, in their order; else every code, the most recent first), its
    latest value and up to `length - 1` before it: the patient screen's tile and the IPS.
    ONE query whatever the number of reports (a window numbers each code's values, newest
    first, and only the first `length` come back). Codes with no visible value are left out.
    `since`: only values from that day on. The caller has authorised the record read."""
    wanted = list(dict.fromkeys(codes)) if codes is not None else None
    values = _filtered(_visible_values(actor, record),
                       ResultFilters(codes=frozenset(wanted) if wanted is not None else None, date_from=since))
    series = _series_by_code(values, length)
    if wanted is not None:
        return [series[code] for code in wanted if code in series]
    return sorted(series.values(), key=lambda s: (s.latest.effective_at, s.code), reverse=True)


def get_lab_report_for(actor: Actor, pk: int, *, record: Record | None = None) -> LabReport:
    """Report `pk` (of `record`, when given: a report of another record is missing), if the
    actor may read its document: one audit entry, the document's read. Refused and missing
    alike: Http404. Its values: `report_values()`."""
    reports = LabReport.objects.filter(pk=pk).exclude(status__in=NOT_SHOWN)
    if record is not None:
        reports = reports.filter(record=record)
    report = reports.select_related("document__record", "record").first()
    return _authorised(actor, report, f"labreport:{pk}")


def get_lab_observation_for(actor: Actor, pk: int) -> LabObservation:
    """Value `pk` with its report, if the actor may read the report's document (the FHIR
    Observation read): one audit entry, the document's read; Http404 otherwise."""
    value = (LabObservation.objects.filter(pk=pk).exclude(status__in=NOT_SHOWN)
             .select_related("report__document__record").first())
    if value is not None and value.report.status in NOT_SHOWN:
        value = None
    _authorised(actor, value.report if value else None, f"labobservation:{pk}")
    return value


def _authorised(actor: Actor, report: LabReport | None, object_id: str) -> LabReport:
    """The report if its document may be read: asked and logged as the document's read (a
    report's document withdrawn as entered in error is read by id like the document itself)."""
    if report is None:
        authorise_read(actor, Action.VIEW_DOCUMENT, None, object_id=object_id)
        raise Http404
    if not authorise_read(actor, Action.VIEW_DOCUMENT, report.document):
        raise Http404
    return report


def report_values(report: LabReport) -> list[LabObservation]:
    """A report's values in their order, each knowing its report (the caller has authorised
    the report). Sorted here, so a list of reports loaded with `prefetch_related("observations")`
    asks nothing more."""
    values = sorted(report.observations.all(), key=lambda value: (value.position, value.pk))
    for value in values:
        value.report = report
    return [value for value in values if value.status not in NOT_SHOWN]


def results_that_matter_for(actor: Actor, record: Record, *, codes: Iterable[str], abnormal_since: date,
                            length: int = TREND_LENGTH) -> dict[str, ResultSeries]:
    """The clinician patient screen's results, by code: as `latest_results_for`, for `codes`
    AND every code with a value the laboratory flagged since `abnormal_since`, in ONE query
    whatever the number of reports (the flagged codes are a subquery of the same statement).
    The caller has authorised the record read."""
    visible = _visible_values(actor, record)
    flagged = _filtered(visible, ResultFilters(date_from=abnormal_since, abnormal_only=True)).values("code")
    return _series_by_code(visible.filter(Q(code__in=sorted(set(codes))) | Q(code__in=flagged)), length)
