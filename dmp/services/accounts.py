"""The person's account: new credentials handed over at a counter (DOMAIN.md §1, §6)."""

from __future__ import annotations

import logging
from datetime import date

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import Record, User
from ..models.people import normalise_phone
from ..models.record import normalise_nir
from ..notifications import notify
from ..policy import Action, Actor, decide, log_decision
from . import AccessRefused, InvalidInput
from .access import _fold
from .records import Credentials, _temporary_password

security_log = logging.getLogger("dmp.security")


class IdentityDocument(models.TextChoices):
    """The kind of identity document the agent checked (kept in the audit entry)."""

    IDENTITY_CARD = "identity_card", gettext_lazy("Identity card")
    PASSPORT = "passport", gettext_lazy("Passport")
    RESIDENCE_PERMIT = "residence_permit", gettext_lazy("Residence permit")
    ASYLUM_CERTIFICATE = "asylum_certificate", gettext_lazy("Asylum-seeker certificate")
    OTHER = "other", gettext_lazy("Other identity document")


def account_credentials_reset(
    *,
    actor: Actor,
    identifier: str,
    family_name: str,
    birth_date: date,
    identity_document: str,
    new_phone: str = "",
    new_email: str = "",
    request=None,
) -> tuple[Record, Credentials]:
    """A counter agent hands a person new credentials after checking an identity document:
    the identifier on the person's sheet (NIR or provisional identifier), and the family name
    and date of birth read from the document must all match one open record.

    The new password is temporary (changed at first login); every open session of the account
    ends, since Django ties a session to the password; the reset is in the record's access
    history and the person is notified. `request`, when given, is used to lift the login
    lock-out on the account so the person can log in at once.

    `new_phone` / `new_email`, when given, replace the account's contact details: the login
    code goes there from now on (a lost or changed phone is the usual reason to come). The
    notification then also reaches the former ones, so that a person whose identity was
    borrowed hears of it.

    The policy is asked once the record is found (`decide()` answers about a record); the
    counter portal's gate keeps everyone but counter agents away from the form before that."""
    if identity_document not in IdentityDocument.values:
        raise InvalidInput(_("Choose the kind of identity document you checked."))
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
        ))
    decision = decide(actor, Action.RESET_CREDENTIALS, record)
    # The audit entry keeps which document was checked, and which contact details were replaced.
    audit_note = identity_document
    if not decision.allowed:
        log_decision(actor, Action.RESET_CREDENTIALS, decision, record, record=record, object_id=audit_note)
        raise AccessRefused(decision)
    organisation = actor.counter_agent.organisation
    now = timezone.now()
    password = _temporary_password()
    # The password, the audit entry and the notification stand or fall together; the
    # notification itself leaves only once this has committed.
    with transaction.atomic():
        holder = User.objects.select_for_update().get(pk=record.holder_id)
        former_email, former_phone = holder.email, holder.phone
        holder.set_password(password)
        holder.must_change_password = True
        changed = _new_contact(holder, record, new_phone, new_email)
        holder.save(update_fields=["password", "must_change_password", "phone", "email"])
        record.holder = holder
        audit_note += "".join(f"+{kind}" for kind in changed)
        log_decision(actor, Action.RESET_CREDENTIALS, decision, record, record=record, object_id=audit_note)
        notify(holder, "credentials_reset", organisation=organisation.name, when=now,
               also_email=former_email if "email" in changed else "",
               also_phone=former_phone if "phone" in changed else "")
    # Ids only: never the password, the name or the identifier.
    security_log.info(
        "counter credentials reset: agent_user=%s record=%s organisation=%s contact_changed=%s",
        actor.user.pk, record.pk, organisation.pk, ",".join(changed) or "-",
    )
    if request is not None:
        _clear_failed_logins(request, holder)
    return record, Credentials(username=holder.username, temporary_password=password)


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
        raise InvalidInput(" ".join(exc.messages)) from exc


def _valid_email(value: str) -> str:
    value = value.strip()
    try:
        validate_email(value)
    except ValidationError as exc:
        raise InvalidInput(_("This e-mail address is not valid.")) from exc
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
