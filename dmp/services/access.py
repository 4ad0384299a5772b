"""Opening and closing access to a record: care authorisations, break-glass, médecin traitant, blocks,
counter deposit rights, the patient's emergency choices."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import access_log
from ..models import (
    AuditMode,
    Block,
    CareAuthorisation,
    DepositRight,
    Organisation,
    Professional,
    Record,
    TreatingDoctor,
)
from ..notifications import notify, notify_patient_side, professional_context
from ..policy import Action, Actor, Decision
from . import InvalidInput, InvalidInputCode, permit


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in text if not unicodedata.combining(c)).casefold().strip()


def care_authorisation_grant(*, actor: Actor, record: Record, professional: Professional) -> CareAuthorisation:
    """The patient authorises a professional to read and feed their record."""
    decision = permit(actor, Action.MANAGE_ACCESS, record)
    if Block.objects.active().filter(record=record, professional=professional).exists():
        raise InvalidInput(_("This professional is blocked: lift the block first."), code=InvalidInputCode.NOT_ALLOWED)
    with transaction.atomic():
        grant, _created = CareAuthorisation.objects.get_or_create(
            record=record, professional=professional, kind=CareAuthorisation.Kind.GRANTED_BY_PATIENT, ended_at=None,
            defaults={"created_by": actor.user},
        )
        access_log.write(actor, Action.MANAGE_ACCESS, decision, grant, record=record)
    return grant


def care_authorisation_declare(*, actor: Actor, record: Record, share_with_facility: bool = False
                               ) -> CareAuthorisation:
    """A professional declares, at a consultation, that the patient agrees. Logged; the
    patient is told at first access (notifications, DOMAIN.md §5). `share_with_facility`: a
    professional of a care facility shares the authorisation with the facility's care team
    (each member's accesses are still logged under their own name)."""
    facility = None
    if share_with_facility:
        # Checked before the policy is asked: it is about the professional, not the record.
        facility = actor.professional.facility if actor.professional is not None else None
        if facility is None or facility.kind != Organisation.Kind.FACILITY:
            raise InvalidInput(_("You do not belong to a care facility's team."), code=InvalidInputCode.NOT_ALLOWED)
    decision = permit(actor, Action.DECLARE_CARE, record)
    kind = CareAuthorisation.Kind.DECLARED_BY_PROFESSIONAL
    with transaction.atomic():
        # Declaring twice the same way keeps the one declaration in force.
        grant = CareAuthorisation.objects.active().filter(
            record=record, professional=actor.professional, kind=kind, facility=facility
        ).first() or CareAuthorisation.objects.create(
            record=record, professional=actor.professional, kind=kind, created_by=actor.user, facility=facility,
        )
        access_log.write(actor, Action.DECLARE_CARE, decision, grant, record=record)
    actor.forget(record)
    return grant


# A break-glass attempt whose re-entered identity does not match the record: a failed attempt,
# written as such (someone may be trying names on a record they were not given).
IDENTITY_MISMATCH = Decision(False, "identity_mismatch", AuditMode.NONE,
                             gettext_lazy("The identity entered does not match the record."))


# The rule id of a break-glass that found an opening of the same professional in force and reused it.
BREAK_GLASS_IN_FORCE = "break_glass_in_force"


def break_glass_open(
    *, actor: Actor, record: Record, family_name: str, given_names: str, birth_date: date, justification: str,
    emergency: bool,
) -> CareAuthorisation:
    """Emergency access: the professional re-enters the patient's identity, a justification and
    ticks "emergency". Limited in time; hidden documents stay hidden.

    The opening is logged only once it happened, in its transaction; an identity that does not
    match the record is written as a refused attempt (`identity_mismatch`), never as an opening.
    Once per professional and record while it is in force: opening again returns the opening in
    force (its justification and end unchanged), logged as `break_glass_in_force`, told to nobody."""
    decision = permit(actor, Action.BREAK_GLASS, record)
    if not emergency:
        raise InvalidInput(_("Tick the emergency box to open the record in emergency."), code=InvalidInputCode.MISSING)
    if not justification.strip():
        raise InvalidInput(_("Give the reason for the emergency access."), code=InvalidInputCode.MISSING)
    if (
        _fold(family_name) != _fold(record.family_name)
        or _fold(given_names.split()[0] if given_names.split() else "") != _fold(record.given_names.split()[0])
        or birth_date != record.birth_date
    ):
        access_log.refusal(actor, Action.BREAK_GLASS, IDENTITY_MISMATCH, record, record=record)
        raise InvalidInput(_("The name, first name and date of birth do not match this record."),
                           code=InvalidInputCode.MISMATCH)
    with transaction.atomic():
        grant, created = _emergency_opening(actor, record, CareAuthorisation.Kind.BREAK_GLASS,
                                            justification=justification.strip())
        if created:
            access_log.write(actor, Action.BREAK_GLASS, decision, grant, record=record)
            _notify_break_glass(record, grant)
        else:
            # Opened again while the opening is in force (a double-click, a retrying browser, a
            # second visit): the attempt is written as what it was, an opening that reused the
            # one in force; no new grant, no new notice.
            access_log.write(actor, Action.BREAK_GLASS, replace(decision, rule=BREAK_GLASS_IN_FORCE), grant,
                             record=record)
    actor.forget(record)
    return grant


def _emergency_opening(actor: Actor, record: Record, kind: str, *, justification: str = ""
                       ) -> tuple[CareAuthorisation, bool]:
    """The professional's emergency opening of `kind` in force on the record, or a new one:
    (grant, created). Inside the caller's transaction.

    Two submissions at the same moment must give one opening: the record's row is locked
    (PostgreSQL; SQLite runs one writing transaction at a time), so the second waits and then
    finds the first one's opening. The unique constraint `one_emergency_opening_in_force` holds
    even where the lock does not: an insert that loses the race falls back on the winner's row."""
    list(Record.objects.select_for_update().filter(pk=record.pk).values_list("pk", flat=True))
    now = timezone.now()
    mine = CareAuthorisation.objects.filter(record=record, professional=actor.professional, kind=kind)
    # An opening whose time is over but not yet marked ended (the beat task runs every few
    # minutes) still holds the constraint's place: mark it ended now, as the task would.
    mine.filter(ended_at__isnull=True, expires_at__lte=now).update(ended_at=F("expires_at"))
    grant = mine.active(now).order_by("-expires_at").first()
    if grant is not None:
        return grant, False
    try:
        with transaction.atomic():
            grant = CareAuthorisation.objects.create(
                record=record, professional=actor.professional, kind=kind, justification=justification,
                created_at=now, created_by=actor.user,
                expires_at=now + timedelta(hours=settings.BREAK_GLASS_DURATION_HOURS),
            )
    except IntegrityError:
        grant = mine.active(now).order_by("-expires_at").first()
        if grant is None:
            raise
        return grant, False
    return grant, True


def _notify_break_glass(record: Record, grant: CareAuthorisation) -> None:
    """The patient, their legal representatives and their médecin traitant are always told
    (DOMAIN.md §4, docs/minors.md), once per opening: the reads during the opening are not
    notified one by one. The justification is not sent: it is medical."""
    who = professional_context(grant.professional)
    notify_patient_side(record, "break_glass", key=f"break_glass:{grant.pk}", when=grant.created_at,
                        until=grant.expires_at, **who)
    doctors = TreatingDoctor.objects.active(grant.created_at).filter(record=record).select_related("professional__user")
    for designation in doctors:
        if designation.professional_id != grant.professional_id:
            notify(designation.professional.user, "break_glass_treating_doctor", record=record,
                   key=f"break_glass:{grant.pk}:treating:{designation.professional_id}", when=grant.created_at,
                   patient=record.full_name, **who)


def break_glass_expire_due(*, at: datetime | None = None) -> int:
    """Mark ended the emergency accesses (break-glass, SAMU) whose time is over (Celery beat).
    The policy already refuses them from `expires_at` on; this makes the state explicit in the
    rows (`ended_at` = the moment they expired). Nobody is notified: the opening was. Returns
    how many ended."""
    at = at or timezone.now()
    return CareAuthorisation.objects.filter(
        kind__in=[CareAuthorisation.Kind.BREAK_GLASS, CareAuthorisation.Kind.SAMU],
        ended_at__isnull=True, expires_at__lte=at,
    ).update(ended_at=F("expires_at"))


def treating_doctor_designate(*, actor: Actor, record: Record, professional: Professional) -> TreatingDoctor:
    """The patient designates their médecin traitant in the record; the previous one ends."""
    decision = permit(actor, Action.MANAGE_ACCESS, record)
    if professional.profession != "gp":
        raise InvalidInput(_("The médecin traitant is a general practitioner."), code=InvalidInputCode.NOT_ALLOWED)
    if Block.objects.active().filter(record=record, professional=professional).exists():
        raise InvalidInput(_("This professional is blocked: lift the block first."), code=InvalidInputCode.NOT_ALLOWED)
    now = timezone.now()
    with transaction.atomic():
        TreatingDoctor.objects.select_for_update().filter(record=record, ended_at__isnull=True).update(ended_at=now)
        designation = TreatingDoctor.objects.create(record=record, professional=professional, designated_at=now)
        access_log.write(actor, Action.MANAGE_ACCESS, decision, designation, record=record)
    actor.forget(record)
    return designation


def professional_block(*, actor: Actor, record: Record, professional: Professional) -> Block:
    """Block a professional (patient, or médecin traitant at the patient's request): no access
    at all, not even in an emergency. Their care authorisations end."""
    decision = permit(actor, Action.BLOCK_PROFESSIONAL, record)
    now = timezone.now()
    with transaction.atomic():
        CareAuthorisation.objects.active(now).filter(record=record, professional=professional).update(ended_at=now)
        block, _created = Block.objects.get_or_create(
            record=record, professional=professional, ended_at=None,
            defaults={"created_at": now, "created_by": actor.user},
        )
        access_log.write(actor, Action.BLOCK_PROFESSIONAL, decision, block, record=record)
    actor.forget(record)
    return block


def treating_doctor_end(*, actor: Actor, record: Record) -> TreatingDoctor:
    """The patient ends their médecin traitant's designation without naming another. The doctor
    keeps only what a care authorisation of theirs still gives."""
    decision = permit(actor, Action.MANAGE_ACCESS, record)
    with transaction.atomic():
        designation = TreatingDoctor.objects.select_for_update().active().filter(record=record).first()
        if designation is None:
            raise InvalidInput(_("There is no médecin traitant to remove."), code=InvalidInputCode.STATE)
        designation.ended_at = timezone.now()
        designation.save(update_fields=["ended_at"])
        access_log.write(actor, Action.MANAGE_ACCESS, decision, designation, record=record)
    actor.forget(record)
    return designation


def care_authorisation_revoke(*, actor: Actor, record: Record, professional: Professional) -> int:
    """The patient revokes a professional's care authorisation, whether the patient granted it
    or the professional declared it: from now on they no longer read the record (unless they
    are the médecin traitant). Emergency openings are not revoked here: blocking ends them.
    Returns how many authorisations ended."""
    decision = permit(actor, Action.MANAGE_ACCESS, record)
    kinds = CareAuthorisation.CARE_KINDS
    now = timezone.now()
    with transaction.atomic():
        ended = CareAuthorisation.objects.active(now).filter(
            record=record, professional=professional, kind__in=kinds
        ).update(ended_at=now)
        if not ended:
            raise InvalidInput(_("This professional has no care authorisation to revoke."), code=InvalidInputCode.STATE)
        access_log.write(actor, Action.MANAGE_ACCESS, decision, professional, record=record)
    actor.forget(record)
    return ended


def professional_unblock(*, actor: Actor, record: Record, professional: Professional) -> Block:
    """Lift a block. The professional is back where any professional stands: authorisations
    the block ended stay ended, but they may be granted again, declare care or use emergency
    access (if the patient allows it)."""
    decision = permit(actor, Action.BLOCK_PROFESSIONAL, record)
    with transaction.atomic():
        block = Block.objects.select_for_update().active().filter(record=record, professional=professional).first()
        if block is None:
            raise InvalidInput(_("This professional is not blocked."), code=InvalidInputCode.STATE)
        block.ended_at = timezone.now()
        block.save(update_fields=["ended_at"])
        access_log.write(actor, Action.BLOCK_PROFESSIONAL, decision, block, record=record)
    actor.forget(record)
    return block


def deposit_right_withdraw(*, actor: Actor, record: Record, deposit_right_id: int) -> DepositRight:
    """The patient withdraws a counter agent's right to deposit papers into the record."""
    decision = permit(actor, Action.MANAGE_ACCESS, record)
    with transaction.atomic():
        right = DepositRight.objects.select_for_update().active().filter(record=record, pk=deposit_right_id).first()
        if right is None:
            raise InvalidInput(_("This deposit right does not exist or was already withdrawn."),
                               code=InvalidInputCode.STATE)
        right.ended_at = timezone.now()
        right.save(update_fields=["ended_at"])
        # The right is the organisation's: its other agents' rights on this record end too.
        DepositRight.objects.active().filter(
            record=record, agent__organisation_id=right.agent.organisation_id
        ).update(ended_at=right.ended_at)
        access_log.write(actor, Action.MANAGE_ACCESS, decision, right, record=record)
    return right


def record_emergency_access_set(
    *, actor: Actor, record: Record, break_glass_allowed: bool, samu_allowed: bool
) -> Record:
    """The patient's two emergency choices (question 2 at creation), changeable at any time.
    Turning one off takes effect at once, emergency openings in progress included (the policy
    reads the choice at every access)."""
    decision = permit(actor, Action.MANAGE_ACCESS, record)
    with transaction.atomic():
        record.break_glass_allowed = break_glass_allowed
        record.samu_allowed = samu_allowed
        record.save(update_fields=["break_glass_allowed", "samu_allowed"])
        access_log.write(actor, Action.MANAGE_ACCESS, decision, record, record=record, object_id="emergency_access")
    actor.forget(record)
    return record
