"""Adding laboratory results: a report with its values and its document, as one act.

Plain Python values in (`LabReportInput`, `ResultValue`), whatever the way the laboratory sent
them: a FHIR transaction (dmp/api/fhir/results.py), or a CDA CR-BIO whose values are bound to
the CDA document itself as it is stored (`cda_lab_report`, `lab_report_attach`). The document goes
through `document_add` (the policy's `add_document`, the file checks, the access log, the
patient's notice), so a report is never stored without the document that carries its policy;
when the laboratory sends no PDF, one is rendered from the values (`render_lab_report_pdf`)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from lxml import etree

from .. import pdf
from ..cda.crbio import LabReportFacts, LabValue, lab_values, report_facts
from ..cda.header import LOINC_ROOT, CdaHeader
from ..models import DocumentType, Interpretation, LabObservation, LabReport, Record, ResultStatus
from ..policy import Action, Actor
from . import InvalidInput, InvalidInputCode, permit
from .documents import ClientMetadata, _delete_files, document_add

logger = logging.getLogger(__name__)

LOINC_CODE = re.compile(r"\d{1,7}-\d")
COMPARATORS = ("", "<", "<=", ">=", ">")
# Analytes whose quantity has no unit (a ratio, a pH, a density): a value of any other code
# needs its UCUM unit. UCUM's own "1" is always accepted for a unitless value.
UNITLESS_CODES = frozenset({
    "6301-6", "34714-6", "46418-0",  # INR
    "2744-1", "11558-4", "2753-2",  # pH (arterial, blood, urine)
    "2965-2", "5811-5", "53326-5",  # specific gravity of urine
})
MAX_VALUES = 200  # values of one report: a full panel is a few dozen


class InvalidResult(InvalidInput):
    """A value turned down: `position` is its index in the report's values (the FHIR layer
    names the Bundle entry it came from)."""

    def __init__(self, message, *, code: InvalidInputCode, position: int) -> None:
        super().__init__(message, code=code)
        self.position = position


@dataclass(frozen=True)
class ResultValue:
    """One value as a laboratory sends it. Exactly one of: `quantity` (with its UCUM `unit`),
    `value_code` (a coded value, `value_text` its words), or `value_text` alone. `code` is the
    LOINC code ("" when the laboratory sent only its own code); `text`, its name of the test."""

    code: str
    text: str
    quantity: Decimal | None = None
    comparator: str = ""
    unit: str = ""
    value_code_system: str = ""
    value_code: str = ""
    value_text: str = ""
    reference_low: Decimal | None = None
    reference_high: Decimal | None = None
    reference_text: str = ""
    interpretation: str = ""
    effective_at: datetime | None = None  # None: the report's
    status: str = ResultStatus.FINAL
    alternative_quantity: Decimal | None = None  # the same quantity in a second unit (a CDA translation)
    alternative_unit: str = ""


@dataclass(frozen=True)
class LabReportInput:
    """One report: its LOINC code and words, when it was sampled (`effective_at`) and issued,
    the laboratory, its own identifier, its values, and its PDF if the laboratory sent one."""

    effective_at: datetime
    values: tuple[ResultValue, ...]
    code: str = ""
    text: str = ""
    issued_at: datetime | None = None
    status: str = ResultStatus.FINAL
    laboratory: str = ""
    identifier_system: str = ""
    identifier: str = ""
    pdf: bytes | None = None
    withheld_until: datetime | None = None
    codings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LabReportAdded:
    report: LabReport
    created: bool  # False: the same report was already in the record, nothing written


def _kind(value: ResultValue) -> str:
    if value.quantity is not None:
        return LabObservation.Kind.QUANTITY
    return LabObservation.Kind.CODED if value.value_code else LabObservation.Kind.TEXT


def _value_error(value: ResultValue) -> tuple[str, InvalidInputCode] | None:
    """What is wrong with one value, if anything (the message names its code)."""
    name = value.code or value.text[:60]
    if not value.code and not value.text.strip():
        return _("A value needs its LOINC code or the name of the test."), InvalidInputCode.MISSING
    if value.code and not LOINC_CODE.fullmatch(value.code):
        return _("%(code)s is not a LOINC code.") % {"code": value.code[:32]}, InvalidInputCode.INVALID
    if value.quantity is None and not value.value_code and not value.value_text.strip():
        return _("The value of %(name)s is missing.") % {"name": name}, InvalidInputCode.MISSING
    if value.quantity is not None and not value.unit and value.code not in UNITLESS_CODES:
        return (_("The value of %(name)s has no UCUM unit: give the unit's UCUM code.")
                % {"name": name}, InvalidInputCode.MISSING)
    if value.comparator not in COMPARATORS or value.interpretation not in ("", *Interpretation.values):
        return _("The comparator or the flag of %(name)s is not valid.") % {"name": name}, \
            InvalidInputCode.INVALID
    if value.status not in ResultStatus.values:
        return _("Unknown status of %(name)s.") % {"name": name}, InvalidInputCode.INVALID
    return None


def lab_report_check(report: LabReportInput) -> None:
    """The input checked in full before anything is written (InvalidInput, or InvalidResult
    naming the value): the way in may ask first, to say which of its parts is wrong."""
    if not report.values:
        raise InvalidInput(_("A laboratory report needs at least one value."), code=InvalidInputCode.MISSING)
    if len(report.values) > MAX_VALUES:
        raise InvalidInput(_("A laboratory report holds at most %(n)d values.") % {"n": MAX_VALUES},
                           code=InvalidInputCode.LIMIT)
    if report.status not in ResultStatus.values or (report.code and not LOINC_CODE.fullmatch(report.code)):
        raise InvalidInput(_("The report's status or code is not valid."), code=InvalidInputCode.INVALID)
    for position, value in enumerate(report.values):
        if (error := _value_error(value)) is not None:
            raise InvalidResult(error[0], code=error[1], position=position)


def results_fingerprint(record: Record, report: LabReportInput) -> str:
    """A keyed hash of what the report says (its code, time and values): the same report sent
    twice, even without its identifier, has the same one."""
    values = [[v.code, v.text, str(v.quantity) if v.quantity is not None else "", v.unit, v.value_code,
               v.value_text, (v.effective_at or report.effective_at).isoformat()] for v in report.values]
    canonical = json.dumps([record.pk, report.code, report.effective_at.isoformat(), sorted(values)])
    return salted_hmac("dmp.results.fingerprint", canonical, algorithm="sha256").hexdigest()


def _existing(record: Record, report: LabReportInput, fingerprint: str) -> LabReport | None:
    """The report already in the record (its latest version): by the laboratory's identifier,
    else by what it says."""
    if report.identifier:
        same = (LabReport.objects.filter(record=record, identifier_system=report.identifier_system,
                                         identifier=report.identifier)
                .select_related("document").order_by("-version").first())
        if same is not None:
            return same
    return LabReport.objects.filter(record=record, fingerprint=fingerprint).order_by("-version").first()


CORRECTIONS = (ResultStatus.CORRECTED, ResultStatus.AMENDED)


def _corrects(existing: LabReport, report: LabReportInput, fingerprint: str) -> bool:
    """Whether `report` is the laboratory's correction of `existing`: the same identifier, a
    correction's status and other values. A `final` report sent again is a duplicate whatever
    it says, and the same correction twice says nothing new."""
    return (report.status in CORRECTIONS and bool(report.identifier)
            and (existing.identifier_system, existing.identifier) == (report.identifier_system, report.identifier)
            and existing.fingerprint != fingerprint)


def _local(moment: datetime) -> datetime:
    return timezone.localtime(moment) if timezone.is_aware(moment) else moment


def render_lab_report_pdf(record: Record, report: LabReportInput) -> bytes:
    """The legal copy of a report the laboratory sent without one: its values as a table, in the
    record's default language (French), saying it was made from the values."""
    rows = [{"value": v, "kind": _kind(v), "effective_at": _local(v.effective_at or report.effective_at),
             "flag": str(Interpretation(v.interpretation).label) if v.interpretation else ""}
            for v in report.values]
    with translation.override(settings.LANGUAGE_CODE):
        html = render_to_string("documents/lab_report.html", {
            "record": record, "report": report, "rows": rows,
            "effective_at": _local(report.effective_at),
            "issued_at": _local(report.issued_at) if report.issued_at else None,
        })
    return pdf.write_pdf(html)


