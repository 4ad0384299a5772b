"""Notifications to a person about their account and record (DOMAIN.md §5): never lost, never
sent twice.

One entry point, `notify(user, event, **context)`, called by the services inside the
transaction of the change. It writes one row per channel into the outbox
(`dmp.models.Notification`): the same transaction, so a change that is rolled back leaves no
notice, and a change that commits always has its notice. Once the transaction commits, a Celery
task is queued per row (`dmp.tasks.send_notification` → `notification_send()`), which:

1. claims the row with one conditional UPDATE (pending or failed and due, or stuck in
   "sending" past its lease) → "sending", with a lease: two workers never send the same row;
2. renders the templates in the row's language and hands the message to the gateway with the
   row's idempotency key (SMS: `idempotency_key`; e-mail: a Message-ID derived from it), so a
   row sent again after a crash between "accepted by the provider" and "marked sent" is
   delivered once by a gateway that honours the key;
3. marks it "sent"; on an error, "failed" with the next try at base × 2^(attempt-1) (capped),
   or "dead" after NOTIFICATION_MAX_ATTEMPTS tries or an error retrying cannot fix. Dead rows
   stay in Django admin (read-only, with a "send again" action) for a person to act on.

`send_due_notifications` (Celery beat, every minute) queues every row that is due: failed rows
whose time has come, rows stuck in "sending" (their worker died), and rows whose first task
was never queued (the broker was down at commit time).

Channels: the ones the person chose in their record (`notify_by_email`, `notify_by_sms`) among
the ones the account has; none when they gave none. Emergency and SAMU accesses, and the
security notices about the account (credentials reset, contact details changed), go to every
channel the account has, whatever the choices. The text is in the account's preferred language,
plain and short, and never medical: a document's title may be medical, so a notice says "a new
document was added by Dr X", never which one. Templates: templates/notifications/<event>/
subject.txt, body.txt and body.html (e-mail), sms.txt.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import uuid
from datetime import date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import render_to_string
from django.utils import timezone, translation

from .models import AuditMode, CareAuthorisation, Document, LegalRepresentative, Notification, Profession, Record, User
from .policy import Standing, standing_rule
from .sms import SmsError, send_sms

if TYPE_CHECKING:
    from .policy import Actor, Decision

logger = logging.getLogger(__name__)

# Who hears of each event, and by which channels.
CHOSEN = "chosen"  # the channels the patient chose in their record
ALWAYS = "always"  # every channel the account has, whatever the choices
PROFESSIONAL = "professional"  # a professional (the médecin traitant), by e-mail

EVENTS: dict[str, str] = {
    "record_created": CHOSEN,
    "nir_attached": CHOSEN,
    "first_access": CHOSEN,
    "access": CHOSEN,  # every access, only when the patient asked for it
    "document_added": CHOSEN,
    "break_glass": ALWAYS,
    "samu_access": ALWAYS,
    "credentials_reset": ALWAYS,
    "contact_changed": ALWAYS,
    "second_factor_reset": ALWAYS,
    "account_activation": ALWAYS,
    "break_glass_treating_doctor": PROFESSIONAL,
}

# Which events about a record its legal representatives hear of too (docs/minors.md). An
# emergency or SAMU opening: always, a parent must be able to act for their child. The ordinary
# life of the record (a professional's first access, every access, a new document): unless the
# patient chose to keep it to themselves (`Record.representatives_notified`), which is how a
# minor keeps confidential care from their parents (French public health code, L1111-5).
# Anything else (creation, credentials, contact details) is about the holder's own account.
TOLD_TO_REPRESENTATIVES_ALWAYS = frozenset({"break_glass", "samu_access"})
TOLD_TO_REPRESENTATIVES_BY_CHOICE = frozenset({"first_access", "access", "document_added"})

RETRY_CAP = timedelta(hours=6)
DUE_BATCH = 500


def notify(
    user: User,
    event: str,
    *,
    also_email: str = "",
    also_phone: str = "",
    record: Record | None = None,
    key: str = "",
    **context,
) -> list[Notification]:
    """Queue the notice of `event` for the account's owner, in the caller's transaction.

    `context` holds plain values for the templates (names of people and organisations, dates,
    profession codes), never medical content and never a secret such as a password.
    `also_email` / `also_phone` are former contact details that must hear of the event too (they
    were just replaced). `record` is the record the event is about (its notification choices
    apply). `key` names the event for good (e.g. "first_access:<authorisation id>"): a second
    notice of the same event is not queued again; without it, each call is a new event.
    Returns the rows written (none when the person has no channel for it)."""
    if event not in EVENTS:
        raise ValueError(f"Unknown notification event: {event!r}")
    encoded = {name: _encode(value) for name, value in context.items()}
    destinations = _destinations(user, event, record)
    destinations += [(Notification.Channel.EMAIL, also_email), (Notification.Channel.SMS, also_phone)]
    destinations = list(dict.fromkeys((channel, to) for channel, to in destinations if to))
    if not destinations:
        return []  # a record without e-mail or phone exists and is used; nobody to tell
    base = key or f"{event}:{uuid.uuid4().hex}"
    rows = [
        Notification(
            recipient=user, record=record, event=event, channel=channel, destination=to,
            language=user.preferred_language or settings.LANGUAGE_CODE, context=encoded,
            idempotency_key=f"{base}:{channel}:{_digest(to)[:12]}",
        )
        for channel, to in destinations
    ]
    if key:  # an event named for good may have been queued already
        already = set(
            Notification.objects.filter(idempotency_key__in=[r.idempotency_key for r in rows])
            .values_list("idempotency_key", flat=True)
        )
        rows = [r for r in rows if r.idempotency_key not in already]
        if not rows:
            return []
    try:
        # A savepoint: two transactions racing to queue the same event must not break the
        # caller's; the unique key keeps one.
        with transaction.atomic():
            Notification.objects.bulk_create(rows)
    except IntegrityError:
        return []
    transaction.on_commit(partial(_enqueue, [r.pk for r in rows]), robust=True)
    return rows


def notify_patient_side(record: Record, event: str, *, key: str = "", **context) -> list[Notification]:
    """Queue the notice of an event on the record for its holder and for the legal
    representatives in force who hear of it (TOLD_TO_REPRESENTATIVES_*). A representative's
    notice names the person it is about (`represented`); the channels are those the patient
    chose. With a `key`, each person's notice is queued once."""
    rows: list[Notification] = []
    if record.holder_id is not None:
        rows += notify(record.holder, event, record=record, key=key, **context)
    told = event in TOLD_TO_REPRESENTATIVES_ALWAYS or (
        event in TOLD_TO_REPRESENTATIVES_BY_CHOICE and record.representatives_notified)
    if told:
        when = context.get("when") or timezone.now()
        for representation in LegalRepresentative.objects.active(when).filter(record=record).select_related("user"):
            rows += notify(representation.user, event, record=record,
                           key=f"{key}:representative:{representation.user_id}" if key else "",
                           represented=record.full_name, **context)
    return rows


