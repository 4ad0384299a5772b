"""FHIR laboratory results (see dmp/api/fhir/__init__.py for the conventions): a laboratory's
transaction Bundle at `POST /fhir/` (DiagnosticReport + Observations + the PDF), and
`Observation` and `DiagnosticReport` read and search.

The policy is the document's: a laboratory adds a report as it adds a document
(`Action.ADD_DOCUMENT` of the lab report type on the record, through `lab_report_add`), and a
report and its values are read exactly where its document may be (dmp/selectors/results.py).
A search is a read of the record (`get_record_for`: one audit entry, 404 when refused), a read
by id is a read of the report's document.

The Bundle (all or nothing, in one database transaction):
- `POST DiagnosticReport`: `subject` the patient, `result` the Observations of the Bundle
  (by fullUrl), `identifier` the laboratory's own id (the same one twice is one report),
  `presentedForm` the PDF (base64) if the laboratory sends it so;
- `POST Observation` (each named by one report): `code` (LOINC, or words only), a value
  (`valueQuantity` with its UCUM unit, `valueCodeableConcept`, `valueString`), `referenceRange`,
  `interpretation`, `effectiveDateTime`, `status`;
- optionally the PDF as `POST DocumentReference` (`context.related` naming the report, or the
  Bundle's only report) with its file inline or in a `POST Binary` of the Bundle.
Without a PDF, one is rendered from the values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

from django.http import Http404
from django.urls import re_path
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntryResponse
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from ... import fhir
from ...models import DocumentType, Interpretation, LabReport, Record
from ...policy import Actor
from ...selectors import get_record_for
from ...selectors.results import (
    ResultFilters,
    get_lab_observation_for,
    get_lab_report_for,
    report_values,
    reports_for,
    results_for,
)
from ...services import AccessRefused, InvalidInput, InvalidInputCode
from ...services.results import (
    InvalidResult,
    LabReportAdded,
    LabReportInput,
    ResultValue,
    lab_report_check,
    lab_reports_add,
)
from .base import FhirView, SearchError, SearchSpec, fhir_response, operation_outcome, search_request
from .clinical import COMMON_ERRORS, rest_references
from .documents import (
    FhirError,
    _date_bounds,
    _decode,
    _id_of,
    _int_id,
    _record_to_add_to,
    _subject_record_id,
    _tokens,
    _validation_message,
    service_refusal,
)

DEFAULT_COUNT = 50
MAX_COUNT = 200


# --- the laboratory's transaction ---------------------------------------------------------------

def is_lab_transaction(entries: Sequence) -> bool:
    """Whether a transaction Bundle is a laboratory's (it posts a DiagnosticReport)."""
    return any(entry.method == "POST" and entry.url == "DiagnosticReport" for entry in entries)


def _error(index: int, status: int, message: str) -> FhirError:
    return FhirError(status, f"entry[{index}]: {message}")


@dataclass
class _Report:
    """One DiagnosticReport of the Bundle and what it came to."""

    entry: object
    resource: DiagnosticReport
    record: Record | None = None
    observations: list[tuple[object, Observation]] = field(default_factory=list)
    pdf: bytes | None = None
    pdf_entries: list = field(default_factory=list)  # the DocumentReference and Binary that carried it
    input: LabReportInput | None = None
    added: LabReportAdded | None = None


def _parsed(entry, model):
    if (entry.resource or {}).get("resourceType") != model.get_resource_type():
        raise _error(entry.index, 400, _("The resource must be a %(type)s.") % {"type": model.get_resource_type()})
    try:
        return model.model_validate(entry.resource)
    except ValidationError as exc:
        raise _error(entry.index, 400, _validation_message(exc)) from None


def _moment(value, index: int, name: str) -> datetime:
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    if isinstance(value, date):
        return timezone.make_aware(datetime.combine(value, time.min))
    raise _error(index, 422, _("%(name)s is required (effectiveDateTime).") % {"name": name})


def _loinc(concept) -> tuple[str, str]:
    """The LOINC code of a CodeableConcept ("" if none) and its words."""
    codings = (concept.coding or []) if concept else []
    loinc = next((c for c in codings if c.system == fhir.LOINC_SYSTEM and c.code), None)
    words = (concept.text if concept else "") or next((c.display for c in codings if c.display), "") or ""
    return (loinc.code if loinc else ""), words


