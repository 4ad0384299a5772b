"""The person's account: new credentials handed over at a counter (DOMAIN.md §1, §6)."""

from __future__ import annotations

import logging
import secrets
import smtplib
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from .. import access_log
from ..accounts import languages_offered
from ..accounts.stages import code_destination, masked_code_destination
from ..models import AuditMode, CounterAgent, CounterReset, Organisation, PostalLetter, Record, User
from ..models.counter import IdentityDocument
from ..models.people import normalise_phone
from ..models.record import normalise_nir
from ..notifications import notify
from ..policy import Action, Actor, Decision, counter_reset_requirements, decide
from ..sms import SmsError, send_sms
from . import AccessRefused, InvalidInput, InvalidInputCode, permit
from .access import _fold
from .records import Credentials, _temporary_password

security_log = logging.getLogger("dmp.security")


@dataclass(frozen=True)
class ResetOutcome:
    """Where a counter reset stands after a step: `credentials` once it took effect (the sheet
    to print, shown once), else what it still waits for (`reset.missing`)."""

    reset: CounterReset
    credentials: Credentials | None = None
    codes_not_sent: tuple[str, ...] = ()  # "presence" / "contact": the gateway refused, send again

    @property
    def record(self) -> Record:
        return self.reset.record


MAX_WRONG_CODES = 5  # then the request is cancelled and the agent starts again
MAX_CODES_SENT = 6  # first sending included, both codes counted


def account_credentials_reset(
    *,
    actor: Actor,
    identifier: str,
    family_name: str,
    birth_date: date,
    identity_document: str,
    identity_document_number: str,
    channel_lost: bool = False,
    new_phone: str = "",
    new_email: str = "",
    request=None,
) -> ResetOutcome:
    """A counter agent asks for new credentials for a person, after checking an identity
    document: the identifier on the person's sheet (NIR or provisional identifier), and the
    family name and date of birth read from the document must all match one open record. The
    document's kind and the last 3 characters of its number are kept, never the whole number.

    Nothing changes on the account until every proof the policy asks for is in
    (`counter_reset_requirements`): the onboarding organisation's agent resets at once; any
    other counter needs the code sent to the person's current phone or e-mail read back, or a
    second agent's approval when there is none (or the person lost it); a new phone or e-mail
    takes effect only once the code sent to it is read back, and an account without any channel
    gets one only with a second agent's approval. A request waiting for its proofs is logged in
    the record's history, and expires after COUNTER_RESET_MINUTES.

    When the reset takes effect (`_reset_apply`): a new temporary password (changed at first
    login), every open session ends, the login lock-out is lifted, the new contact details are
    written, the reset and the contact change are in the audit log, every channel the account
    had is told (and the new one), and a letter is queued for a person who had none."""
    if identity_document not in IdentityDocument.values:
        raise InvalidInput(_("Choose the kind of identity document you checked."), code=InvalidInputCode.MISSING)
    document_end = _document_number_end(identity_document_number)
    new_phone = _valid_phone(new_phone) if new_phone else ""
    new_email = _valid_email(new_email) if new_email else ""
    record = _matching_record(identifier, family_name, birth_date)
    if record is None:
        # One message whatever did not match: the agent must not learn that an identifier exists.
        security_log.warning(
            "counter credentials reset refused, no matching open record: agent_user=%s organisation=%s",
            actor.user.pk if actor.user else None,
            actor.counter_agent.organisation_id if actor.counter_agent else None,
        )
        raise InvalidInput(_(
            "These details do not match any open record. Check the identifier, the family name and the "
            "date of birth against the person's papers."
        ), code=InvalidInputCode.MISMATCH)
    decision = permit(actor, Action.RESET_CREDENTIALS, record, object_id=identity_document)
    holder = record.holder
    new_phone = "" if new_phone == holder.phone else new_phone
    new_email = "" if new_email.casefold() == holder.email.casefold() else new_email
    has_channel = bool(holder.phone or holder.email)
    needs = counter_reset_requirements(decision, has_channel=has_channel, channel_lost=channel_lost,
                                       new_contact=bool(new_phone or new_email))
    now = timezone.now()
    presence_code = _one_time_code() if needs.presence_code else ""
    # When a second agent must approve, nothing reaches the new phone or e-mail before the
    # approval: a lone agent typing their own number receives nothing at all.
    contact_code = _one_time_code() if needs.contact_code and not needs.approval else ""
    with transaction.atomic():
        reset = CounterReset(
            record=record, requested_by=actor.user, organisation=actor.counter_agent.organisation,
            created_at=now, expires_at=now + timedelta(minutes=settings.COUNTER_RESET_MINUTES),
            identity_document=identity_document, identity_document_end=document_end, rule=decision.rule,
            presence_channel=code_destination(holder)[0] if needs.presence_code else "",
            new_phone=new_phone, new_email=new_email, approval_required=needs.approval,
            codes_sent=int(bool(presence_code)) + int(bool(contact_code)),
        )
        reset.save()
        # The hashes name the row: a code is good for this request and this purpose only.
        reset.presence_code_hash = _code_hash(reset, "presence", presence_code) if presence_code else ""
        reset.contact_code_hash = _code_hash(reset, "contact", contact_code) if contact_code else ""
        reset.save(update_fields=["presence_code_hash", "contact_code_hash"])
        if needs.immediate:
            credentials = _reset_apply(actor, reset, decision, request=request)
            return ResetOutcome(reset, credentials)
        access_log.write(actor, Action.REQUEST_CREDENTIALS_RESET, decision, record, record=record,
                         object_id=_document_note(reset))
    security_log.info(
        "counter credentials reset requested: agent_user=%s record=%s reset=%s waits_for=%s",
        actor.user.pk, record.pk, reset.pk, ",".join(reset.missing),
    )
    # Sent once the request is stored: the person is standing at the counter, waiting for it.
    not_sent = []
    if presence_code and not _send_code(reset, "presence", presence_code):
        not_sent.append("presence")
    if contact_code and not _send_code(reset, "contact", contact_code):
        not_sent.append("contact")
    return ResetOutcome(reset, None, tuple(not_sent))