def _destinations(user: User, event: str, record: Record | None) -> list[tuple[str, str]]:
    rule = EVENTS[event]
    if rule == PROFESSIONAL:
        return [(Notification.Channel.EMAIL, user.email)]
    by_email = by_sms = True
    if rule == CHOSEN:
        record = record or Record.objects.filter(holder=user).first()
        if record is not None:
            by_email, by_sms = record.notify_by_email, record.notify_by_sms
    return [(Notification.Channel.EMAIL, user.email if by_email else ""),
            (Notification.Channel.SMS, user.phone if by_sms else "")]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _encode(value):
    """Plain JSON for the outbox; dates and times keep their type for the templates' filters."""
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"A notification's context holds plain values only, not {type(value).__name__}")


def _decode(value):
    if isinstance(value, dict) and "$datetime" in value:
        return datetime.fromisoformat(value["$datetime"])
    if isinstance(value, dict) and "$date" in value:
        return date.fromisoformat(value["$date"])
    return value


def _enqueue(pks: list[int]) -> None:
    """After commit: one task per row. If the broker cannot be reached the rows stay pending
    and `send_due_notifications` picks them up: nothing is lost."""
    from .tasks import send_notification

    for pk in pks:
        try:
            send_notification.delay(pk)
        except Exception as exc:  # the broker is down: beat will find the row
            logger.warning("notification %s not queued (%s); left for the periodic sender", pk, type(exc).__name__)


# --- Sending -------------------------------------------------------------------------------------


