"""Our login stages (see adapter.LOGIN_STAGES for their order).

A stage runs after the password was checked and before the session is opened: until every
stage is done, the person is not logged in and reaches nothing.
"""

from __future__ import annotations

import logging

from allauth.account.adapter import get_adapter
from allauth.account.internal.flows.login_by_code import LoginCodeVerificationProcess
from allauth.account.stages import LoginByCodeStage, LoginStage
from allauth.core import ratelimit
from allauth.core.internal.httpkit import headed_redirect_response
from django.contrib import messages
from django.utils.translation import gettext as _

security_log = logging.getLogger("dmp.security")


def code_destination(user) -> tuple[str, str] | None:
    """Where a patient's one-time code goes: ("phone", number) or ("email", address).
    SMS first: a phone is what people far from digital tools are most likely to have."""
    if user.phone:
        return ("phone", user.phone)
    if user.email:
        return ("email", user.email)
    return None


def masked_code_destination(user) -> str:
    """Where the code goes, recognisable by its owner and by nobody else: "••••5678" or
    "m•••@example.org"; empty when there is nowhere to send it."""
    destination = code_destination(user)
    if destination is None:
        return ""
    kind, value = destination
    if kind == "phone":
        return "••••" + value[-4:]
    local, _at, domain = value.partition("@")
    return f"{local[:1]}•••@{domain}"


def code_failures_key(user) -> str:
    """Rate-limit key counting one account's wrong codes, whichever code and address."""
    return f"dmp-login-code-user-{user.pk}"


def _cannot_receive_a_code(stage: LoginStage) -> bool:
    adapter = get_adapter(stage.request)
    return adapter.is_login_by_code_required(stage.login) and code_destination(stage.login.user) is None


def _refuse_without_destination(stage: LoginStage):
    security_log.info("login refused: no phone or e-mail for the one-time code user=%s", stage.login.user.pk)
    return headed_redirect_response("account_no_code_destination"), False


class TemporaryPasswordStage(LoginStage):
    """Someone who logged in with the temporary password handed at creation (or at a counter
    reset) chooses their own first. It is written only once the login completes, after the
    one-time code: the printed sheet alone cannot take over an account."""

    key = "dmp_temporary_password"
    urlname = "account_replace_temporary_password"

    def handle(self):
        if _cannot_receive_a_code(self):
            return _refuse_without_destination(self)
        if not self.login.user.must_change_password or self.state.get("password_hash"):
            return None, True
        return headed_redirect_response(self.urlname), True


class OneTimeCodeStage(LoginByCodeStage):
    """allauth's login-code stage, sending the code by SMS or e-mail (code_destination)."""

    def handle(self):
        adapter = get_adapter(self.request)
        if self.state or not adapter.is_login_by_code_required(self.login):
            return super().handle()
        if _cannot_receive_a_code(self):
            return _refuse_without_destination(self)
        user = self.login.user
        if not ratelimit.consume(self.request, action="login_failed", key=code_failures_key(user), dry_run=True):
            security_log.warning("login refused: too many wrong codes user=%s", user.pk)
            messages.error(self.request, _("Too many wrong codes. Wait a few minutes before trying again."))
            return headed_redirect_response("account_login"), False
        kind, destination = code_destination(user)
        LoginCodeVerificationProcess.initiate(
            request=self.request, user=user, stage=self,
            email=destination if kind == "email" else None, phone=destination if kind == "phone" else None,
        )
        if getattr(self.request, "_dmp_code_not_sent", False):
            return headed_redirect_response("account_login"), False
        self.state["login_by_code_required"] = True
        return headed_redirect_response("account_confirm_login_code"), True


class ApplyNewPasswordStage(LoginStage):
    """Write the password chosen in TemporaryPasswordStage, now that every check passed."""

    key = "dmp_apply_new_password"

    def handle(self):
        chosen = self.login.state.get("stages", {}).get(TemporaryPasswordStage.key, {}).get("data", {})
        password_hash = chosen.get("password_hash")
        if password_hash:
            user = self.login.user
            user.password = password_hash
            user.must_change_password = False
            user.save(update_fields=["password", "must_change_password"])
            security_log.info("temporary password replaced at login user=%s", user.pk)
        return None, True