def counter_reset_confirm_code(*, actor: Actor, reset: CounterReset, purpose: str, code: str,
                               request=None) -> ResetOutcome:
    """The agent types the code the person reads from their phone or mailbox: `purpose`
    "presence" (sent to the account's current channel) or "contact" (sent to the new one). A
    wrong code changes nothing; after MAX_WRONG_CODES wrong ones the request is cancelled. Once
    nothing else is missing the reset takes effect."""
    if purpose not in ("presence", "contact"):
        raise InvalidInput(_("Nothing to confirm."), code=InvalidInputCode.STATE)
    with transaction.atomic():
        # Locked: two clicks on "confirm" must not apply the reset twice.
        reset = _pending_own_reset(actor, reset.pk)
        stored = reset.presence_code_hash if purpose == "presence" else reset.contact_code_hash
        already = reset.presence_confirmed_at if purpose == "presence" else reset.contact_confirmed_at
        if already is not None:
            raise InvalidInput(_("This code was already confirmed."), code=InvalidInputCode.STATE)
        if not stored:
            raise InvalidInput(_("No code was sent for this yet: a second agent of your organisation approves "
                                 "first."), code=InvalidInputCode.STATE)
        typed = "".join((code or "").split())
        if not constant_time_compare(stored, _code_hash(reset, purpose, typed)):
            reset.wrong_codes += 1
            fields = ["wrong_codes"]
            if reset.wrong_codes >= MAX_WRONG_CODES:
                reset.state = CounterReset.State.CANCELLED
                fields.append("state")
            reset.save(update_fields=fields)
            security_log.warning("counter reset: wrong code agent_user=%s reset=%s purpose=%s wrong=%s",
                                 actor.user.pk, reset.pk, purpose, reset.wrong_codes)
            wrong = True
        else:
            wrong = False
            field = "presence_confirmed_at" if purpose == "presence" else "contact_confirmed_at"
            setattr(reset, field, timezone.now())
            reset.save(update_fields=[field])
    if wrong:
        # Raised outside the block, so that the count of wrong codes is kept.
        if reset.state == CounterReset.State.CANCELLED:
            raise InvalidInput(_("Too many wrong codes: this request is cancelled. Start again if the person is "
                                 "still here."), code=InvalidInputCode.LIMIT)
        raise InvalidInput(_("This code is not the right one. Ask the person to read it again."),
                           code=InvalidInputCode.MISMATCH)
    if reset.missing:
        return ResetOutcome(reset)
    return counter_reset_finish(actor=actor, reset=reset, request=request)