def _due(now: datetime) -> Q:
    S = Notification.Status
    return Q(status__in=[S.PENDING, S.FAILED], next_attempt_at__lte=now) | Q(status=S.SENDING, lease_until__lt=now)


def notification_send(notification_id: int, *, now: datetime | None = None) -> str:
    """Send one row if it is due and nobody else holds it. Returns the status it ends in, or ""
    when it was not this call's to send (already sent, held by another worker, not due)."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=settings.NOTIFICATION_LEASE_SECONDS)
    S = Notification.Status
    # The claim: one conditional UPDATE, atomic in the database, so two workers (or a task and
    # its redelivered copy) cannot both take the row.
    claimed = Notification.objects.filter(_due(now), pk=notification_id).update(
        status=S.SENDING, lease_until=lease, attempts=F("attempts") + 1
    )
    if not claimed:
        return ""
    notification = Notification.objects.select_related("recipient").get(pk=notification_id)
    try:
        _deliver(notification)
    except Exception as exc:  # every gateway or rendering error ends in failed or dead, never raised
        return _failed(notification, exc, lease, now)
    # Marked only if the lease is still ours: a worker that took over a stuck row decides.
    Notification.objects.filter(pk=notification_id, status=S.SENDING, lease_until=lease).update(
        status=S.SENT, sent_at=timezone.now(), lease_until=None, last_error=""
    )
    logger.info("notification %s (%s by %s) sent", notification_id, notification.event, notification.channel)
    return S.SENT


def _failed(notification: Notification, exc: Exception, lease: datetime, now: datetime) -> str:
    S = Notification.Status
    code, permanent = _error_code(exc)
    if permanent or notification.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
        status, next_at = S.DEAD, now
    else:
        delay = timedelta(seconds=settings.NOTIFICATION_RETRY_BASE_SECONDS * 2 ** (notification.attempts - 1))
        status, next_at = S.FAILED, now + min(delay, RETRY_CAP)
    Notification.objects.filter(pk=notification.pk, status=S.SENDING, lease_until=lease).update(
        status=status, next_attempt_at=next_at, lease_until=None, last_error=code
    )
    # Ids and codes only: the address, the number and the text are personal.
    log = logger.error if status == S.DEAD else logger.warning
    log("notification %s (%s by %s) attempt %s failed: %s%s", notification.pk, notification.event,
        notification.channel, notification.attempts, code, " — dead, see admin" if status == S.DEAD else "")
    return status


def _error_code(exc: Exception) -> tuple[str, bool]:
    """A short code for admin and logs, and whether trying again is pointless."""
    if isinstance(exc, SmsError):
        return ("sms_refused", True) if exc.permanent else ("sms_unreachable", False)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "email_refused", True
    if isinstance(exc, smtplib.SMTPException | OSError):
        return "email_unreachable", False
    if isinstance(exc, TemplateDoesNotExist | TemplateSyntaxError):
        return "template_error", True
    return f"error:{type(exc).__name__}"[:40], False


def _deliver(notification: Notification) -> None:
    context = {name: _decode(value) for name, value in notification.context.items()}
    with translation.override(notification.language or settings.LANGUAGE_CODE):
        if "professional" in context:
            # "Dr X (General practitioner)", the profession in the notice's language.
            label = str(Profession(context["profession"]).label) if context.get("profession") in Profession.values \
                else ""
            context["who"] = f"{context['professional']} ({label})" if label else context["professional"]
        folder = f"notifications/{notification.event}"
        if notification.channel == Notification.Channel.SMS:
            text = " ".join(render_to_string(f"{folder}/sms.txt", context).split())
            send_sms(to=notification.destination, text=text, idempotency_key=notification.idempotency_key)
            return
        subject = " ".join(render_to_string(f"{folder}/subject.txt", context).split())
        message = EmailMultiAlternatives(
            subject, render_to_string(f"{folder}/body.txt", context), to=[notification.destination],
            headers={"Message-ID": message_id(notification.idempotency_key)},
        )
        message.attach_alternative(render_to_string(f"{folder}/body.html", context), "text/html")
        message.send()


def message_id(idempotency_key: str) -> str:
    """The e-mail's Message-ID, the same for every try of one notification: mail servers and
    mailboxes that see it twice keep one copy (SMTP itself has no idempotency)."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(" >") or "localhost"
    return f"<{_digest(idempotency_key)[:40]}@{domain}>"


