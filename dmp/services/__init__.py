"""Writes. Each service is `<entity>_<action>`, keyword-only, asks the policy first and
raises `AccessRefused` (which views turn into 404) or `InvalidInput` (a clear message)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from ..policy import Decision


class ServiceError(Exception):
    """A write that did not happen, with a message fit to show the user."""


class InvalidInput(ServiceError):
    pass


class AccessRefused(ServiceError):
    def __init__(self, decision: Decision) -> None:
        super().__init__(_("This action is not allowed."))
        self.decision = decision


def require(decision: Decision) -> Decision:
    if not decision.allowed:
        raise AccessRefused(decision)
    return decision


from .access import (  # noqa: E402
    break_glass_open,
    care_authorisation_declare,
    care_authorisation_grant,
    professional_block,
    treating_doctor_designate,
)
from .accounts import account_credentials_reset  # noqa: E402
from .credentials import (  # noqa: E402
    api_token_authenticate,
    api_token_create,
    api_token_creation_allowed,
    api_token_revoke,
)
from .documents import document_add, document_deposit, document_import  # noqa: E402
from .records import record_close, record_create  # noqa: E402
from .synthesis import synthesis_write  # noqa: E402

__all__ = [
    "AccessRefused", "InvalidInput", "ServiceError", "account_credentials_reset", "api_token_authenticate",
    "api_token_create", "api_token_creation_allowed", "api_token_revoke", "break_glass_open",
    "care_authorisation_declare",
    "care_authorisation_grant", "document_add", "document_deposit", "document_import",
    "professional_block", "record_close",
    "record_create", "require", "synthesis_write", "treating_doctor_designate",
]