def counter_reset_send_again(*, actor: Actor, reset: CounterReset) -> ResetOutcome:
    """New codes for what is still to confirm (an SMS that did not come): the former ones stop
    working. Limited per request."""
    codes = {}
    with transaction.atomic():
        reset = _pending_own_reset(actor, reset.pk)
        if "presence" in reset.missing:
            codes["presence"] = _one_time_code()
            reset.presence_code_hash = _code_hash(reset, "presence", codes["presence"])
        if "contact" in reset.missing and "approval" not in reset.missing:
            codes["contact"] = _one_time_code()
            reset.contact_code_hash = _code_hash(reset, "contact", codes["contact"])
        if not codes:
            raise InvalidInput(_("No code is waiting to be confirmed."), code=InvalidInputCode.STATE)
        if reset.codes_sent + len(codes) > MAX_CODES_SENT:
            raise InvalidInput(_("Too many codes were sent for this request. Cancel it and start again."),
                               code=InvalidInputCode.LIMIT)
        reset.codes_sent += len(codes)
        reset.save(update_fields=["presence_code_hash", "contact_code_hash", "codes_sent"])
    not_sent = tuple(purpose for purpose, code in codes.items() if not _send_code(reset, purpose, code))
    return ResetOutcome(reset, None, not_sent)


def counter_reset_approve(*, actor: Actor, reset: CounterReset) -> ResetOutcome:
    """A second agent of the same organisation, having seen the person and their identity
    document, approves the request; the code for a new phone or e-mail is sent only now. It
    does not apply the reset: the agent who asked prints the sheet, once every other proof is in
    too. Refused (and logged) for the agent who asked, an agent of another organisation, or a
    request that is no longer pending."""
    contact_code = ""
    with transaction.atomic():
        reset = CounterReset.objects.select_for_update(of=("self",)).select_related("record").get(pk=reset.pk)
        decision = decide(actor, Action.APPROVE_CREDENTIALS_RESET, reset)
        if not decision.allowed:
            # This block commits (nothing is raised inside it): the refusal stays.
            access_log.refusal(actor, Action.APPROVE_CREDENTIALS_RESET, decision, reset, record=reset.record)
        else:
            reset.approved_by, reset.approved_at = actor.user, timezone.now()
            fields = ["approved_by", "approved_at"]
            if reset.contact_change and not reset.contact_code_hash:
                contact_code = _one_time_code()
                reset.contact_code_hash = _code_hash(reset, "contact", contact_code)
                reset.codes_sent += 1
                fields += ["contact_code_hash", "codes_sent"]
            reset.save(update_fields=fields)
            access_log.write(actor, Action.APPROVE_CREDENTIALS_RESET, decision, reset, record=reset.record)
    if not decision.allowed:
        # Raised once the refusal's audit entry is committed: an agent trying to approve their
        # own request stays in the person's history.
        security_log.warning("counter reset approval refused: agent_user=%s reset=%s rule=%s",
                             actor.user.pk if actor.user else None, reset.pk, decision.rule)
        raise AccessRefused(decision)
    security_log.info("counter reset approved: agent_user=%s reset=%s", actor.user.pk, reset.pk)
    not_sent = ("contact",) if contact_code and not _send_code(reset, "contact", contact_code) else ()
    return ResetOutcome(reset, None, not_sent)


def counter_reset_finish(*, actor: Actor, reset: CounterReset, request=None) -> ResetOutcome:
    """Apply a request whose proofs are all in: the agent who asked prints the sheet."""
    with transaction.atomic():
        reset = _pending_own_reset(actor, reset.pk)
        if reset.missing:
            raise InvalidInput(_("This request still waits for a code or an approval."), code=InvalidInputCode.STATE)
        decision = decide(actor, Action.RESET_CREDENTIALS, reset.record)  # the record may have closed since
        if decision.allowed:
            credentials = _reset_apply(actor, reset, decision, request=request)
    if not decision.allowed:
        # Written and raised once the block above is left, so the refusal is not rolled back.
        access_log.refusal(actor, Action.RESET_CREDENTIALS, decision, reset.record, record=reset.record,
                           object_id=_document_note(reset))
        raise AccessRefused(decision)
    return ResetOutcome(reset, credentials)


def counter_reset_cancel(*, actor: Actor, reset: CounterReset) -> None:
    """The agent who asked cancels a pending request (the person left, a mistake)."""
    with transaction.atomic():
        reset = _pending_own_reset(actor, reset.pk, allow_expired=True)
        reset.state = CounterReset.State.CANCELLED
        reset.save(update_fields=["state"])


def postal_letter_printed(*, actor: Actor, letter: PostalLetter) -> None:
    """An agent of the organisation that prints the letter marks it printed (and posted)."""
    agent = actor.counter_agent
    if agent is None or letter.organisation_id != agent.organisation_id:
        raise AccessRefused(Decision(False, "not_this_organisation", AuditMode.COUNTER))
    PostalLetter.objects.filter(pk=letter.pk, printed_at__isnull=True).update(
        printed_at=timezone.now(), printed_by=actor.user)


