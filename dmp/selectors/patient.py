"""What the patient's home page shows (DOMAIN.md §3, patient home), in one authorised read."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists
from django.http import Http404

from ..access_log import authorise_read
from ..models import AuditEntry, AuditMode, Document, DocumentType, EmergencyContact, PersonalProfile, Record, Synthesis
from ..policy import Action, Actor
from .history import HistoryLine, HistoryRow, history_lines
from .records import HISTORY_ORDER, documents_visible_to

# Accesses that are always shown apart: they happened without the patient's prior say.
EMERGENCY_MODES = (AuditMode.BREAK_GLASS, AuditMode.SAMU)


@dataclass(frozen=True)
class PatientHome:
    last_document: Document | None
    synthesis: Synthesis | None
    profile: PersonalProfile | None
    emergency_contacts: list[EmergencyContact]
    # Each a person's accesses of one day, in one capacity (`HistoryLine`), latest first.
    last_professional_accesses: list[HistoryLine]
    last_emergency_accesses: list[HistoryLine]

    has_advance_directives_document: bool = False
    # Advance directives are for adults (a minor is not asked to write them, docs/minors.md).
    directives_offered: bool = True

    @property
    def advance_directives_missing(self) -> bool:
        """Neither written in the guided form nor uploaded as a document, by an adult."""
        if not self.directives_offered:
            return False
        written = self.profile is not None and self.profile.advance_directives.strip()
        return not (written or self.has_advance_directives_document)

    @property
    def organ_donation_missing(self) -> bool:
        return not self.profile or self.profile.organ_donation == PersonalProfile.OrganDonation.NOT_STATED


def patient_home(actor: Actor, record: Record) -> PatientHome:
    """The home page of a record for its holder or representative: each part asked of the
    policy (and audited when the reader is not the patient). Http404 if refused."""
    for action in (Action.VIEW_PERSONAL_DATA, Action.VIEW_ACCESS_HISTORY):
        if not authorise_read(actor, action, record):
            raise Http404
    latest = record.syntheses.order_by("-version").prefetch_related("problems").first()
    synthesis = latest if latest is not None and authorise_read(actor, Action.VIEW_SYNTHESIS, latest) else None
    accesses = AuditEntry.objects.filter(record_id_ref=record.pk, allowed=True).exclude(mode=AuditMode.PATIENT)
    visible = documents_visible_to(actor, record)
    # One query: the last document added, and whether advance directives are among them.
    last_document = visible.annotate(
        directives_present=Exists(visible.filter(doc_type=DocumentType.ADVANCE_DIRECTIVES))
    ).order_by("-added_at", "-pk").first()
    return PatientHome(
        last_document=last_document,
        synthesis=synthesis,
        profile=PersonalProfile.objects.filter(record=record).first(),
        emergency_contacts=list(record.emergency_contacts.all()),
        last_professional_accesses=_last_visits(
            accesses.filter(mode__in=(AuditMode.NORMAL, AuditMode.TREATING_DOCTOR))),
        last_emergency_accesses=_last_visits(accesses.filter(mode__in=EMERGENCY_MODES)),
        has_advance_directives_document=last_document is not None and last_document.directives_present,
        directives_offered=not record.is_minor(),
    )


# The home page lists the last few visits; a visit reads a few pages, each one entry. The latest
# entries are read (one bounded query on the record's index) and grouped by person and day, so
# the same visit is not listed three times; a visit that began before them counts only these.
LAST_VISITS = 5
ENTRIES_FOR_LAST_VISITS = 100


def _last_visits(accesses) -> list[HistoryLine]:
    latest = accesses.order_by(*HISTORY_ORDER)[:ENTRIES_FOR_LAST_VISITS]
    return history_lines([HistoryRow(entry) for entry in latest], consecutive=False)[:LAST_VISITS]
