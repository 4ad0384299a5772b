"""API tokens for practice software: created and revoked by the professional they act for
(DOMAIN.md §6). Every creation and revocation is an entry of the access log (in the
transaction of the change; a refusal at once) and one line on the `dmp.security` logger, with
ids only — never the token."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import access_log
from ..accounts import second_factor_enrolled, second_factor_enrolled_exists
from ..models import ApiToken, AuditMode, Professional
from ..models.credentials import API_TOKEN_LIFETIME, api_token_hash
from ..policy import Actor, Decision, portal_allowed
from . import AccessRefused, InvalidInput, InvalidInputCode

security_log = logging.getLogger("dmp.security")

TOKEN_SCHEME = "dmp"  # noqa: S105 - the public start of every token, not a secret
MAX_LIVE_TOKENS = 10
LABEL_MAX_LENGTH = ApiToken._meta.get_field("label").max_length
# A presented token longer than this is not one of ours: refused before hashing.
RAW_TOKEN_MAX_LENGTH = 200
# last_used_at is written at most this often, so a busy client does not write on every call.
LAST_USED_GRANULARITY = timedelta(minutes=1)
# The actions of their entries in the access log (no record: a token is the professional's).
API_TOKEN_CREATE = "api_token_create"  # noqa: S105 - an action name, not a secret
API_TOKEN_REVOKE = "api_token_revoke"  # noqa: S105 - an action name, not a secret


def api_token_creation_allowed(actor: Actor) -> Decision:
    """Who may hold API tokens: a professional whose account has a second factor, since a
    token acts for them without one at every call."""
    pro = portal_allowed(actor, "pro")
    if not pro:
        return Decision(False, "professionals_only", reason=gettext_lazy("Only health professionals can do this."))
    if not second_factor_enrolled(actor.user):
        return Decision(
            False, "second_factor_missing",
            reason=gettext_lazy("Enrol a second factor before creating API tokens."),
        )
    return Decision(True, "professional_with_second_factor", mode=pro.mode,
                    reason=gettext_lazy("Health professional with a second factor."))


def api_token_create(*, actor: Actor, label: str) -> tuple[ApiToken, str]:
    """Create a token for the acting professional. Returns the token row and the raw token,
    which is shown once and stored nowhere (only its hash is)."""
    decision = api_token_creation_allowed(actor)
    if not decision.allowed:
        access_log.refusal(actor, API_TOKEN_CREATE, decision, None, record=None)
        security_log.warning("api_token_create refused user=%s rule=%s", actor.user and actor.user.pk, decision.rule)
        raise AccessRefused(decision)
    label = " ".join((label or "").split())
    if not label:
        raise InvalidInput(_("Say which software or machine will use this token."), code=InvalidInputCode.MISSING)
    if len(label) > LABEL_MAX_LENGTH:
        raise InvalidInput(
            _("The label is too long (at most %(max)d characters).") % {"max": LABEL_MAX_LENGTH},
            code=InvalidInputCode.LIMIT,
        )
    professional = actor.professional
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    now = timezone.now()
    # The professional's row is locked so that two requests at once cannot both pass the cap.
    with transaction.atomic():
        Professional.objects.select_for_update().get(pk=professional.pk)
        if ApiToken.objects.live(now).filter(professional=professional).count() >= MAX_LIVE_TOKENS:
            raise InvalidInput(
                _("You already have %(max)d API tokens in use: revoke one you no longer need first.")
                % {"max": MAX_LIVE_TOKENS},
                code=InvalidInputCode.LIMIT,
            )
        token = ApiToken.objects.create(
            professional=professional, label=label, prefix=prefix, key_hash=api_token_hash(raw),
            created_at=now, expires_at=now + API_TOKEN_LIFETIME,
        )
        access_log.write(actor, API_TOKEN_CREATE, decision, token, record=None)
    security_log.info("api_token_created user=%s token=%s prefix=%s", actor.user.pk, token.pk, token.prefix)
    return token, raw


def api_token_revoke(*, actor: Actor, token: ApiToken) -> ApiToken:
    """Revoke a token: by the professional it belongs to, or by an administrator (a leaked
    token must be stoppable by the operator). Revoking a revoked token changes nothing."""
    owner = actor.professional is not None and actor.professional.pk == token.professional_id
    if not (owner or actor.is_administrator):
        decision = Decision(
            False, "not_token_owner", reason=gettext_lazy("Only the professional a token belongs to can revoke it.")
        )
        access_log.refusal(actor, API_TOKEN_REVOKE, decision, token, record=None)
        raise AccessRefused(decision)
    now = timezone.now()
    # One conditional update: two revocations at once write (and log) once.
    with transaction.atomic():
        revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
        if revoked:
            decision = Decision(True, "token_owner", AuditMode.NORMAL) if owner else Decision(
                True, "administrator", AuditMode.ADMIN)
            access_log.write(actor, API_TOKEN_REVOKE, decision, token, record=None)
    if revoked:
        token.revoked_at = now
        security_log.info("api_token_revoked user=%s token=%s prefix=%s owner=%s",
                          actor.user.pk, token.pk, token.prefix, token.professional_id)
    else:
        token.refresh_from_db(fields=["revoked_at"])
    return token


def api_token_authenticate(raw: str, *, at: datetime | None = None) -> ApiToken | None:
    """The live token a request presented, with its professional and account loaded, or None
    — whatever the reason (unknown, revoked, expired, inactive account, no second factor), so
    callers cannot tell a client which check failed. Records the use, once a minute at most."""
    at = at or timezone.now()
    if not raw.startswith(f"{TOKEN_SCHEME}_") or len(raw) > RAW_TOKEN_MAX_LENGTH:
        return None
    # The account's second factor is loaded with the token: one query per API request, not two.
    token = (
        ApiToken.objects.select_related("professional__user").filter(key_hash=api_token_hash(raw))
        .annotate(second_factor=second_factor_enrolled_exists(OuterRef("professional__user_id"))).first()
    )
    if token is None:
        return None
    user = token.professional.user
    reason = (
        "revoked" if token.revoked_at is not None
        else "expired" if not token.is_live(at)
        else "inactive_account" if not user.is_active
        else "second_factor_missing" if not token.second_factor
        else ""
    )
    if reason:
        security_log.info("api_token refused reason=%s user=%s token=%s", reason, user.pk, token.pk)
        return None
    if token.last_used_at is None or token.last_used_at <= at - LAST_USED_GRANULARITY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=at)
        token.last_used_at = at
    return token