def _pending_own_reset(actor: Actor, pk: int, *, allow_expired: bool = False) -> CounterReset:
    """The request, locked, if this agent asked for it and it still waits; a clear message
    otherwise. (The selector already gave 404 to anyone else.)"""
    reset = CounterReset.objects.select_for_update(of=("self",)).select_related("record__holder").filter(
        pk=pk, requested_by_id=actor.user.pk if actor.user else None).first()
    if reset is None:
        raise AccessRefused(Decision(False, "not_the_requester", AuditMode.COUNTER))
    if reset.state != CounterReset.State.PENDING:
        raise InvalidInput(_("This request is closed. Start again if the person is still here."),
                           code=InvalidInputCode.STATE)
    if not allow_expired and reset.is_expired():
        raise InvalidInput(_("This request expired (after %(minutes)d minutes). Start again with the person.")
                           % {"minutes": settings.COUNTER_RESET_MINUTES}, code=InvalidInputCode.STATE)
    return reset


def _reset_apply(actor: Actor, reset: CounterReset, decision: Decision, *, request=None) -> Credentials:
    """The reset itself, in the caller's transaction: password, contact details, audit entries,
    notices and letter stand or fall together; the notices leave only once it committed."""
    record = reset.record
    organisation = actor.counter_agent.organisation
    now = timezone.now()
    password = _temporary_password()
    holder = User.objects.select_for_update().get(pk=record.holder_id)
    former_email, former_phone = holder.email, holder.phone
    holder.set_password(password)
    holder.must_change_password = True
    changed = _new_contact(holder, record, reset.new_phone, reset.new_email)
    holder.save(update_fields=["password", "must_change_password", "phone", "email"])
    record.holder = holder
    reset.state, reset.finished_at = CounterReset.State.DONE, now
    reset.save(update_fields=["state", "finished_at"])
    # A reset done makes every other request on the record stale (it would undo this one).
    CounterReset.objects.filter(record=record, state=CounterReset.State.PENDING).exclude(pk=reset.pk).update(
        state=CounterReset.State.CANCELLED)
    access_log.write(actor, Action.RESET_CREDENTIALS, decision, record, record=record, object_id=_document_note(reset))
    if changed:
        access_log.write(actor, Action.CHANGE_LOGIN_CONTACT, decision, record, record=record,
                         object_id="+".join(changed))
    destination = masked_code_destination(holder)
    # Every channel the account had (the former ones) and the new one.
    notify(holder, "credentials_reset", organisation=organisation.name, when=now,
           also_email=former_email, also_phone=former_phone)
    if changed:
        notify(holder, "contact_changed", when=now, email_changed="email" in changed,
               phone_changed="phone" in changed, by_representative=False, new_destination=destination,
               organisation=organisation.name, also_email=former_email, also_phone=former_phone)
    if not (former_email or former_phone):
        # Nobody to tell electronically: a letter, printed by the organisation that onboarded the
        # record (the operator's mail room when none did), never by the counter that acted alone.
        PostalLetter.objects.create(
            record=record, organisation=_onboarding_organisation(record),
            event=PostalLetter.Event.CREDENTIALS_RESET, language=record.preferred_language or holder.preferred_language,
            context={"organisation": organisation.name, "when": now.isoformat(), "destination": destination},
        )
    # Ids only: never the password, the name, the identifier or the document's number.
    security_log.info(
        "counter credentials reset: agent_user=%s record=%s organisation=%s contact_changed=%s approved_by=%s",
        actor.user.pk, record.pk, organisation.pk, ",".join(changed) or "-", reset.approved_by_id or "-",
    )
    if request is not None:
        _clear_failed_logins(request, holder)
    return Credentials(username=holder.username, temporary_password=password)


def _onboarding_organisation(record: Record) -> Organisation | None:
    creator = CounterAgent.objects.filter(user_id=record.created_by_id).select_related("organisation").first() \
        if record.created_by_id else None
    if creator is not None:
        return creator.organisation
    right = record.deposit_rights.select_related("agent__organisation").order_by("pk").first()
    return right.agent.organisation if right is not None else None


def _document_note(reset: CounterReset) -> str:
    """What the audit entry keeps of the identity document: its kind and the number's end."""
    return f"{reset.identity_document}:{reset.identity_document_end}"


def _document_number_end(number: str) -> str:
    cleaned = "".join(ch for ch in (number or "") if ch.isalnum()).upper()
    if not 4 <= len(cleaned) <= 30:
        raise InvalidInput(_("Type the number written on the identity document (letters and digits)."),
                           code=InvalidInputCode.INVALID)
    return cleaned[-3:]


def _one_time_code() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(settings.LOGIN_CODE_LENGTH))


