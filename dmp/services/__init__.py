"""Writes. Each service is `<entity>_<action>`, keyword-only, asks the policy first and
raises `AccessRefused` (which views turn into 404) or `InvalidInput` (a clear message for the
person, and an `InvalidInputCode` for the code that acts on the reason).

The order is always the same, so the access log says what happened: `permit()` asks the policy
(a refusal is written at once and raised); the input is checked in full; then ONE
`transaction.atomic()` holds the change and its entry (`access_log.write()`, naming what was
created or changed). Input turned down leaves no "allowed" line, and a change that fails takes
its entry with it."""

from __future__ import annotations

from enum import StrEnum

from django.utils.translation import gettext_lazy as _

from .. import access_log
from ..policy import Actor, Decision, decide


class ServiceError(Exception):
    """A write that did not happen, with a message fit to show the user."""


class InvalidInputCode(StrEnum):
    """Why an input was turned down, for the code that acts on the reason. The message is for
    people and is translated: no caller compares it, they compare this."""

    MISSING = "missing"  # a required answer, file or value is absent
    INVALID = "invalid"  # a value of the wrong form, or not one of the choices offered
    DUPLICATE = "duplicate"  # already there: the same file, NIR, RPPS number, username, request
    LIMIT = "limit"  # too many, too long, too large
    MISMATCH = "mismatch"  # identity details or a code that do not match
    STATE = "state"  # not possible in the current state: closed, expired, decided, not there
    NOT_ALLOWED = "not_allowed"  # a business rule (not the access policy) says no: scope, four eyes
    FILE_REFUSED = "file_refused"  # a file the safety check turned down (format, content, virus)
    UNAVAILABLE = "unavailable"  # a check that cannot run now: try again later


class InvalidInput(ServiceError):
    """Input turned down, nothing written. `code` says why (an `InvalidInputCode`), the message
    says it to the person."""

    def __init__(self, message, *, code: InvalidInputCode) -> None:
        super().__init__(message)
        self.code = InvalidInputCode(code)


class EditConflict(InvalidInput):
    """Saving over a change made since the form was opened (optimistic concurrency): nothing
    written. `code` is STATE; `latest` is what is saved now (a synthesis version, a section's
    values), to show beside what the person typed so they can merge; `version` is the base the
    merged form must carry to be saved."""

    def __init__(self, message, *, latest, version) -> None:
        super().__init__(message, code=InvalidInputCode.STATE)
        self.latest = latest
        self.version = version


class AccessRefused(ServiceError):
    def __init__(self, decision: Decision) -> None:
        super().__init__(_("This action is not allowed."))
        self.decision = decision


def require(decision: Decision) -> Decision:
    if not decision.allowed:
        raise AccessRefused(decision)
    return decision


def permit(actor: Actor, action: str, obj=None, *, doc_type: str | None = None, object_id: str = "",
           record=None) -> Decision:
    """Ask the policy before anything else: a refusal is written to the access log at once and
    raised as `AccessRefused`; an allowed answer is returned, to be written with
    `access_log.write()` inside the transaction of the change, once it happened. `record`: the
    record the entry names, when `obj` is not of one (a record being created)."""
    decision = decide(actor, action, obj, doc_type=doc_type)
    if not decision.allowed:
        access_log.refusal(actor, action, decision, obj,
                           record=record if record is not None else access_log.record_of(obj),
                           object_id=object_id)
        raise AccessRefused(decision)
    return decision


from .access import (  # noqa: E402
    break_glass_open,
    care_authorisation_declare,
    care_authorisation_grant,
    care_authorisation_revoke,
    deposit_right_withdraw,
    professional_block,
    professional_unblock,
    record_emergency_access_set,
    treating_doctor_designate,
    treating_doctor_end,
)
from .accounts import account_credentials_reset, account_language_set  # noqa: E402
from .credentials import (  # noqa: E402
    api_token_authenticate,
    api_token_create,
    api_token_creation_allowed,
    api_token_revoke,
)
from .documents import (  # noqa: E402
    ClientMetadata,
    InvalidFiles,
    NewDocument,
    Publication,
    document_add,
    document_add_batch,
    document_add_many,
    document_archive_set,
    document_deposit,
    document_derivatives_fill,
    document_import,
    document_release,
    document_representatives_visibility_set,
    document_search_index_build,
    document_selection_set,
    document_visibility_set,
    document_withdraw,
    documents_publish,
    record_default_hidden_types_set,
)
from .export import record_export_request, record_exports_purge  # noqa: E402
from .personal import (  # noqa: E402
    advance_directives_upload,
    advance_directives_write,
    blood_group_set,
    emergency_contact_add,
    emergency_contact_remove,
    organ_donation_state,
    personal_notes_set,
    personal_section_version,
    record_contact_update,
    self_declared_item_add,
    self_declared_item_remove,
    trusted_person_set,
    vaccination_add,
    vaccination_remove,
)
from .records import (  # noqa: E402
    record_close,
    record_create,
    record_nir_attach,
    record_notifications_set,
    record_representatives_notified_set,
)
from .synthesis import synthesis_write  # noqa: E402

__all__ = [
    "AccessRefused", "EditConflict", "InvalidInput", "InvalidInputCode", "ServiceError", "account_credentials_reset",
    "account_language_set",
    "api_token_authenticate",
    "api_token_create", "api_token_creation_allowed", "api_token_revoke", "break_glass_open",
    "care_authorisation_declare",
    "care_authorisation_grant", "document_add", "document_deposit", "document_import",
    "InvalidFiles", "NewDocument", "document_add_batch", "document_add_many", "document_release",
    "document_archive_set", "document_derivatives_fill", "document_search_index_build",
    "document_selection_set", "document_visibility_set", "document_representatives_visibility_set",
    "record_default_hidden_types_set", "ClientMetadata", "Publication", "document_withdraw", "documents_publish",
    "professional_block", "record_close",
    "care_authorisation_revoke", "deposit_right_withdraw", "professional_unblock", "record_emergency_access_set",
    "record_nir_attach", "record_notifications_set", "record_representatives_notified_set", "treating_doctor_end",
    "record_create", "require", "synthesis_write", "treating_doctor_designate",
    "record_export_request", "record_exports_purge",
    # personal data (dmp/services/personal.py)
    "advance_directives_upload", "advance_directives_write", "blood_group_set", "emergency_contact_add",
    "emergency_contact_remove", "organ_donation_state", "personal_notes_set", "personal_section_version",
    "record_contact_update",
    "self_declared_item_add", "self_declared_item_remove", "trusted_person_set", "vaccination_add",
    "vaccination_remove",
]

