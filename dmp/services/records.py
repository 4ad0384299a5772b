"""Creating and closing records."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import access_log, audit
from ..models import AuditMode, Consent, DepositRight, PersonalProfile, Record, User
from ..models.people import normalise_phone
from ..models.record import normalise_nir, validate_nir
from ..notifications import notify
from ..policy import Action, Actor, Decision
from . import InvalidInput, InvalidInputCode, permit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    """What is printed on the sheet handed to the person. The password is shown once."""

    username: str
    temporary_password: str


@dataclass(frozen=True)
class NewRepresentative:
    """A legal representative who has no account yet, met at the counter with the minor."""

    family_name: str
    given_names: str
    relationship: str = "parent"
    email: str = ""
    phone: str = ""


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
    decision = permit(actor, Action.CREATE_RECORD)
    if not consented:
        raise InvalidInput(_("A record is created only with the person's informed consent."),
                           code=InvalidInputCode.MISSING)
    nir = normalise_nir(nir) or None
    if nir:
        try:
            validate_nir(nir)
        except Exception as exc:
            raise InvalidInput(" ".join(getattr(exc, "messages", [str(exc)])), code=InvalidInputCode.INVALID) from exc
        if Record.objects.filter(nir=nir).exists():
            raise InvalidInput(_("A record already exists for this social-security number."),
                               code=InvalidInputCode.DUPLICATE)
    if phone:
        try:
            phone = normalise_phone(phone)  # the login code goes there: SMS providers want +33…
        except ValidationError as exc:
            raise InvalidInput(" ".join(exc.messages), code=InvalidInputCode.INVALID) from exc
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
        access_log.write(actor, Action.CREATE_RECORD, decision, None, record=record)
        notify(user, "record_created", record=record, key=f"record_created:{record.pk}", when=now)
        if nir:
            _pull_reimbursement_history_after_commit(record)
    return record, Credentials(username=user.username, temporary_password=password)


def _pull_reimbursement_history_after_commit(record: Record) -> None:
    """A record with a NIR gets the insurer's last 24 months (DOMAIN.md §2), in the background."""

    def queue() -> None:
        from ..tasks import pull_reimbursement_history

        try:
            pull_reimbursement_history.delay(record.pk)
        except Exception as exc:  # the broker is down: the periodic feed brings the lines later
            logger.warning("reimbursement history of record %s not queued (%s)", record.pk, type(exc).__name__)

    transaction.on_commit(queue, robust=True)


def record_nir_attach(*, actor: Actor, record: Record, nir: str) -> Record:
    """Attach the NIR to a record that lives on its provisional identifier (a person who had no
    carte vitale yet, DOMAIN.md §2): the same record, nothing lost. The counter that onboarded
    the person or the patient (or their representative) does it. The login identifier printed
    on the person's sheet stays the same. The patient is notified, and the insurer's last 24
    months of reimbursements are pulled in."""
    decision = permit(actor, Action.ATTACH_NIR, record)
    nir = normalise_nir(nir)
    try:
        validate_nir(nir)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), code=InvalidInputCode.INVALID) from exc
    now = timezone.now()
    try:
        with transaction.atomic():
            # Locked: two agents attaching at once must not both see "no NIR yet".
            record = Record.objects.select_for_update(of=("self",)).select_related("holder").get(pk=record.pk)
            if record.nir:
                raise InvalidInput(_("This record already has a social-security number."), code=InvalidInputCode.STATE)
            if Record.objects.filter(nir=nir).exists():
                raise InvalidInput(_("A record already exists for this social-security number."),
                                   code=InvalidInputCode.DUPLICATE)
            record.nir = nir
            record.save(update_fields=["nir"])
            access_log.write(actor, Action.ATTACH_NIR, decision, record, record=record)
            if record.holder is not None:
                notify(record.holder, "nir_attached", record=record, key=f"nir_attached:{record.pk}", when=now)
            _pull_reimbursement_history_after_commit(record)
    except IntegrityError as exc:  # the same NIR attached elsewhere at the same moment
        raise InvalidInput(_("A record already exists for this social-security number."),
                           code=InvalidInputCode.DUPLICATE) from exc
    actor.forget(record)
    return record


