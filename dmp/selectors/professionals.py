"""The professionals and facilities a professional may see through the API: those the records
they may read point to, never a directory (the FHIR `Practitioner` and `Organization` reads).

The rule: a professional sees
- themselves and their own facility;
- the professional author of a document they may read now (`documents_visible_to` of a record
  whose read the policy allows): every DocumentReference's `author` points to them;
- the author of the latest synthesis of a record whose synthesis they may read (the
  `recorder` of the Conditions, allergies and medications).
Anyone else is missing (404, like an id that does not exist). Asking is not a read of a
record: the policy is asked (`decide`), nothing is written to a patient's history. Giving
their documents (`documents_by_seen_by`, a search's `_revinclude`) is a read, and written."""

from __future__ import annotations

from django.db.models import Max

from .. import access_log
from ..models import Document, Organisation, Professional, Record, Synthesis
from ..policy import Action, Actor, decide
from .records import documents_visible_to

# A prolific author's records are looked at from the most recently added document back, this
# many at most: the answer stays bounded whatever their practice.
RECORDS_LOOKED_AT = 200


def _records_with_documents_by(professional: Professional) -> list[Record]:
    """The records holding the professional's current documents, the most recently added to
    first, RECORDS_LOOKED_AT at most."""
    ids = list(Document.objects.filter(author_professional=professional, is_latest_version=True,
                                       status=Document.Status.CURRENT)
               .values("record_id").annotate(latest=Max("added_at")).order_by("-latest")
               .values_list("record_id", flat=True)[:RECORDS_LOOKED_AT])
    records = Record.objects.in_bulk(ids)
    return [records[pk] for pk in ids]


def _authored_readable_document(actor: Actor, professional: Professional) -> bool:
    return any(decide(actor, Action.VIEW_RECORD, record).allowed
               and documents_visible_to(actor, record).filter(author_professional=professional).exists()
               for record in _records_with_documents_by(professional))


def documents_by_seen_by(actor: Actor, professional: Professional, *, limit: int) -> list[Document]:
    """The professional's documents the actor may read now, from the records most recently
    added to, `limit` in all: what a `Practitioner` search's `_revinclude` adds. A record
    whose documents are given is read in its history like a documents search reads it; the
    others are asked about only (`decide`), nothing written, as for a read of the author."""
    found: list[Document] = []
    for record in _records_with_documents_by(professional):
        if len(found) >= limit:
            break
        decision = decide(actor, Action.VIEW_RECORD, record)
        if not decision.allowed:
            continue
        documents = list(documents_visible_to(actor, record).filter(author_professional=professional)
                         .select_related("record")[:limit - len(found)])
        if documents:
            access_log.read(actor, Action.VIEW_RECORD, decision, record, record=record)
            found += documents
    return found


def _wrote_readable_synthesis(actor: Actor, professional: Professional) -> bool:
    record_ids = (Synthesis.objects.filter(author=professional).values_list("record_id", flat=True)
                  .distinct()[:RECORDS_LOOKED_AT])
    for record in Record.objects.filter(pk__in=list(record_ids)):
        latest = record.syntheses.order_by("-version").first()
        if latest is not None and latest.author_id == professional.pk and \
                decide(actor, Action.VIEW_SYNTHESIS, latest).allowed:
            return True
    return False


def professional_seen_by(actor: Actor, pk: int) -> Professional | None:
    """Professional `pk` if the actor may see them (the module's rule), else None."""
    if actor.professional is None:
        return None
    professional = Professional.objects.select_related("user").filter(pk=pk).first()
    if professional is None:
        return None
    if professional.pk == actor.professional.pk:
        return professional
    if _authored_readable_document(actor, professional) or _wrote_readable_synthesis(actor, professional):
        return professional
    return None


def organisation_seen_by(actor: Actor, pk: int) -> Organisation | None:
    """Facility `pk` if it is the actor's own (nothing else the API returns points to one)."""
    if actor.professional is None or actor.professional.facility_id != pk:
        return None
    return Organisation.objects.filter(pk=pk).first()
