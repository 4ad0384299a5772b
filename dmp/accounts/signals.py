"""Account events: security log lines (ids only), wrong codes counted per account, the
temporary-password flag cleared when the person sets their own."""

from __future__ import annotations

import logging

from allauth.account.internal.flows.login import record_authentication
from allauth.account.signals import login_code_rejected, password_changed, password_reset, password_set
from allauth.core import ratelimit
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from ..policy import client_ip
from . import second_factor_enrolled, second_factor_required
from .middleware import activate_preferred_language, remember_second_factor, renew_idle_timeout
from .stages import code_failures_key

security_log = logging.getLogger("dmp.security")


@receiver(login_code_rejected)
def count_wrong_code(sender, request, user, **kwargs):
    ratelimit.consume(request, action="login_failed", key=code_failures_key(user))
    security_log.warning("wrong one-time code user=%s", user.pk)


@receiver(password_changed)
@receiver(password_set)
@receiver(password_reset)
def own_password_chosen(sender, request, user, **kwargs):
    if user.must_change_password:
        user.must_change_password = False
        user.save(update_fields=["must_change_password"])
    security_log.info("password changed user=%s", user.pk)


@receiver(user_logged_in)
def log_login(sender, request, user, **kwargs):
    security_log.info("login user=%s", user.pk)
    if request is None:
        return
    # The new session carries its idle timeout and, for those who must have one, whether the
    # second factor is set up, from the login on: the first page after it has nothing to
    # write to the session (AccountGateMiddleware).
    renew_idle_timeout(request.session, user)
    if second_factor_required(user):
        if second_factor_enrolled(user):
            remember_second_factor(request.session, user)
        else:
            # The password was typed a moment ago: that is the recent authentication allauth
            # asks for before a second factor is set up, so a first login goes straight to
            # enrolment.
            record_authentication(request, user, method="password", reauthenticated=True)


@receiver(user_logged_out)
def log_logout(sender, request, user, **kwargs):
    if user is not None:
        security_log.info("logout user=%s", user.pk)


@receiver(user_login_failed)
def log_failed_login(sender, credentials, request=None, **kwargs):
    # The typed identifier may be a NIR: it is not written in the log.
    security_log.warning("failed password ip=%s", client_ip(request) if request is not None else "-")


@receiver(user_logged_in)
def speak_their_language(sender, request, user, **kwargs):
    """From the login's own response on (its "signed in" message, the redirect), the account's
    language: PreferredLanguageMiddleware takes over for the following requests."""
    if request is not None:
        activate_preferred_language(request, user)