def notifications_send_due(*, now: datetime | None = None) -> int:
    """Queue a send task for every row that is due (see the module's docstring). Returns how many."""
    from .tasks import send_notification

    now = now or timezone.now()
    pks = list(Notification.objects.filter(_due(now)).order_by("next_attempt_at").values_list("pk", flat=True)[
        :DUE_BATCH])
    for pk in pks:
        send_notification.delay(pk)
    return len(pks)


def notification_retry(notification: Notification) -> bool:
    """An administrator sends a dead (or failed) notification again, from the start of its
    tries. Sent rows are never sent again. Returns whether it was queued."""
    S = Notification.Status
    updated = Notification.objects.filter(pk=notification.pk, status__in=[S.DEAD, S.FAILED]).update(
        status=S.PENDING, attempts=0, next_attempt_at=timezone.now(), lease_until=None
    )
    if updated:
        transaction.on_commit(partial(_enqueue, [notification.pk]), robust=True)
    return bool(updated)


# --- Accesses by professionals --------------------------------------------------------------------


def professional_context(professional) -> dict:
    """How a professional is named in a notice: name and profession; never the specialty (a
    psychiatrist's visit says something about the patient's health)."""
    user = professional.user
    return {"professional": user.get_full_name() or user.username, "profession": professional.profession}


def professional_read(actor: Actor, record: Record, decision: Decision) -> None:
    """Called by `access_log.read` after a professional's read was allowed, in the same
    transaction as its audit entry. Once per actor and record (an actor lives for one request
    or task), so a page that asks several questions makes one notice at most:

    - first access under a granted or declared care authorisation: the authorisation's
      `patient_notified_at` is set and the patient told, once per authorisation; under one
      shared with the professional's care team, once per member;
    - SAMU access: always, once per regulator, record and day (a regulation call reads many
      pages; a notice per page would bury the patient in messages);
    - every other access, when the patient asked for it: once per professional, record and day.

    Break-glass reads are told once, when the access is opened (`break_glass_open`)."""
    if record.pk in actor.notified_records:
        return
    actor.notified_records.add(record.pk)
    professional = actor.professional
    now = timezone.now()
    day = timezone.localdate(now).isoformat()
    mode = decision.mode
    if mode == AuditMode.BREAK_GLASS:
        return
    if mode == AuditMode.SAMU:
        notify_patient_side(record, "samu_access", key=f"samu_access:{record.pk}:{professional.pk}:{day}",
               when=now, **professional_context(professional))
        return
    if mode == AuditMode.NORMAL:
        # One conditional UPDATE: of two first reads at the same moment, one sets the date.
        first = CareAuthorisation.objects.active(now).filter(
            record=record, professional=professional, patient_notified_at__isnull=True,
            kind__in=CareAuthorisation.CARE_KINDS,
        ).update(patient_notified_at=now)
        if first:
            notify_patient_side(record, "first_access", when=now, **professional_context(professional))
            return
        if decision.rule == standing_rule(Standing.CARE_TEAM).decision.rule:
            # A colleague's authorisation shared with the care team: each member's first access
            # is told once, kept by the notice's own key (one lookup per request).
            notify_patient_side(record, "first_access", key=f"first_access:{record.pk}:{professional.pk}",
                   when=now, **professional_context(professional))
            return
    if record.notify_every_access and mode in (AuditMode.NORMAL, AuditMode.TREATING_DOCTOR):
        notify_patient_side(record, "access", key=f"access:{record.pk}:{professional.pk}:{day}",
               when=now, **professional_context(professional))


def notify_new_documents(record: Record, documents: list[Document], professional, *,
                         now: datetime | None = None) -> None:
    """Tell the patient that a professional added documents: one notice for the ones visible to
    the patient now, never their titles (medical). A result withheld until its announcement is
    told when it becomes visible (`documents_release_due`). Each document is told once
    (`Document.patient_notified_at`, set with a conditional UPDATE)."""
    now = now or timezone.now()
    pks = [d.pk for d in documents if not d.is_withheld_from_patient(now) and d.patient_notified_at is None]
    if not pks:
        return
    told = Document.objects.filter(pk__in=pks, patient_notified_at__isnull=True).update(patient_notified_at=now)
    if told:
        notify_patient_side(record, "document_added", key=f"document_added:{min(pks)}", when=now,
               count=told, **professional_context(professional))
