"""Reads, filtered by the asking actor through the policy and written to the audit log."""

from .access import (
    PROFESSIONALS_SHOWN,
    ProfessionalSearch,
    professional_by_rpps,
    professional_search_words_valid,
    professional_with_standing,
    professionals_matching,
    record_access_overview,
)
from .credentials import api_tokens_of, get_api_token_for
from .documents import (
    DocumentFilters,
    documents_listing,
    documents_matching,
    get_record_document_for,
    record_document_for_action,
)
from .export import EXPORT_RETENTION, get_record_export_for, record_exports_for
from .history import HistoryFilters, access_history
from .personal import PersonalInformation, personal_information_for
from .records import (
    access_history_for,
    documents_visible_to,
    get_document_for,
    get_record_for,
    offers_what_representatives_see,
    records_acted_for,
    records_followed_by,
    synthesis_for,
)
from .synthesis import SynthesisPage, synthesis_for_editing, synthesis_page_for

__all__ = [
    "access_history_for", "api_tokens_of", "documents_visible_to", "get_api_token_for", "get_document_for",
    "get_record_for", "offers_what_representatives_see", "records_acted_for", "records_followed_by",
    "EXPORT_RETENTION", "get_record_export_for", "record_exports_for",
    "synthesis_for",
    "DocumentFilters", "documents_listing", "documents_matching", "get_record_document_for",
    "record_document_for_action",
    "HistoryFilters", "access_history", "professional_by_rpps", "professional_with_standing",
    "PROFESSIONALS_SHOWN", "ProfessionalSearch", "professional_search_words_valid", "professionals_matching",
    "record_access_overview",
    "PersonalInformation", "personal_information_for",
    "SynthesisPage", "synthesis_for_editing", "synthesis_page_for",
]
