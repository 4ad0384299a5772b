"""Who may use the API at all: professionals with a second factor. Checked on every request,
whatever authenticated it — token requests do not go through the portals' enrolment gate."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission

from ..accounts import second_factor_enrolled
from ..policy import Actor, portal_allowed


class ProfessionalWithSecondFactor(BasePermission):
    message = _("The API is for health professionals with a second factor.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(portal_allowed(Actor(user), "pro") and second_factor_enrolled(user))
