"""Load-and-authorise in one call: each selector asks the policy, writes the audit entry and
returns the object, or raises Http404 — never 403 for something the actor may not know exists."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from ..access_log import authorise_read
from ..models import AuditEntry, Document, LegalRepresentative, Record, Synthesis
from ..policy import (
    FOLLOWING_STANDINGS,
    Action,
    Actor,
    decide,
    document_scope,
    record_with_standing_facts,
    records_open_to,
    remember_standing,
)


def _load_and_authorise(actor: Actor, queryset: QuerySet, pk: int, action: str, *, on_load=None, load=None):
    """The one shape of every single-object read: a missing object and a refused one both
    end in Http404, and both attempts are in the audit log. `on_load(actor, obj)` runs on the
    object found, before the policy is asked; `load(pk)`, when given, loads it instead of the
    queryset (which then only names the model)."""
    obj = load(pk) if load is not None else queryset.filter(pk=pk).first()
    if obj is None:
        authorise_read(actor, action, None, object_id=f"{queryset.model._meta.model_name}:{pk}")
        raise Http404
    if on_load is not None:
        on_load(actor, obj)
    if not authorise_read(actor, action, obj):
        raise Http404
    return obj


def get_record_for(actor: Actor, pk: int, *, action: str = Action.VIEW_RECORD) -> Record:
    """Record `pk`, if the actor may do `action` on it (Http404 otherwise, logged). The actor's
    standing is loaded in the same query as the record (`record_with_standing_facts`)."""
    return _load_and_authorise(actor, Record.objects.all(), pk, action, on_load=remember_standing,
                               load=lambda pk: record_with_standing_facts(actor, pk))


def documents_visible_to(actor: Actor, record: Record, *, include_archived: bool = False) -> QuerySet[Document]:
    """The record's documents the actor may read — latest versions, current unless asked.
    The caller has already authorised the record read (one audit entry for the list)."""
    scope = document_scope(actor, record)
    # The stored flag, not `replaced_by__isnull=True`: that reverse join was planned as a read
    # of every document of every record (docs/performance.md, "Document lists").
    qs = record.documents.filter(scope.q()).filter(is_latest_version=True)
    if not include_archived:
        qs = qs.filter(status=Document.Status.CURRENT)
    else:  # a document withdrawn as entered in error is listed nowhere
        qs = qs.exclude(status=Document.Status.ENTERED_IN_ERROR)
    # The text (encrypted, up to 100,000 characters) is for re-indexing only: lists never load it.
    return qs.select_related("author_professional__user").defer("extracted_text").order_by("-act_date", "-pk")


def get_document_for(actor: Actor, pk: int, *, action: str = Action.VIEW_DOCUMENT) -> Document:
    return _load_and_authorise(actor, Document.objects.select_related("record"), pk, action)


def synthesis_for(actor: Actor, record: Record) -> Synthesis | None:
    """The latest synthesis version, if the actor may read it (else Http404)."""
    latest = record.syntheses.order_by("-version").prefetch_related("problems").first()
    if not authorise_read(actor, Action.VIEW_SYNTHESIS, latest or record):
        raise Http404
    return latest


# Newest first by time, then by sequence. Ordered by time, not by the log's sequence alone: only
# the indexes that start with the record keep entries in time order, so PostgreSQL cannot walk
# the whole log's sequence index backwards looking for this record's entries, which it may
# otherwise prefer when one record holds a large share of a small log (docs/performance.md "Access history").
HISTORY_ORDER = ("-at", "-seq")


def access_history_for(actor: Actor, record: Record) -> QuerySet[AuditEntry]:
    """Every access to the record by someone other than the patient, newest first."""
    if not authorise_read(actor, Action.VIEW_ACCESS_HISTORY, record):
        raise Http404
    return AuditEntry.objects.filter(record_id_ref=record.pk).exclude(mode="patient").order_by(*HISTORY_ORDER)


def offers_what_representatives_see(actor: Actor, obj: Record | Document) -> bool:
    """Whether the page offers the holder the choice of what their legal representatives see
    (a document) or hear of (the record's notifications), docs/minors.md. The policy says who
    may choose: the holder only, so a representative is never shown the control. It is offered
    on a minor's record, or on one with a representative in force."""
    action = Action.HIDE_FROM_REPRESENTATIVES if isinstance(obj, Document) else Action.NOTIFY_REPRESENTATIVES
    if not decide(actor, action, obj).allowed:
        return False
    record = obj.record if isinstance(obj, Document) else obj
    return record.is_minor() or LegalRepresentative.objects.active().filter(record=record).exists()


def records_acted_for(actor: Actor, *, besides: Record | None = None) -> QuerySet[Record]:
    """The open records an account acts on as patient: its own and those it represents now.
    A closed record is read by nobody (DOMAIN.md §2), so it is not offered either. `besides`:
    all but that one (the switch between records on a record's pages), which asks nothing of
    the database when the account acts for that record alone."""
    ids = set(actor.represented_record_ids)
    if actor.own_record_id is not None:
        ids.add(actor.own_record_id)
    if besides is not None:
        ids.discard(besides.pk)
    return Record.objects.filter(pk__in=ids, state=Record.State.OPEN).order_by("family_name", "given_names", "pk")


def records_followed_by(actor: Actor) -> QuerySet[Record]:
    """Open records where the professional is médecin traitant, holds an active care
    authorisation (their own, or one shared with their facility's care team) or an emergency
    opening the patient still accepts: the list a professional starts from, each record one they
    may open (the policy's `records_open_to`). Identity only, nothing medical."""
    if actor.professional is None:
        return Record.objects.none()
    return records_open_to(actor, standings=FOLLOWING_STANDINGS).order_by("family_name", "given_names", "pk")