def _title(report: LabReportInput) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return (report.text.strip() or _("Laboratory results"))[:200]


def _observations(lab_report: LabReport, report: LabReportInput) -> list[LabObservation]:
    def number(value: Decimal | None) -> str:
        return "" if value is None else str(value)

    return [LabObservation(
        report=lab_report, record=lab_report.record, position=position, code=v.code, text=v.text.strip(),
        kind=_kind(v), value=number(v.quantity) if v.quantity is not None else v.value_text.strip(),
        comparator=v.comparator, unit=v.unit, alternative_value=number(v.alternative_quantity),
        alternative_unit=v.alternative_unit if v.alternative_quantity is not None else "",
        value_code_system=v.value_code_system, value_code=v.value_code,
        reference_low=number(v.reference_low), reference_high=number(v.reference_high),
        reference_text=v.reference_text.strip(), interpretation=v.interpretation,
        effective_at=v.effective_at or report.effective_at, status=v.status,
    ) for position, v in enumerate(report.values)]


def _previous(actor: Actor, record: Record, report: LabReportInput, fingerprint: str) -> LabReport | None:
    """The report already in the record that `report` repeats or corrects (None: it is new).
    Correcting it is replacing its document: `replace_document` is asked here (its author
    only, a current version), a refusal logged at once and raised."""
    existing = _existing(record, report, fingerprint)
    if existing is not None and _corrects(existing, report, fingerprint):
        permit(actor, Action.REPLACE_DOCUMENT, existing.document)
    return existing