def _number(value) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except InvalidOperation:
        return None


def _ucum(quantity) -> str:
    return quantity.code if quantity.system == fhir.UCUM_SYSTEM and quantity.code else ""


def _translation(quantity) -> dict:
    """The same quantity in a second UCUM unit (the PQ-translation extension), if sent: kept
    beside the value, never instead of it."""
    for extension in quantity.extension or []:
        second = extension.valueQuantity if extension.url == fhir.PQ_TRANSLATION else None
        if second is not None and _ucum(second) and _number(second.value) is not None:
            return {"alternative_quantity": _number(second.value), "alternative_unit": _ucum(second)}
    return {}


def _observed_value(observation: Observation, index: int) -> dict:
    """value[x] as `ResultValue`'s fields; a quantity's unit only when it is UCUM."""
    if (quantity := observation.valueQuantity) is not None:
        return {"quantity": _number(quantity.value), "unit": _ucum(quantity), "comparator": quantity.comparator or "",
                **_translation(quantity)}
    if observation.valueInteger is not None:
        return {"quantity": Decimal(observation.valueInteger)}
    if (concept := observation.valueCodeableConcept) is not None:
        coding = (concept.coding or [None])[0]
        return {"value_code": coding.code if coding else "", "value_code_system": coding.system if coding else "",
                "value_text": concept.text or (coding.display if coding else "") or ""}
    if observation.valueString is not None:
        return {"value_text": observation.valueString}
    for name in ("valueBoolean", "valueRange", "valueRatio", "valueSampledData", "valueTime", "valueDateTime",
                 "valuePeriod"):
        if getattr(observation, name, None) is not None:
            raise _error(index, 422, _("%(name)s is not supported: send a quantity, a code or text.")
                         % {"name": name})
    return {}


def _result_value(entry, observation: Observation) -> ResultValue:
    code, words = _loinc(observation.code)
    ranges = observation.referenceRange or []
    first = ranges[0] if ranges else None
    flags = [c.code for i in observation.interpretation or [] for c in i.coding or []]
    effective = observation.effectiveDateTime or observation.effectiveInstant
    return ResultValue(
        code=code, text=words, **_observed_value(observation, entry.index),
        reference_low=_number(first.low.value) if first and first.low else None,
        reference_high=_number(first.high.value) if first and first.high else None,
        reference_text=(first.text or "") if first else "",
        interpretation=next((f for f in flags if f in Interpretation.values), ""),
        effective_at=_moment(effective, entry.index, "Observation.effective[x]") if effective else None,
        status=observation.status,
    )


def _report_input(report: _Report) -> LabReportInput:
    resource = report.resource
    code, words = _loinc(resource.code)
    identifier = (resource.identifier or [None])[0]
    performer = next((p.display for p in resource.performer or [] if p.display), "")
    return LabReportInput(
        effective_at=_moment(resource.effectiveDateTime, report.entry.index, "DiagnosticReport.effective[x]"),
        values=tuple(_result_value(entry, observation) for entry, observation in report.observations),
        code=code, text=words, issued_at=resource.issued, status=resource.status, laboratory=performer,
        identifier_system=(identifier.system or "") if identifier else "",
        identifier=(identifier.value or "") if identifier else "", pdf=report.pdf,
        codings={"type": [{"system": fhir.LOINC_SYSTEM, "code": code}]} if code else {},
    )


def _presented_pdf(report: _Report) -> None:
    for form in report.resource.presentedForm or []:
        if form.data is not None and (form.contentType or "").startswith("application/pdf"):
            report.pdf = form.data if isinstance(form.data, bytes) else _decode(form.data)
            return


