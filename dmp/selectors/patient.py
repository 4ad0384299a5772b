"""What the patient's home page shows (DOMAIN.md §3, patient home), in one authorised read."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404

from ..access_log import authorise_read
from ..models import AuditEntry, AuditMode, Document, DocumentType, EmergencyContact, PersonalProfile, Record, Synthesis
from ..policy import Action, Actor
from .records import HISTORY_ORDER, documents_visible_to

# Accesses that are always shown apart: they happened without the patient's prior say.
EMERGENCY_MODES = (AuditMode.BREAK_GLASS, AuditMode.SAMU)


@dataclass(frozen=True)
class PatientHome:
    last_document: Document | None
    synthesis: Synthesis | None
    profile: PersonalProfile | None
    emergency_contacts: list[EmergencyContact]
    last_professional_accesses: list[AuditEntry]
    last_emergency_accesses: list[AuditEntry]

    has_advance_directives_document: bool = False

    @property
    def advance_directives_missing(self) -> bool:
        """Neither written in the guided form nor uploaded as a document."""
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
    return PatientHome(
        last_document=documents_visible_to(actor, record).order_by("-added_at", "-pk").first(),
        synthesis=synthesis,
        profile=PersonalProfile.objects.filter(record=record).first(),
        emergency_contacts=list(record.emergency_contacts.all()),
        last_professional_accesses=list(
            accesses.filter(mode__in=(AuditMode.NORMAL, AuditMode.TREATING_DOCTOR)).order_by(*HISTORY_ORDER)[:5]
        ),
        last_emergency_accesses=list(accesses.filter(mode__in=EMERGENCY_MODES).order_by(*HISTORY_ORDER)[:5]),
        has_advance_directives_document=documents_visible_to(actor, record).filter(
            doc_type=DocumentType.ADVANCE_DIRECTIVES).exists(),
    )
