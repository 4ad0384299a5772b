"""What a logged-in account must do before anything else is reachable, and how long its
session may stay idle."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from . import languages_offered, second_factor_enrolled, second_factor_required

# Reachable whatever the account still has to do: logging out and choosing the language.
_ALWAYS = ("account_logout", "set_language")
# While enrolling a second factor: allauth's pages for it (the setup asks for the password again).
_ENROLMENT = (*_ALWAYS, "account_change_password", "account_reauthenticate", "mfa_reauthenticate",
              "mfa_index", "mfa_activate_totp", "mfa_view_recovery_codes", "mfa_generate_recovery_codes",
              "mfa_download_recovery_codes")


class AccountGateMiddleware:
    """A temporary password must be replaced, and professionals, counter agents and
    administrators must enrol their second factor, before any other page or API answers.
    (Logging in normally replaces the temporary password during the login itself; this gate
    holds for every other way a session could carry one.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            renew_idle_timeout(request.session, user)
            response = self._gate(request, user)
            if response is not None:
                return response
        return self.get_response(request)

    def _gate(self, request, user):
        if user.must_change_password:
            target, allowed = "account_change_password", (*_ALWAYS, "account_change_password")
            message = _("Choose your own password first.")
        elif second_factor_required(user) and not _enrolled(request, user):
            target, allowed = "mfa_activate_totp", _ENROLMENT
            message = _("Set up your second factor (an authenticator app) first.")
        else:
            return None
        if request.path_info in {reverse(name) for name in allowed}:
            return None
        if request.path_info.startswith("/api/"):
            return JsonResponse({"detail": message}, status=403)
        return redirect(target)


def _enrolled(request, user) -> bool:
    """Whether the account has its second factor, remembered in the session once seen (those
    who must have one cannot remove it: see MFAAdapter.can_delete_authenticator)."""
    if request.session.get(_ENROLLED_KEY) == user.pk:
        return True
    if second_factor_enrolled(user):
        remember_second_factor(request.session, user)
        return True
    return False


def remember_second_factor(session, user) -> None:
    """The account has its second factor: the session need not ask again."""
    session[_ENROLLED_KEY] = user.pk


_ENROLLED_KEY = "dmp_second_factor_enrolled"


# A session's idle timeout is renewed at most once in this many seconds: renewing it is a write
# to the session table, which every page would otherwise make. A session thus ends between
# `idle_timeout() - RENEWAL_SECONDS` and `idle_timeout()` seconds after the last request: sooner,
# never later.
RENEWAL_SECONDS = 60
_RENEWED_KEY = "dmp_idle_renewed_at"


def renew_idle_timeout(session, user, *, now: float | None = None) -> None:
    """Push the session's end `idle_timeout(user)` seconds away, unless that was done less than
    RENEWAL_SECONDS ago with the same timeout. Changing the session is what makes Django save
    it (`SESSION_SAVE_EVERY_REQUEST` is off), and with it the new end."""
    timeout = idle_timeout(user)
    now = time.time() if now is None else now
    renewed = session.get(_RENEWED_KEY)
    if session.get("_session_expiry") == timeout and renewed is not None and 0 <= now - renewed < RENEWAL_SECONDS:
        return
    session.set_expiry(timeout)
    session[_RENEWED_KEY] = int(now)


def idle_timeout(user) -> int:
    """Seconds a session may stay idle: shorter for clinical and counter sessions, which
    are opened on shared workstations."""
    if second_factor_required(user):
        return settings.CLINICAL_SESSION_IDLE_SECONDS
    return settings.SESSION_COOKIE_AGE


class PreferredLanguageMiddleware:
    """A logged-in person reads the language stored on their account, not the one their
    browser asks for: the browser may be a counter's, a relative's or a library's, and its
    language cookie may be the previous user's. Read on every request from the account (already
    loaded, no extra query), so every way of logging in (code, password, second factor, API
    session) and every later change of the preference take effect at once. Anonymous pages
    keep LocaleMiddleware's choice (cookie, then Accept-Language). Must come after
    AuthenticationMiddleware, and before anything that writes translated messages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        activate_preferred_language(request, getattr(request, "user", None))
        return self.get_response(request)


def activate_preferred_language(request, user) -> None:
    """Make the account's stored language the request's, when it is one the site offers this
    person (a professional whose browser asks for Arabic still reads French or English)."""
    if user is None or not user.is_authenticated:
        return
    offered = languages_offered(user)
    language = getattr(user, "preferred_language", "")
    if language not in offered:
        current = translation.get_language()
        language = current if current in offered else settings.LANGUAGE_CODE
    translation.activate(language)
    request.LANGUAGE_CODE = language