def _document_pdf(entry, reports: list[_Report], binaries: dict) -> None:
    """A DocumentReference carrying a report's PDF: inline, or in a Binary of the Bundle."""
    resource = entry.resource or {}
    related = {r.get("reference") for r in (resource.get("context") or {}).get("related") or []}
    named = [r for r in reports if r.entry.full_url in related] or (reports if len(reports) == 1 else [])
    if len(named) != 1:
        raise _error(entry.index, 422, _("A DocumentReference must name its DiagnosticReport (context.related)."))
    attachment = ((resource.get("content") or [{}])[0] or {}).get("attachment") or {}
    if attachment.get("data"):
        content = _decode(attachment["data"])
    elif (binary := binaries.get(attachment.get("url"))) is not None:
        content = _decode((binary.resource or {}).get("data") or "")
        named[0].pdf_entries.append(binary)
    else:
        raise _error(entry.index, 422, _("The DocumentReference's file must be inline or a Binary of the Bundle."))
    named[0].pdf = content
    named[0].pdf_entries.append(entry)


def _plan(actor: Actor, entries: Sequence) -> list[_Report]:
    """Every entry read and checked, nothing written; each report's record asked for
    `add_document` (refused: 404, or 403 with the reason when the record may be read)."""
    reports, observations, documents, binaries = [], {}, [], {}
    for entry in entries:
        if entry.method == "POST" and entry.url == "DiagnosticReport":
            reports.append(_Report(entry, _parsed(entry, DiagnosticReport)))
        elif entry.method == "POST" and entry.url == "Observation":
            observations[entry.full_url] = (entry, _parsed(entry, Observation))
        elif entry.method == "POST" and entry.url == "DocumentReference":
            documents.append(entry)
        elif entry.method == "POST" and entry.url == "Binary":
            binaries[entry.full_url] = entry
        else:
            raise _error(entry.index, 422, _("Unsupported entry in a laboratory report Bundle: %(method)s %(url)s.")
                         % {"method": entry.method, "url": entry.url})
    for report in reports:
        for reference in report.resource.result or []:
            if reference.reference not in observations:
                raise _error(report.entry.index, 422, _("DiagnosticReport.result must name Observations of the "
                                                        "Bundle by their fullUrl."))
            report.observations.append(observations.pop(reference.reference))
        _presented_pdf(report)
    if observations:
        entry = next(iter(observations.values()))[0]
        raise _error(entry.index, 422, _("This Observation is the result of no DiagnosticReport of the Bundle."))
    for entry in documents:
        _document_pdf(entry, reports, binaries)
    for report in reports:
        try:
            record_id = _subject_record_id(report.resource.subject)
            report.record = _record_to_add_to(actor, record_id, DocumentType.LAB_REPORT)
        except FhirError as error:
            raise _error(report.entry.index, error.status_code, error.message) from None
        except Http404:
            raise _error(report.entry.index, 404, _("Resource not found.")) from None
        report.input = _report_input(report)
        try:
            lab_report_check(report.input)
        except InvalidResult as exc:
            raise _error(report.observations[exc.position][0].index, 422, str(exc)) from None
        except InvalidInput as exc:
            raise _error(report.entry.index, 422, str(exc)) from None
    return reports


def _store(actor: Actor, reports: list[_Report]) -> None:
    """The reports written, all or nothing."""
    try:
        added = lab_reports_add(actor=actor, reports=[(r.record, r.input) for r in reports])
    except AccessRefused as exc:
        raise service_refusal(exc) from None
    except InvalidInput as exc:
        raise FhirError(409 if exc.code == InvalidInputCode.DUPLICATE else 422, str(exc)) from None
    for report, result in zip(reports, added, strict=True):
        report.added = result


def _answers(entries: Sequence, reports: list[_Report]) -> Bundle:
    """The transaction-response: one answer per entry, in order."""
    answers: dict[int, BundleEntryResponse] = {}
    for report in reports:
        stored, status = report.added.report, "201 Created" if report.added.created else "200 OK"
        answers[report.entry.index] = BundleEntryResponse(status=status, location=f"DiagnosticReport/{stored.pk}")
        values = list(stored.observations.order_by("position", "pk").values_list("pk", flat=True))
        for (entry, _observation), pk in zip(report.observations, values, strict=False):
            answers[entry.index] = BundleEntryResponse(status=status, location=f"Observation/{pk}")
        for entry in report.pdf_entries:
            kind = "Binary" if entry.url == "Binary" else "DocumentReference"
            answers[entry.index] = BundleEntryResponse(status=status, location=f"{kind}/{stored.document_id}")
    return Bundle(type="transaction-response", entry=[BundleEntry(response=answers[e.index]) for e in entries])


