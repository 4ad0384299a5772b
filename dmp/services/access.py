"""Opening and closing access to a record: care authorisations, break-glass, médecin traitant, blocks."""

from __future__ import annotations

import unicodedata
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import Block, CareAuthorisation, Professional, Record, TreatingDoctor
from ..policy import Action, Actor, authorise
from . import InvalidInput, require


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in text if not unicodedata.combining(c)).casefold().strip()


def care_authorisation_grant(*, actor: Actor, record: Record, professional: Professional) -> CareAuthorisation:
    """The patient authorises a professional to read and feed their record."""
    require(authorise(actor, Action.MANAGE_ACCESS, record))
    if Block.objects.active().filter(record=record, professional=professional).exists():
        raise InvalidInput(_("This professional is blocked: lift the block first."))
    grant, _created = CareAuthorisation.objects.get_or_create(
        record=record, professional=professional, kind=CareAuthorisation.Kind.GRANTED_BY_PATIENT, ended_at=None,
        defaults={"created_by": actor.user},
    )
    return grant


def care_authorisation_declare(*, actor: Actor, record: Record) -> CareAuthorisation:
    """A professional declares, at a consultation, that the patient agrees. Logged; the
    patient is told at first access (notifications, DOMAIN.md §5)."""
    require(authorise(actor, Action.DECLARE_CARE, record))
    grant = CareAuthorisation.objects.create(
        record=record, professional=actor.professional, kind=CareAuthorisation.Kind.DECLARED_BY_PROFESSIONAL,
        created_by=actor.user,
    )
    actor.forget(record)
    return grant


def break_glass_open(
    *, actor: Actor, record: Record, family_name: str, given_names: str, birth_date: date, justification: str,
    emergency: bool,
) -> CareAuthorisation:
    """Emergency access: the professional re-enters the patient's identity, a justification and
    ticks "emergency". Limited in time; hidden documents stay hidden."""
    require(authorise(actor, Action.BREAK_GLASS, record))
    if not emergency:
        raise InvalidInput(_("Tick the emergency box to open the record in emergency."))
    if not justification.strip():
        raise InvalidInput(_("Give the reason for the emergency access."))
    if (
        _fold(family_name) != _fold(record.family_name)
        or _fold(given_names.split()[0] if given_names.split() else "") != _fold(record.given_names.split()[0])
        or birth_date != record.birth_date
    ):
        raise InvalidInput(_("The name, first name and date of birth do not match this record."))
    now = timezone.now()
    grant = CareAuthorisation.objects.create(
        record=record, professional=actor.professional, kind=CareAuthorisation.Kind.BREAK_GLASS,
        justification=justification.strip(), created_at=now, created_by=actor.user,
        expires_at=now + timedelta(hours=settings.BREAK_GLASS_DURATION_HOURS),
    )
    actor.forget(record)
    return grant


def treating_doctor_designate(*, actor: Actor, record: Record, professional: Professional) -> TreatingDoctor:
    """The patient designates their médecin traitant in the record; the previous one ends."""
    require(authorise(actor, Action.MANAGE_ACCESS, record))
    if professional.profession != "gp":
        raise InvalidInput(_("The médecin traitant is a general practitioner."))
    now = timezone.now()
    with transaction.atomic():
        TreatingDoctor.objects.select_for_update().filter(record=record, ended_at__isnull=True).update(ended_at=now)
        designation = TreatingDoctor.objects.create(record=record, professional=professional, designated_at=now)
    actor.forget(record)
    return designation


def professional_block(*, actor: Actor, record: Record, professional: Professional) -> Block:
    """Block a professional (patient, or médecin traitant at the patient's request): no access
    at all, not even in an emergency. Their care authorisations end."""
    require(authorise(actor, Action.BLOCK_PROFESSIONAL, record))
    now = timezone.now()
    with transaction.atomic():
        CareAuthorisation.objects.active(now).filter(record=record, professional=professional).update(ended_at=now)
        block, _created = Block.objects.get_or_create(
            record=record, professional=professional, ended_at=None,
            defaults={"created_at": now, "created_by": actor.user},
        )
    actor.forget(record)
    return block
