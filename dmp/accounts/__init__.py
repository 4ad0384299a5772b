"""Accounts and logging in (DOMAIN.md §6), on django-allauth.

Who needs what:
- patient-side accounts (record holders, legal representatives): password + a one-time code
  by SMS or e-mail at every login;
- professionals, counter agents and administrators: password + a second factor (TOTP, with
  recovery codes), enrolled before anything else is reachable.

Nobody signs up on their own: records and accounts are created with the person's consent by
a counter agent or a professional (DOMAIN.md §2).
"""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.db.models import Exists


def languages_offered(user) -> tuple[str, ...]:
    """The languages a person may read the site in: all seven for patients, representatives
    and counter agents (DOMAIN.md §7); French and English for professionals and operators,
    whose portal and admin are written for them in those two (DOMAIN.md §7: the clinician
    portal stays French with English)."""
    everything = tuple(code for code, _name in settings.LANGUAGES)
    if user is None or not user.is_authenticated:
        return everything
    if user.is_staff or user.is_superuser or hasattr(user, "professional"):
        return settings.CLINICIAN_LANGUAGES
    return everything


def second_factor_required(user) -> bool:
    """Professionals, counter agents and the operator's staff log in with a second factor."""
    if user is None or not user.is_authenticated:
        return False
    return bool(
        user.is_staff
        or user.is_superuser
        or hasattr(user, "professional")
        or hasattr(user, "counter_agent")
    )


def second_factor_enrolled(user) -> bool:
    """Whether the account has an authenticator app (TOTP) enrolled."""
    if user is None or not user.is_authenticated:
        return False
    return _authenticator_apps(user.pk).exists()


def second_factor_enrolled_exists(user_id) -> Exists:
    """`second_factor_enrolled()` as an expression (`user_id` an `OuterRef` to an account), to
    load it in the query that loads the account instead of one more query."""
    return Exists(_authenticator_apps(user_id))


def _authenticator_apps(user_id):
    return Authenticator.objects.filter(user_id=user_id, type=Authenticator.Type.TOTP)
