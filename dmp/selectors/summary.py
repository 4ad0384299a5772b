"""The International Patient Summary's content, read once for both its forms: the FHIR
`$summary` (dmp/api/fhir/summary.py) and the bilingual PDF (dmp/summary_pdf.py), so the two
cannot say different things. Each entry point asks the policy and records the read; what they
load afterwards is the same (`_content`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.http import Http404
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle

from .. import fhir
from ..access_log import authorise_read
from ..models import LabObservation, Professional, Record, ReimbursementLine, SelfDeclaredItem, Synthesis, Vaccination
from ..policy import Action, Actor
from .patient_data import declared_allergies, dispensed_medicines, personal_profile, recent_medicines, vaccinations_of
from .records import get_record_for, synthesis_for
from .results import latest_results_for

RECENT_RESULTS_DAYS = 365  # the IPS results section: each test's latest value of the last year


@dataclass(frozen=True)
class SummaryContent:
    """What the summary holds for one record: already filtered for whoever asked."""

    record: Record
    synthesis: Synthesis | None
    treating_doctor: Professional | None
    declared_allergies: list[SelfDeclaredItem] = field(default_factory=list)
    vaccinations: list[Vaccination] = field(default_factory=list)
    dispensed: list[ReimbursementLine] = field(default_factory=list)
    advance_directives: str = ""
    results: list[LabObservation] = field(default_factory=list)  # each with its report loaded

    def bundle(self, *, at: datetime | None = None) -> Bundle:
        """The IPS document Bundle (`fhir.patient_summary`)."""
        return fhir.patient_summary(
            self.record, synthesis=self.synthesis, treating_doctor=self.treating_doctor,
            declared_allergies=self.declared_allergies, vaccinations=self.vaccinations, dispensed=self.dispensed,
            advance_directives=self.advance_directives, at=at,
            results=[fhir.lab_observation(value, subject=fhir.patient(self.record)) for value in self.results],
        )


def _content(record: Record, *, synthesis: Synthesis | None, dispensed: list[ReimbursementLine]) -> SummaryContent:
    from ..models import TreatingDoctor

    if synthesis is not None:
        synthesis = (record.syntheses.select_related("author__user").prefetch_related("problems")
                     .get(pk=synthesis.pk))
    profile = personal_profile(record)
    treating = TreatingDoctor.objects.active().filter(record=record).select_related("professional__user").first()
    return SummaryContent(
        record=record,
        synthesis=synthesis,
        treating_doctor=treating.professional if treating else None,
        declared_allergies=declared_allergies(record),
        vaccinations=vaccinations_of(record),
        dispensed=dispensed,
        advance_directives=profile.advance_directives if profile else "",
    )


def summary_for_api(actor: Actor, record: Record) -> SummaryContent:
    """The summary as a professional's software reads it: the synthesis (`VIEW_SYNTHESIS`), the
    personal data (`VIEW_PERSONAL_DATA`) and the medicines dispensed when `VIEW_REIMBURSEMENTS`
    allows them, each asked and audited on its own; Http404 if one of the first two is refused."""
    synthesis = synthesis_for(actor, record)  # asks VIEW_SYNTHESIS, audits, Http404 if refused
    if not authorise_read(actor, Action.VIEW_PERSONAL_DATA, record):
        raise Http404
    # dispensed_medicines asks VIEW_REIMBURSEMENTS and logs the read itself.
    content = _content(record, synthesis=synthesis, dispensed=dispensed_medicines(actor, record))
    # The values of the reports whose document the professional may read (dmp/selectors/results.py).
    since = timezone.localdate() - timedelta(days=RECENT_RESULTS_DAYS)
    latest = latest_results_for(actor, record, length=1, since=since)
    return replace(content, results=[series.latest for series in latest])


def summary_to_print(actor: Actor, pk: int) -> SummaryContent:
    """The summary the person carries, of record `pk`: for the patient, their legal
    representative, or the counter that onboarded them (`PRINT_PATIENT_SUMMARY`: one audited
    read, so the person's history says who printed it); Http404 for anyone else. It holds what
    the patient reads of their own record: the latest synthesis, their declared allergies,
    vaccinations, advance directives and the medicines dispensed in the last 24 months."""
    record = get_record_for(actor, pk, action=Action.PRINT_PATIENT_SUMMARY)  # load, decide, audit, or 404
    synthesis = record.syntheses.order_by("-version").first()
    return _content(record, synthesis=synthesis, dispensed=recent_medicines(record))
