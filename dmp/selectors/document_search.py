"""Narrowing a listing of documents (`documents_matching`) by what SQL cannot say simply: the
codings practice software sent (kept as JSON), the FHIR token semantics over them, and names
compared without accents. The listing is already what the actor may read: these only keep
fewer of its documents, never more (the FHIR `DocumentReference` search, IHE MHD ITI-67)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

from ..models import Document, Professional, Record
from ..policy import Actor
from .documents import DocumentFilters, documents_matching
from .records import get_record_for

# What a test of one document may look at: never the title, the text or the file.
_CODED_FIELDS = ("pk", "space", "doc_type", "mime_type", "codings", "status", "is_latest_version",
                 "hidden_from_professionals", "hidden_from_representatives", "withheld_from_patient_until")


def documents_where(documents: QuerySet[Document], keep: Callable[[Document], bool]) -> QuerySet[Document]:
    """The documents of the listing for which `keep` holds, as a queryset (for the order, the
    count and the pages): one query reads the coded fields of the listing, once."""
    kept = [document.pk for document in documents.order_by().select_related(None).only(*_CODED_FIELDS)
            if keep(document)]
    return documents.filter(pk__in=kept)


def folded(text: str) -> str:
    """Case and accents left out, as FHIR's string search compares: "Hélène" → "helene"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@dataclass(frozen=True)
class NameTest:
    """One string parameter on the professional author's name (`field`: first_name or
    last_name): starts with (the default), `exact` (the whole name as written) or `contains`,
    both but `exact` without case or accents."""

    field: str
    value: str
    modifier: str = ""

    def matches(self, name: str) -> bool:
        if self.modifier == "exact":
            return name == self.value
        if self.modifier == "contains":
            return folded(self.value) in folded(name)
        return folded(name).startswith(folded(self.value))


def documents_by_author_name(documents: QuerySet[Document], tests: list[NameTest]) -> QuerySet[Document]:
    """The documents whose professional author's names pass every test: the listing's authors
    are read once (a record has a few), matched here, and the listing kept to theirs."""
    ids = set(documents.order_by().exclude(author_professional=None).values_list("author_professional_id", flat=True))
    authors = Professional.objects.filter(pk__in=ids).values_list("pk", "user__first_name", "user__last_name")
    named = {pk for pk, first, last in authors
             if all(test.matches(first if test.field == "first_name" else last) for test in tests)}
    return documents.filter(author_professional_id__in=named)


def newest_documents_of(actor: Actor, records: Iterable[Record], *, limit: int) -> list[Document]:
    """The newest documents (by date of the act) the actor may read of each record, `limit`
    in all: the documents a `Patient` search's `_revinclude` adds. Each record is read like a
    documents search reads it (`get_record_for`: the policy, then one entry in its history)."""
    found: list[Document] = []
    for record in records:
        if len(found) >= limit:
            break
        opened = get_record_for(actor, record.pk)
        found += documents_matching(actor, opened, DocumentFilters()).select_related("record")[:limit - len(found)]
    return found
