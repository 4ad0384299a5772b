"""Authentication backends: Django's and allauth's, refusing superuser accounts where
superusers are not allowed (production). `user_can_authenticate` is asked at login and again by
`get_user` on every request of an open session, so a session opened before an account became
superuser ends too."""

from __future__ import annotations

import logging

from allauth.account.auth_backends import AuthenticationBackend as AllauthBackend
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend

security_log = logging.getLogger("dmp.security")


def superuser_refused(user) -> bool:
    if getattr(user, "is_superuser", False) and not settings.SUPERUSERS_ALLOWED:
        security_log.warning("superuser login refused: user=%s", user.pk)
        return True
    return False


class _LoadsRoles:
    """The account of an open session, read on every request, with its professional and counter
    agent profiles in the same query: every page asks which portal the account belongs to
    (`dmp.policy.Actor`), and would otherwise read each profile on its own."""

    def get_user(self, user_id):
        UserModel = get_user_model()  # noqa: N806 (Django's own name for it)
        user = UserModel._default_manager.select_related("professional", "counter_agent").filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None


class ModelBackend(_LoadsRoles, DjangoModelBackend):
    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and not superuser_refused(user)


class AuthenticationBackend(_LoadsRoles, AllauthBackend):
    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and not superuser_refused(user)

    def _check_password(self, user, password) -> bool:
        # allauth keeps ("stashes") an account whose password was right but which may not log
        # in, to show an inactive account its page; a refused superuser must get nothing but
        # the failed-login answer, so it is not stashed.
        ok = super()._check_password(user, password)
        if not ok and getattr(user, "is_superuser", False) and not settings.SUPERUSERS_ALLOWED:
            self.unstash_authenticated_user()
        return ok
