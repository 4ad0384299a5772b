"""The documents of a record, for both portals' documents screens and the FHIR
`DocumentReference` search: one document of a record, and the record's documents filtered and
searched by ONE function, `documents_matching()` — always through `documents_visible_to`, so
a filter or a search can never show what a read would refuse (withheld results, documents
hidden from representatives)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, OuterRef, QuerySet
from django.http import Http404
from django.utils import timezone

from .. import access_log
from ..models import (
    Document,
    DocumentSearchTerm,
    DocumentSelection,
    DocumentType,
    Profession,
    Professional,
    Record,
    Space,
)
from ..policy import Action, Actor, decide
from ..search_index import keyed_query
from .records import _load_and_authorise, documents_visible_to


def get_record_document_for(actor: Actor, record_pk: int, pk: int, *, action: str = Action.VIEW_DOCUMENT) -> Document:
    """Document `pk` of record `record_pk`, if the actor may do `action` on it (one audit
    entry); a document of another record is missing, like one that does not exist (404)."""
    documents = Document.objects.filter(record_id=record_pk).select_related("record", "author_professional__user")
    return _load_and_authorise(actor, documents, pk, action)


def record_document_for_action(actor: Actor, record_pk: int, pk: int) -> Document:
    """Document `pk` of record `record_pk`, loaded for a service that acts on it: 404 (and
    logged) unless the actor may read it; when they may, nothing is logged here, since the
    service asks the policy about the action itself and logs that — one entry per action."""
    document = Document.objects.filter(record_id=record_pk, pk=pk).select_related("record").first()
    decision = decide(actor, Action.VIEW_DOCUMENT, document)
    if not decision.allowed:
        access_log.read(actor, Action.VIEW_DOCUMENT, decision, document,
                     record=document.record if document else None, object_id=f"document:{pk}")
        raise Http404
    return document


def document_selected_by(actor: Actor, document: Document) -> bool:
    """Whether the document is on this account's "my selection" shortlist (the caller has
    authorised the document read)."""
    return DocumentSelection.objects.filter(user=actor.user, document=document).exists()


class Status:
    CURRENT = "current"
    ARCHIVED = "archived"
    ALL = "all"
    CHOICES = (CURRENT, ARCHIVED, ALL)


@dataclass(frozen=True)
class DocumentFilters:
    """What the list is asked for, by a portal's screen or a FHIR search. `author` is
    "pro:<professional pk>" or "src:<author kind>:<source>"; `profession` is "p:<profession>"
    or "s:<specialty>". The sets are "any of them" (FHIR's comma and repeated parameters);
    None filters nothing, an empty set matches nothing. `excluded_periods`: (first day, last
    day) pairs the act date is not in (FHIR's `ne`)."""

    space: str = ""
    status: str = Status.CURRENT
    selected_only: bool = False
    author: str = ""
    profession: str = ""
    date_from: date | None = None
    date_to: date | None = None
    text: str = ""
    doc_type: str = ""  # one document type (the professionals' filter); unknown: none
    author_professionals: frozenset[int] | None = None
    excluded_periods: tuple[tuple[date, date], ...] = ()
    # When the document was added to the record (FHIR's DocumentReference.date), in local days.
    added_from: date | None = None
    added_to: date | None = None
    added_excluded: tuple[tuple[date, date], ...] = ()


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass
class DocumentListing:
    documents: QuerySet[Document]  # annotated with `selected` (on this account's shortlist)
    space_counts: dict[str, int]  # per space, under every filter but the space
    total: int
    authors: list[Choice]
    professions: list[Choice]
    types: list[Choice] = field(default_factory=list)  # the types among the visible documents


def documents_listing(actor: Actor, record: Record, filters: DocumentFilters) -> DocumentListing:
    """The record's documents the actor may read, filtered and searched (`documents_matching`),
    with the counts per space and the authors to filter by: the portals' screen. The caller
    has authorised the record read. A fixed number of queries, whatever the number of documents."""
    listed = documents_matching(actor, record, replace(filters, space=""))
    counts = dict(listed.order_by().values_list("space").annotate(n=Count("pk")))
    space_counts = {space: counts.get(space, 0) for space in Space.values}
    if filters.space in Space.values:
        listed = listed.filter(space=filters.space)
    authors, professions, types = _author_choices(_visible(actor, record, filters))
    return DocumentListing(listed, space_counts, sum(space_counts.values()), authors, professions, types)


def _visible(actor: Actor, record: Record, filters: DocumentFilters) -> QuerySet[Document]:
    visible = documents_visible_to(actor, record, include_archived=filters.status != Status.CURRENT)
    if filters.status == Status.ARCHIVED:
        visible = visible.filter(status=Document.Status.ARCHIVED)
    return visible


def documents_matching(actor: Actor, record: Record, filters: DocumentFilters) -> QuerySet[Document]:
    """THE listing of a record's documents for an actor, under `filters`: what both portals'
    screens list and what the FHIR `DocumentReference` search answers. Annotated with
    `selected` (on this account's shortlist). The caller has authorised the record read."""
    listed = _visible(actor, record, filters).annotate(
        selected=Exists(DocumentSelection.objects.filter(user=actor.user, document=OuterRef("pk")))
    )
    if filters.selected_only:
        listed = listed.filter(selected=True)
    listed = _by_author(listed, filters.author)
    listed = _by_profession(listed, filters.profession)
    if filters.date_from:
        listed = listed.filter(act_date__gte=filters.date_from)
    if filters.date_to:
        listed = listed.filter(act_date__lte=filters.date_to)
    for first, last in filters.excluded_periods:
        listed = listed.exclude(act_date__gte=first, act_date__lte=last)
    listed = _by_added_at(listed, filters)
    if filters.doc_type:
        listed = listed.filter(doc_type=filters.doc_type)
    if filters.author_professionals is not None:
        listed = listed.filter(author_professional_id__in=filters.author_professionals)
    if filters.text.strip():
        listed = _matching(listed, record, filters.text)
    if filters.space in Space.values:
        listed = listed.filter(space=filters.space)
    return listed


def _start_of_day(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _by_added_at(documents: QuerySet[Document], filters: DocumentFilters) -> QuerySet[Document]:
    """Added on or after `added_from`, on or before `added_to`, not in `added_excluded`: days
    in the server's time zone, as bounds on the timestamp (the record's index still leads)."""
    if filters.added_from:
        documents = documents.filter(added_at__gte=_start_of_day(filters.added_from))
    if filters.added_to:
        documents = documents.filter(added_at__lt=_start_of_day(filters.added_to + timedelta(days=1)))
    for first, last in filters.added_excluded:
        documents = documents.exclude(added_at__gte=_start_of_day(first),
                                      added_at__lt=_start_of_day(last + timedelta(days=1)))
    return documents


def _by_author(documents: QuerySet[Document], author: str) -> QuerySet[Document]:
    kind, _sep, rest = author.partition(":")
    if kind == "pro" and rest.isdigit():
        return documents.filter(author_professional_id=int(rest))
    if kind == "src":
        author_kind, _sep, source = rest.partition(":")
        return documents.filter(author_kind=author_kind, system_source=source, author_professional__isnull=True)
    return documents


def _by_profession(documents: QuerySet[Document], profession: str) -> QuerySet[Document]:
    kind, _sep, value = profession.partition(":")
    if kind == "p" and value:
        return documents.filter(author_professional__profession=value)
    if kind == "s" and value:
        return documents.filter(author_professional__specialty=value)
    return documents


def _matching(documents: QuerySet[Document], record: Record, text: str) -> QuerySet[Document]:
    """Full-text search over titles and text through the blind index (`dmp/search_index.py`):
    accents and case ignored, French plurals and word endings, words being typed; every
    searchable word of the query must match. A query of nothing but stop words ("de la")
    matches nothing. The same SQL on PostgreSQL and SQLite."""
    alternatives = keyed_query(record.pk, text)
    if not alternatives:
        return documents.none()
    for hashes in alternatives:
        documents = documents.filter(
            Exists(DocumentSearchTerm.objects.filter(document=OuterRef("pk"), term__in=sorted(hashes)))
        )
    return documents


def _author_choices(documents: QuerySet[Document]) -> tuple[list[Choice], list[Choice], list[Choice]]:
    """Who wrote the documents, their professions and specialties, and the documents' types:
    two queries, the record's documents alone, then their authors by id. Joined in one, the
    planner walked the whole accounts table beside a large record (the scale harness's plans)."""
    rows = list(documents.order_by().values_list(
        "author_kind", "system_source", "author_professional_id", "doc_type").distinct())
    ids = {pro_id for _kind, _source, pro_id, _type in rows if pro_id is not None}
    people = {pro.pk: pro for pro in Professional.objects.filter(pk__in=ids).select_related("user")} if ids else {}
    authors: dict[str, str] = {}
    professions: dict[str, str] = {}
    types: dict[str, str] = {}
    for kind, source, pro_id, doc_type in rows:
        types[doc_type] = str(DocumentType(doc_type).label)
        if pro_id is None:
            authors[f"src:{kind}:{source}"] = source or str(Document.AuthorKind(kind).label)
            continue
        pro = people[pro_id]
        authors[f"pro:{pro_id}"] = f"{pro.user.first_name} {pro.user.last_name}".strip()
        professions[f"p:{pro.profession}"] = str(Profession(pro.profession).label)
        if pro.specialty:
            professions[f"s:{pro.specialty}"] = pro.specialty
    return _choices(authors), _choices(professions), _choices(types)


def _choices(labels: dict[str, str]) -> list[Choice]:
    return [Choice(value, label) for value, label in sorted(labels.items(), key=lambda item: item[1].casefold())]