def record_close(*, actor: Actor, record: Record, reason: str = Record.ClosureReason.REQUEST) -> Record:
    """Close the record at the person's request: from now on nobody reads it (legal retention)."""
    decision = permit(actor, Action.CLOSE_RECORD, record)
    with transaction.atomic():
        record = Record.objects.select_for_update().get(pk=record.pk)
        record.state = Record.State.CLOSED
        record.closed_at = timezone.now()
        record.closure_reason = reason
        record.save(update_fields=["state", "closed_at", "closure_reason"])
        access_log.write(actor, Action.CLOSE_RECORD, decision, record, record=record)
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


def records_destroy_due(*, at: datetime | None = None) -> list[int]:
    """Destroy every record closed `RETENTION_YEARS` ago or more (Celery beat, daily): its
    document and export files, its rows (documents, personal data, synthesis, reimbursements,
    authorisations, notifications…) and the holder's account, leaving one tombstone entry in
    the audit log, with ids only. The audit entries about the record stay (they name it by id),
    so the hash chain is untouched. Returns the ids of the records destroyed."""
    at = at or timezone.now()
    today = timezone.localdate(at)
    # A cheap first cut well under ten years, then the exact date per record (a calendar date).
    candidates = Record.objects.filter(state=Record.State.CLOSED, closed_at__lte=at - timedelta(days=3640))
    destroyed = []
    for record in candidates.only("pk", "closed_at", "state"):
        when = record_destruction_date(record)
        if when is not None and when <= today and _record_destroy(record.pk, today):
            destroyed.append(record.pk)
    return destroyed


def _record_destroy(record_id: int, today: date) -> bool:
    with transaction.atomic():
        record = Record.objects.select_for_update().filter(pk=record_id, state=Record.State.CLOSED).first()
        when = record_destruction_date(record) if record is not None else None
        if when is None or when > today:
            return False
        # Files first, inside the transaction: if something fails after, the record is still
        # due and the next run finishes; the other way round could leave files nobody can find.
        names = [f.name for doc in record.documents.all() for f in (doc.file, doc.thumbnail) if f]
        names += [export.file.name for export in record.exports.all() if export.file]
        for name in names:
            default_storage.delete(name)
        for folder in (f"records/{record_id}", f"exports/{record_id}"):
            _remove_empty_folder(folder)
        holder_id = record.holder_id
        record.documents.update(replaces=None)  # versions point at each other (PROTECT)
        record.delete()
        if holder_id is not None:
            _holder_account_remove(holder_id)
        audit.log_access(
            actor_user=None, actor_label="system (legal retention)", role="system", ip=None,
            action=Action.DESTROY_RECORD,
            decision=Decision(True, "retention_period_over", AuditMode.ADMIN, "Destroyed 10 years after closure."),
            record_id=record_id, object_id=str(record_id),
        )
    logger.info("record %s destroyed at the end of its retention (%s files)", record_id, len(names))
    return True


def _remove_empty_folder(name: str) -> None:
    try:
        Path(default_storage.path(name)).rmdir()
    except (NotImplementedError, OSError):  # not there, not empty, or a storage without folders
        pass


def _holder_account_remove(user_id: int) -> None:
    """The destroyed record's account goes too, unless it serves elsewhere (a professional, a
    counter agent, staff, a legal representative): then only the link went. An account still
    named by another record's rows (e.g. a document it added as a representative) is emptied of
    everything personal and disabled instead."""
    user = User.objects.filter(pk=user_id).first()
    if user is None or user.is_staff or user.represented.exists():
        return
    if hasattr(user, "professional") or hasattr(user, "counter_agent"):
        return
    try:
        with transaction.atomic():
            user.delete()
    except (ProtectedError, IntegrityError):
        user.username = f"destroyed-{user.pk}"
        user.first_name = user.last_name = user.email = user.phone = ""
        user.is_active = False
        user.set_unusable_password()
        user.save()


def record_notifications_set(
    *, actor: Actor, record: Record, by_email: bool, by_sms: bool, every_access: bool
) -> Record:
    """The channels the patient chose for notifications and the optional alert on every access
    (DOMAIN.md §5). Emergency and SAMU accesses are notified whatever these say."""
    decision = permit(actor, Action.MANAGE_ACCESS, record)
    with transaction.atomic():
        record.notify_by_email = by_email
        record.notify_by_sms = by_sms
        record.notify_every_access = every_access
        record.save(update_fields=["notify_by_email", "notify_by_sms", "notify_every_access"])
        access_log.write(actor, Action.MANAGE_ACCESS, decision, record, record=record, object_id="notifications")
    return record