def _code_hash(reset: CounterReset, purpose: str, code: str) -> str:
    """A keyed hash: a database dump does not give the code, and a code of one request or
    purpose is worthless for another."""
    return salted_hmac("dmp.counter_reset", f"{reset.pk}:{purpose}:{code}", algorithm="sha256").hexdigest()


def _send_code(reset: CounterReset, purpose: str, code: str) -> bool:
    """Send one code now, not through the outbox: the person is waiting at the counter, and a
    code is a secret the outbox must not keep. The text says where and why, so that a person
    who is NOT at a counter knows someone is trying. False when the gateway refused it."""
    holder = reset.record.holder
    if purpose == "presence":
        kind, destination = code_destination(holder)
    else:
        kind, destination = ("phone", reset.new_phone) if reset.new_phone else ("email", reset.new_email)
    context = {"code": code, "organisation": reset.organisation.name, "purpose": purpose,
               "minutes": settings.COUNTER_RESET_MINUTES}
    folder = "notifications/counter_code"
    try:
        with translation.override(holder.preferred_language or settings.LANGUAGE_CODE):
            if kind == "phone":
                send_sms(to=destination, text=" ".join(render_to_string(f"{folder}/sms.txt", context).split()))
            else:
                subject = " ".join(render_to_string(f"{folder}/subject.txt", context).split())
                send_mail(subject, render_to_string(f"{folder}/body.txt", context), None, [destination])
    except (SmsError, OSError, smtplib.SMTPException) as exc:
        security_log.warning("counter reset: code not sent reset=%s purpose=%s (%s)", reset.pk, purpose,
                             type(exc).__name__)
        return False
    return True


def _new_contact(holder: User, record: Record, phone: str, email: str) -> list[str]:
    """Write the new contact details on the account and the record; which ones changed."""
    changed = []
    if phone and phone != holder.phone:
        holder.phone = record.phone = phone
        changed.append("phone")
    if email and email != holder.email:
        holder.email = record.email = email
        changed.append("email")
    if changed:
        record.save(update_fields=["phone", "email"])
    return changed


def _valid_phone(value: str) -> str:
    try:
        return normalise_phone(value)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), code=InvalidInputCode.INVALID) from exc


def _valid_email(value: str) -> str:
    value = value.strip()
    try:
        validate_email(value)
    except ValidationError as exc:
        raise InvalidInput(_("This e-mail address is not valid."), code=InvalidInputCode.INVALID) from exc
    return value


def _matching_record(identifier: str, family_name: str, birth_date: date) -> Record | None:
    """The open record with this identifier, if the name and date of birth match it too."""
    identifier = normalise_nir(identifier)
    if not identifier:
        return None
    record = (
        Record.objects.filter(Q(nir=identifier) | Q(provisional_id=identifier), state=Record.State.OPEN,
                              holder__isnull=False)
        .select_related("holder")
        .first()
    )
    if record is None or record.birth_date != birth_date or _name(family_name) != _name(record.family_name):
        return None
    return record


def _name(text: str) -> str:
    """A family name as compared: case, accents, hyphens and apostrophes do not matter, so
    "N'DIAYE-FALL" on a residence permit matches "N'Diaye Fall" typed at creation."""
    return " ".join(_fold(text).replace("-", " ").replace("'", " ").replace("\u2019", " ").split())


def _clear_failed_logins(request, user: User) -> None:
    """Lift the login lock-out on this account: allauth's "login_failed" count under the key its
    adapter uses for the username, and the wrong one-time codes our login stages count under
    the same action, as allauth itself does after a password reset, and the progressive delays
    of every address (dmp/accounts/lockout.py). (allauth's `clear` also empties the
    per-address count of the request's address: the counter's, here.)"""
    from allauth.account.adapter import get_adapter
    from allauth.core import ratelimit

    from ..accounts import lockout
    from ..accounts.stages import code_failures_key

    lockout.forget_account(user.username)
    for key in (get_adapter(request)._get_login_attempts_cache_key(request, username=user.username),
                code_failures_key(user)):
        ratelimit.clear(request, action="login_failed", key=key)


def account_language_set(*, user: User, language: str) -> str:
    """The person chooses the language they read: stored on their account, so the next login,
    the SMS and the notifications follow it, and on the record they hold (the letters, the
    exports and the sheets printed at a counter read it there). A representative's or a
    professional's choice is theirs only: it never changes a record they do not hold."""
    if language not in languages_offered(user):
        raise InvalidInput(_("Choose a language from the list."), code=InvalidInputCode.INVALID)
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(preferred_language=language)
        Record.objects.filter(holder_id=user.pk).update(preferred_language=language)
    user.preferred_language = language
    return language