def _report_create(record: Record, document, report: LabReportInput, fingerprint: str, version: int = 1) -> LabReport:
    """The report and its values, bound to `document` (inside the caller's transaction)."""
    lab_report = LabReport.objects.create(
        record=record, document=document, code=report.code, text=report.text.strip(),
        effective_at=report.effective_at, issued_at=report.issued_at, status=report.status,
        laboratory=report.laboratory.strip(), identifier_system=report.identifier_system,
        identifier=report.identifier, fingerprint=fingerprint, version=version,
    )
    LabObservation.objects.bulk_create(_observations(lab_report, report))
    return lab_report


def lab_report_add(*, actor: Actor, record: Record, report: LabReportInput) -> LabReportAdded:
    """Add a laboratory report to the record: its document (the laboratory's PDF, or one
    rendered from the values), the report and its values, in one transaction, with the
    document's entry in the access log. The same report again (its identifier, else the same
    content) writes nothing and answers the one already there. A correction (the same
    identifier, status `corrected` or `amended`, other values) is a new version of the
    report's document (`replace_document`: its author only), bound to a new version of the
    report; the values it corrects are then listed nowhere. `add_document` on the record is
    asked first; the values are checked in full before anything is written."""
    permit(actor, Action.ADD_DOCUMENT, record, doc_type=DocumentType.LAB_REPORT)
    lab_report_check(report)
    fingerprint = results_fingerprint(record, report)
    replaced = None
    if (existing := _previous(actor, record, report, fingerprint)) is not None:
        if not _corrects(existing, report, fingerprint):
            return LabReportAdded(existing, created=False)
        replaced = existing
    content = report.pdf if report.pdf is not None else render_lab_report_pdf(record, report)
    identifiers = ({"system": report.identifier_system, "value": report.identifier},) if report.identifier else ()
    document = None
    try:
        with transaction.atomic():
            document = document_add(
                actor=actor, record=record, content=content, doc_type=DocumentType.LAB_REPORT,
                title=_title(report), act_date=_local(report.effective_at).date(),
                withheld_until=report.withheld_until,
                replaces=replaced.document if replaced else None,  # keeps what the patient chose for it
                client=ClientMetadata(identifiers=identifiers, codings=dict(report.codings)),
            )
            lab_report = _report_create(record, document, report, fingerprint,
                                        version=replaced.version + 1 if replaced else 1)
    except IntegrityError as exc:  # the same report, sent twice at the same moment
        if document is not None:
            _delete_files(document)
        raise InvalidInput(_("This laboratory report is already in the record."),
                           code=InvalidInputCode.DUPLICATE) from exc
    return LabReportAdded(lab_report, created=True)


