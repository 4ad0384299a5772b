"""Reads, filtered by the asking actor through the policy and written to the audit log."""

from .credentials import api_tokens_of, get_api_token_for
from .records import (
    access_history_for,
    documents_visible_to,
    get_document_for,
    get_record_for,
    records_acted_for,
    records_followed_by,
    synthesis_for,
)

__all__ = [
    "access_history_for", "api_tokens_of", "documents_visible_to", "get_api_token_for", "get_document_for",
    "get_record_for", "records_acted_for", "records_followed_by",
    "synthesis_for",
]