def record_representatives_notified_set(*, actor: Actor, record: Record, notified: bool) -> Record:
    """Whether the legal representatives hear of the record's ordinary life (a professional's
    first access, new documents): the patient's own choice, never a representative's. Emergency
    and SAMU accesses are told to them whatever this says (docs/minors.md)."""
    decision = permit(actor, Action.NOTIFY_REPRESENTATIVES, record)
    with transaction.atomic():
        record.representatives_notified = notified
        record.save(update_fields=["representatives_notified"])
        access_log.write(actor, Action.NOTIFY_REPRESENTATIVES, decision, record, record=record,
                         object_id="notifications")
    return record


# --- counter onboarding (issue 6) ----------------------------------------------------------------


def record_onboard(
    *,
    actor: Actor,
    emergency_contact_name: str = "",
    emergency_contact_relation: str = "",
    emergency_contact_phone: str = "",
    representative_username: str = "",
    representative_relationship: str = "parent",
    new_representative: NewRepresentative | None = None,
    **create: object,
) -> tuple[Record, Credentials, tuple[User, Credentials] | None]:
    """A counter onboarding: `record_create` plus what the person gave at the counter that the
    record's own services do not let an agent write later (the person to notify in an emergency,
    the legal representative of a minor: an existing account, or `new_representative`, whose own
    account is created here). One transaction: nothing half-created. The creating agent may
    write these only here, under the creation's own decision. Returns the record, the holder's
    credentials and the new representative's account with its credentials (None without one),
    each printed on its own sheet."""
    from ..models import EmergencyContact, LegalRepresentative
    from .personal import _contact_phone

    # Asked before the transaction below, so a refusal stays in the log when it rolls back.
    permit(actor, Action.CREATE_RECORD)
    name = (emergency_contact_name or "").strip()[:150]
    relation = (emergency_contact_relation or "").strip()[:60]
    phone = (emergency_contact_phone or "").strip()
    if bool(name) != bool(phone):
        raise InvalidInput(_("The person to notify in an emergency needs both a name and a phone number."),
                           code=InvalidInputCode.MISSING)
    if phone:
        phone = _contact_phone(phone[:30])
    representative = None
    if representative_username and new_representative is not None:
        raise InvalidInput(_("Give the legal representative's existing account or create one, not both."),
                           code=InvalidInputCode.INVALID)
    if representative_username:
        representative = User.objects.filter(username=representative_username.strip(), is_active=True).first()
        if representative is None:
            raise InvalidInput(_("No active account has this username."), code=InvalidInputCode.INVALID)
    new_account = None
    with transaction.atomic():
        record, credentials = record_create(actor=actor, **create)
        if name:
            EmergencyContact.objects.create(record=record, name=name, relation=relation, phone=phone)
        if new_representative is not None:
            new_account = _representative_account(new_representative, language=record.preferred_language)
            representative = new_account[0]
            representative_relationship = new_representative.relationship
        if representative is not None:
            LegalRepresentative.objects.create(
                record=record, user=representative, relationship=representative_relationship)
    return record, credentials, new_account


def _representative_account(new: NewRepresentative, *, language: str) -> tuple[User, Credentials]:
    """The representative's own account, like a holder's: a temporary password to change at
    the first login, the login code to their own phone or e-mail. Its identifier starts with
    "R" (a holder's is a NIR or "P…"), in the alphabet without look-alikes of the sheets."""
    from ..models import LegalRepresentative
    from ..models.record import new_provisional_id

    family_name, given_names = new.family_name.strip()[:150], new.given_names.strip()[:150]
    if not (family_name and given_names):
        raise InvalidInput(_("The legal representative needs a family name and given names."),
                           code=InvalidInputCode.MISSING)
    if new.relationship not in LegalRepresentative.Relationship.values:
        raise InvalidInput(_("Choose the relationship."), code=InvalidInputCode.INVALID)
    phone = new.phone.strip()
    if phone:
        try:
            phone = normalise_phone(phone)
        except ValidationError as exc:
            raise InvalidInput(" ".join(exc.messages), code=InvalidInputCode.INVALID) from exc
    password = _temporary_password()
    user = User(username="R" + new_provisional_id()[1:], first_name=given_names, last_name=family_name,
                email=new.email.strip(), phone=phone, preferred_language=language, must_change_password=True)
    user.set_password(password)
    user.save()
    return user, Credentials(username=user.username, temporary_password=password)