def lab_transaction(actor: Actor, entries: Sequence):
    """POST /fhir/ with a laboratory's transaction Bundle (mhd.py hands it here)."""
    reports = _plan(actor, entries)
    _store(actor, reports)
    return fhir_response(_answers(entries, reports))


def lab_bundle_post(actor: Actor, data: dict):
    """A laboratory's transaction Bundle as `POST /fhir/` takes it, for a caller without a
    request (the demo's laboratory): the view's own path, the same checks and answer."""
    from .mhd import _entries  # mhd hands laboratory Bundles to this module: imported when used

    return lab_transaction(actor, _entries(data))


# --- read and search ----------------------------------------------------------------------------

_SPEC = dict(default_count=DEFAULT_COUNT, max_count=MAX_COUNT)
OBSERVATION_SEARCH = SearchSpec(parameters=(
    ("patient", "reference", "clinical-patient"), ("subject", "reference", "Observation-subject"),
    ("code", "token", "clinical-code"), ("date", "date", "clinical-date"),
    ("category", "token", "Observation-category"),
), **_SPEC)
REPORT_SEARCH = SearchSpec(parameters=(
    ("patient", "reference", "clinical-patient"), ("subject", "reference", "DiagnosticReport-subject"),
    ("code", "token", "clinical-code"), ("date", "date", "clinical-date"),
    ("category", "token", "DiagnosticReport-category"),
), **_SPEC)
_KEPT = ("code", "date", "category")


def _searched(request, actor: Actor, spec: SearchSpec, category: tuple[str, str]):
    """The search's parameters checked, the record read (one audit entry; 404 when refused or
    missing) and its filters: codes (None: any), the period, and whether the category matches."""
    params = request.query_params
    try:
        search = search_request(request, params, spec)
    except SearchError as error:
        raise FhirError(400, str(error)) from None
    patient = params.get("patient") or params.get("subject")
    if not patient:
        raise FhirError(400, _("A search needs the patient: ?patient=<Patient id>."))
    record_id = _id_of(patient, "Patient")
    if record_id is None:
        raise Http404
    record = get_record_for(actor, record_id)
    codes = frozenset(_codes(params.getlist("code"), "code", fhir.LOINC_SYSTEM)) if params.getlist("code") else None
    date_from, date_to, excluded = _date_bounds(params.getlist("date"))
    if excluded:
        raise FhirError(400, "date: the ne prefix is not supported here; use ge, gt, le, lt or eq.")
    if params.getlist("category") and category[1] not in _codes(params.getlist("category"), "category", category[0]):
        codes = frozenset()  # another category than the laboratory's: nothing
    kept = [("patient", str(record.pk))] + [(n, v) for n in _KEPT for v in params.getlist(n)]
    return search, record, ResultFilters(codes=codes, date_from=date_from, date_to=date_to), kept


def _codes(values: list[str], name: str, system: str) -> set[str]:
    """The codes a token parameter asks for in `system` (`code`, `system|code`; `|code` and a
    code of another system ask for nothing of ours)."""
    return {token.code for value in values for token in _tokens(value, name)
            if token.code and token.system in (None, system)}


def _searchset(request, name: str, search, kept, total: int, resources: list) -> Bundle:
    base = request.build_absolute_uri("/fhir/")
    return Bundle(type="searchset", total=total, link=search.links(f"{base}{name}", kept, total), entry=[
        BundleEntry(fullUrl=f"{base}{name}/{r.id}", resource=r, search={"mode": "match"}) for r in resources
    ] or None)


def _observation(value, subject):
    return rest_references(fhir.lab_observation(value, subject=subject), subject)


def _diagnostic_report(report: LabReport, subject):
    values = [fhir.lab_observation(value, subject=subject) for value in report_values(report)]
    return rest_references(fhir.diagnostic_report(report, values, subject=subject), subject, *values)


_NOT_FOUND_OR_REFUSED = {200: OpenApiResponse(OpenApiTypes.OBJECT, description="Bundle of type searchset."),
                         400: OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome."),
                         **COMMON_ERRORS}
