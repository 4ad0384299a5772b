"""The allauth adapters: closed signup, our login stages, codes by SMS through our gateway,
second-factor secrets encrypted at rest and not removable by those who must have one."""

from __future__ import annotations

from datetime import UTC, datetime

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.internal.cryptokit import generate_user_code
from allauth.mfa.adapter import DefaultMFAAdapter
from django.conf import settings
from django.contrib import messages
from django.contrib.sites.shortcuts import get_current_site
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..bidi import ltr_text
from ..policy import client_ip
from ..sms import SmsError, send_sms
from ..storage import tagged_decrypt, tagged_encrypt
from . import lockout, second_factor_required

# The stages of a login, in order (allauth runs each in turn before the session is opened):
# a temporary password is replaced first, the one-time code proves the person holds their
# phone or mailbox, the TOTP stage asks professionals for their second factor, and only then
# is the new password written.
LOGIN_STAGES = [
    "dmp.accounts.stages.TemporaryPasswordStage",
    "dmp.accounts.stages.OneTimeCodeStage",
    "allauth.account.stages.EmailVerificationStage",
    "allauth.mfa.stages.AuthenticateStage",
    "dmp.accounts.stages.ApplyNewPasswordStage",
]


class AccountAdapter(DefaultAccountAdapter):
    # The errors a patient, a representative or a counter agent can meet while logging in, in
    # our plain words and our seven languages (allauth's say "specified", lack Albanian).
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "username_password_mismatch": _("The identifier or the password is wrong. Check them and try again."),
        "incorrect_code": _("This code is wrong or too old. Check it and try again."),
        "enter_current_password": _("Type your current password."),
        "incorrect_password": _("This password is wrong."),
        "rate_limited": _("Too many tries. Wait a few minutes, then try again."),
    }

    def is_open_for_signup(self, request) -> bool:
        return False

    def get_login_stages(self) -> list[str]:
        return list(LOGIN_STAGES)

    def is_login_by_code_required(self, login) -> bool:
        """Patient-side accounts (holders, representatives) get a code at every login;
        accounts with a second factor use it instead."""
        return login.user is not None and not second_factor_required(login.user)

    def get_client_ip(self, request) -> str:
        ip = client_ip(request)
        if not ip:
            raise PermissionDenied("Unable to determine the client's address")
        return ip

    # --- Wrong passwords (dmp/accounts/lockout.py). allauth checks every password through
    # authenticate(): the login form, re-authentication, and (our form) the password change.

    def _get_login_attempts_cache_key(self, request, **credentials) -> str:
        """The account's key in allauth's limiter: the username, whichever other credentials
        allauth passes along (re-authentication adds the e-mail), so that a wrong password
        counts towards the same ceiling wherever it is typed."""
        return f"{get_current_site(request).domain}:{_typed_login(credentials).lower()}"

    def pre_authenticate(self, request, **credentials) -> None:
        login, ip = _typed_login(credentials), self.get_client_ip(request)
        try:
            previous = lockout.begin_attempt(login, ip)
        except lockout.TooSoon as too_soon:
            raise ValidationError(_retry_message(too_soon), code="login_delayed") from None
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            # The ceiling or the address limit refused it: the password was not checked, so
            # this address's delay does not grow for it.
            lockout.attempt_cancelled(login, ip, previous)
            raise

    def authenticate(self, request, **credentials):
        user = super().authenticate(request, **credentials)
        if user is not None:
            lockout.attempt_succeeded(_typed_login(credentials), self.get_client_ip(request))
        return user

    def get_password_change_redirect_url(self, request) -> str:
        return reverse("home")

    # One-time codes: digits only, easy to type on a phone and to read aloud.
    def generate_login_code(self) -> str:
        return generate_user_code(length=settings.LOGIN_CODE_LENGTH, numeric=True, dashed=False)

    def generate_phone_verification_code(self, *, user, phone: str) -> str:
        return self.generate_login_code()

    # allauth reaches the phone number through these hooks; ours is User.phone.
    def get_phone(self, user) -> tuple[str, bool] | None:
        return (user.phone, True) if user.phone else None

    def set_phone_verified(self, user, phone: str) -> None:
        """The number was typed at the counter from the person's own phone; receiving the
        code proves it again."""

    def send_verification_code_sms(self, user, phone: str, code: str, **kwargs) -> None:
        with translation.override(user.preferred_language or settings.LANGUAGE_CODE):
            text = gettext("DMP: your login code is %(code)s. It expires in %(minutes)s minutes. "
                           "Never give it to anyone.") % {
                "code": ltr_text(code), "minutes": settings.ACCOUNT_LOGIN_BY_CODE_TIMEOUT // 60}
        try:
            send_sms(to=phone, text=text)
        except SmsError:
            # Said on the page rather than a server error; the stage sees it and stops the login.
            self.request._dmp_code_not_sent = True
            messages.error(self.request, gettext("The code could not be sent by SMS. Try again in a few minutes."))

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """Mails to an account go out in its own language, whatever the browser's."""
        user = context.get("user")
        language = getattr(user, "preferred_language", "") or translation.get_language()
        with translation.override(language):
            super().send_mail(template_prefix, email, context)


def _typed_login(credentials: dict) -> str:
    """The account a password was typed for: the username (the login method here)."""
    return credentials.get("username") or credentials.get("email") or ""


def _retry_message(too_soon: lockout.TooSoon) -> str:
    """When the next attempt will be checked, in seconds and as a time of day."""
    at = timezone.localtime(datetime.fromtimestamp(too_soon.retry_at, tz=UTC))
    seconds = too_soon.seconds
    return ngettext(
        "Too many wrong passwords from this connection. Try again in %(seconds)s second (at %(time)s).",
        "Too many wrong passwords from this connection. Try again in %(seconds)s seconds (at %(time)s).",
        seconds,
    ) % {"seconds": seconds, "time": formats.time_format(at, "H:i:s")}


class MFAAdapter(DefaultMFAAdapter):
    error_messages = {
        **DefaultMFAAdapter.error_messages,
        "incorrect_code": _("This code is wrong or too old. Check it and try again."),
    }

    def encrypt(self, text: str) -> str:
        """TOTP secrets and recovery-code seeds are encrypted with the same keys as documents, and
        carry the id of the key (`manage.py reencrypt` moves them to a new key)."""
        return tagged_encrypt(text)

    def decrypt(self, encrypted_text: str) -> str:
        return tagged_decrypt(encrypted_text)

    def can_delete_authenticator(self, authenticator) -> bool:
        """A professional, agent or administrator cannot switch their second factor off."""
        return not second_factor_required(authenticator.user)
