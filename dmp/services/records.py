"""Creating and closing records."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import Consent, DepositRight, PersonalProfile, Record, User
from ..models.people import normalise_phone
from ..models.record import normalise_nir, validate_nir
from ..policy import Action, Actor, authorise, decide, log_decision
from . import AccessRefused, InvalidInput, require


@dataclass(frozen=True)
class Credentials:
    """What is printed on the sheet handed to the person. The password is shown once."""

    username: str
    temporary_password: str


def _temporary_password() -> str:
    alphabet = "abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY3479"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))


def record_create(
    *,
    actor: Actor,
    family_name: str,
    given_names: str,
    birth_date: date,
    consented: bool,
    break_glass_allowed: bool,
    samu_allowed: bool,
    nir: str = "",
    sex: str = Record.Sex.OTHER,
    email: str = "",
    phone: str = "",
    languages: list[str] | None = None,
    preferred_language: str = "fr",
    given_by: str = Consent.GivenBy.PERSON,
    channel: str | None = None,
) -> tuple[Record, Credentials]:
    """Create a record with the person's consent and their account; returns the credentials
    to print. Without a NIR the record lives on its provisional identifier."""
    # Decided now, logged once the record exists, so the creation shows in its history.
    decision = decide(actor, Action.CREATE_RECORD)
    if not decision.allowed:
        log_decision(actor, Action.CREATE_RECORD, decision, None, record=None)
        raise AccessRefused(decision)
    if not consented:
        raise InvalidInput(_("A record is created only with the person's informed consent."))
    nir = normalise_nir(nir) or None
    if nir:
        try:
            validate_nir(nir)
        except Exception as exc:
            raise InvalidInput(" ".join(getattr(exc, "messages", [str(exc)]))) from exc
        if Record.objects.filter(nir=nir).exists():
            raise InvalidInput(_("A record already exists for this social-security number."))
    if phone:
        try:
            phone = normalise_phone(phone)  # the login code goes there: SMS providers want +33…
        except ValidationError as exc:
            raise InvalidInput(" ".join(exc.messages)) from exc
    if channel is None:
        channel = Consent.Channel.COUNTER if actor.counter_agent else Consent.Channel.PROFESSIONAL
    now = timezone.now()
    password = _temporary_password()
    with transaction.atomic():
        record = Record(
            nir=nir, family_name=family_name.strip(), given_names=given_names.strip(), birth_date=birth_date,
            sex=sex, email=email, phone=phone, languages=languages or [], preferred_language=preferred_language,
            break_glass_allowed=break_glass_allowed, samu_allowed=samu_allowed, created_by=actor.user,
            created_at=now,
        )
        user = User(
            username=record.provisional_id if not nir else nir,
            first_name=record.given_names[:150], last_name=record.family_name[:150],
            email=email, phone=phone, preferred_language=preferred_language, must_change_password=True,
        )
        user.set_password(password)
        user.save()
        record.holder = user
        record.save()
        Consent.objects.create(
            record=record, presented_and_consented=True, break_glass_allowed=break_glass_allowed,
            samu_allowed=samu_allowed, contact_email=email, contact_phone=phone, given_by=given_by,
            channel=channel, captured_by=actor.user, captured_at=now,
        )
        PersonalProfile.objects.create(record=record)
        if actor.counter_agent is not None:
            DepositRight.objects.create(record=record, agent=actor.counter_agent, created_at=now)
        log_decision(actor, Action.CREATE_RECORD, decision, None, record=record)
    return record, Credentials(username=user.username, temporary_password=password)


def record_close(*, actor: Actor, record: Record, reason: str = Record.ClosureReason.REQUEST) -> Record:
    """Close the record at the person's request: from now on nobody reads it (legal retention)."""
    require(authorise(actor, Action.CLOSE_RECORD, record))
    with transaction.atomic():
        record = Record.objects.select_for_update().get(pk=record.pk)
        record.state = Record.State.CLOSED
        record.closed_at = timezone.now()
        record.closure_reason = reason
        record.save(update_fields=["state", "closed_at", "closure_reason"])
    actor.forget(record)
    return record


# DOMAIN.md §2: a closed record is kept for legal retention, then destroyed 10 years after closure.
RETENTION_YEARS = 10


def record_destruction_date(record: Record) -> date | None:
    """The day a closed record is destroyed (None while it is open)."""
    if record.closed_at is None:
        return None
    closed = timezone.localdate(record.closed_at)
    try:
        return closed.replace(year=closed.year + RETENTION_YEARS)
    except ValueError:  # closed on 29 February
        return closed.replace(year=closed.year + RETENTION_YEARS, day=28)


def record_notifications_set(
    *, actor: Actor, record: Record, by_email: bool, by_sms: bool, every_access: bool
) -> Record:
    """The channels the patient chose for notifications and the optional alert on every access
    (DOMAIN.md §5). Emergency and SAMU accesses are notified whatever these say."""
    require(authorise(actor, Action.MANAGE_ACCESS, record))
    record.notify_by_email = by_email
    record.notify_by_sms = by_sms
    record.notify_every_access = every_access
    record.save(update_fields=["notify_by_email", "notify_by_sms", "notify_every_access"])
    return record