_SEARCH_PARAMETERS = [
    OpenApiParameter("patient", str, OpenApiParameter.QUERY, description="The Patient id. Required."),
    OpenApiParameter("code", str, OpenApiParameter.QUERY, description="LOINC codes (`4548-4`, "
                     "`http://loinc.org|4548-4`; comma: any of them)."),
    OpenApiParameter("date", str, OpenApiParameter.QUERY, description="[ge|le|gt|lt|eq]YYYY[-MM[-DD]]."),
    OpenApiParameter("category", str, OpenApiParameter.QUERY, description="laboratory (Observation), LAB "
                     "(DiagnosticReport)."),
]


class _ResultsView(FhirView):
    def handle_exception(self, exc):
        if isinstance(exc, FhirError):
            return operation_outcome(exc.status_code, exc.message)
        return super().handle_exception(exc)


class ObservationSearchView(_ResultsView):
    @extend_schema(operation_id="fhir_observation_search", summary="Search laboratory values",
                   description="The patient's laboratory values whose report you may read, newest first.",
                   parameters=_SEARCH_PARAMETERS, responses=_NOT_FOUND_OR_REFUSED, tags=["FHIR results"])
    def get(self, request):
        actor = Actor.from_request(request)
        search, record, filters, kept = _searched(request, actor, OBSERVATION_SEARCH,
                                                  (fhir.OBSERVATION_CATEGORY, "laboratory"))
        values = results_for(actor, record, filters)
        total = values.count()
        subject = fhir.patient(record)
        page = [] if search.count_only else [_observation(v, subject) for v in search.page.of(values)]
        return fhir_response(_searchset(request, "Observation", search, kept, total, page))


class DiagnosticReportSearchView(_ResultsView):
    @extend_schema(operation_id="fhir_diagnosticreport_search", summary="Search laboratory reports",
                   description="The patient's laboratory reports you may read (their document's rule), newest "
                               "first, each with its values.",
                   parameters=_SEARCH_PARAMETERS, responses=_NOT_FOUND_OR_REFUSED, tags=["FHIR results"])
    def get(self, request):
        actor = Actor.from_request(request)
        search, record, filters, kept = _searched(request, actor, REPORT_SEARCH, (fhir.DIAGNOSTIC_SERVICE, "LAB"))
        reports = reports_for(actor, record, codes=filters.codes, date_from=filters.date_from,
                              date_to=filters.date_to)
        total = reports.count()
        subject = fhir.patient(record)
        page = [] if search.count_only else [
            _diagnostic_report(r, subject)
            for r in search.page.of(reports.select_related("document").prefetch_related("observations"))]
        return fhir_response(_searchset(request, "DiagnosticReport", search, kept, total, page))


_READ = dict(parameters=[OpenApiParameter("rid", str, OpenApiParameter.PATH, description="The resource id.")],
             responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The resource."), **COMMON_ERRORS},
             tags=["FHIR results"])


class ObservationReadView(_ResultsView):
    @extend_schema(operation_id="fhir_observation_read", summary="Read a laboratory value", **_READ)
    def get(self, request, rid: str):
        value = get_lab_observation_for(Actor.from_request(request), _int_id(rid))
        return fhir_response(_observation(value, fhir.patient(value.report.record)))


class DiagnosticReportReadView(_ResultsView):
    @extend_schema(operation_id="fhir_diagnosticreport_read", summary="Read a laboratory report", **_READ)
    def get(self, request, rid: str):
        report = get_lab_report_for(Actor.from_request(request), _int_id(rid))
        return fhir_response(_diagnostic_report(report, fhir.patient(report.record)))


urlpatterns = [
    re_path(r"^Observation$", ObservationSearchView.as_view(), name="observation-search"),
    re_path(r"^Observation/(?P<rid>[0-9]{1,10})$", ObservationReadView.as_view(), name="observation-read"),
    re_path(r"^DiagnosticReport$", DiagnosticReportSearchView.as_view(), name="diagnosticreport-search"),
    re_path(r"^DiagnosticReport/(?P<rid>[0-9]{1,10})$", DiagnosticReportReadView.as_view(),
            name="diagnosticreport-read"),
]