def lab_reports_add(*, actor: Actor, reports: Sequence[tuple[Record, LabReportInput]]) -> list[LabReportAdded]:
    """Several reports as one act, all or nothing (a FHIR transaction): if one is refused, none
    is kept, and the files already written are removed."""
    added: list[LabReportAdded] = []
    for record, report in reports:
        # Corrections asked first, outside the transaction: a refusal stays in the log when
        # the transaction rolls back.
        _previous(actor, record, report, results_fingerprint(record, report))
    try:
        with transaction.atomic():
            for record, report in reports:
                added.append(lab_report_add(actor=actor, record=record, report=report))
    except Exception:
        for result in added:
            if result.created:
                _delete_files(result.report.document)
        raise
    return added


# --- A laboratory's CDA CR-BIO (docs/cda.md) ------------------------------------------------------


def _cda_value(value: LabValue) -> ResultValue:
    """One CDA observation as a value: the quantity as sent, its first translation as the
    alternative unit; a flag outside ours is left out, as the FHIR way in does."""
    alternative = value.quantities[1] if len(value.quantities) > 1 else None
    return ResultValue(
        code=value.loinc, text=value.display[:200], quantity=value.value, unit=value.unit,
        alternative_quantity=alternative.value if alternative else None,
        alternative_unit=alternative.unit if alternative else "",
        reference_low=value.low.value if value.low else None,
        reference_high=value.high.value if value.high else None,
        interpretation=value.interpretation if value.interpretation in Interpretation.values else "",
        effective_at=value.effective,
    )


def _cda_identifier(facts: LabReportFacts) -> tuple[str, str]:
    """The CDA's own id as (system, value): an OID root with its extension, else the root alone."""
    if facts.id_extension:
        return f"urn:oid:{facts.id_root}", facts.id_extension[:255]
    return ("urn:ietf:rfc:3986", f"urn:oid:{facts.id_root}") if facts.id_root else ("", "")


def cda_lab_report(root: etree._Element, header: CdaHeader) -> LabReportInput | None:
    """A level-3 laboratory report's LOINC-coded quantities as a report, checked in full
    (`lab_report_check`); None when it carries none, or when the checks refuse them: the
    document is stored all the same and its rendering shows the values, but no value of it
    feeds the results (a report is all or nothing, as through FHIR)."""
    values = lab_values(root)
    facts = report_facts(root)
    effective = facts.sampled or next((v.effective for v in values if v.effective), None) or facts.issued
    if not values or effective is None:
        return None
    system, identifier = _cda_identifier(facts)
    report = LabReportInput(
        effective_at=effective, values=tuple(_cda_value(v) for v in values),
        code=header.code if header.code_system == LOINC_ROOT else "", text=header.title,
        issued_at=facts.issued, laboratory=facts.laboratory, identifier_system=system, identifier=identifier,
    )
    try:
        lab_report_check(report)
    except InvalidInput as refused:
        logger.info("cda: laboratory values not kept (%s)", refused.code)
        return None
    return report


def lab_report_attach(*, record: Record, document, report: LabReportInput) -> LabReport | None:
    """The values of a laboratory's CDA bound to the document being stored (the CDA itself: no
    second document), inside the storing's transaction; `report` was checked by
    `cda_lab_report`. The same report already in the record (its id, else its values) is not
    written twice: None."""
    fingerprint = results_fingerprint(record, report)
    if _existing(record, report, fingerprint) is not None:
        return None
    return _report_create(record, document, report, fingerprint)
