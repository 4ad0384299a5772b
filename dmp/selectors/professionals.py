"""The professionals, their roles and the facilities an actor may see through the API: those the
records they may read point to, never a directory (the FHIR `Practitioner`, `PractitionerRole`
and `Organization` reads).

The rule: an actor sees
- themselves and their own facility (a professional);
- the professional author of a document they may read now (`documents_visible_to` of a record
  whose read the policy allows): every DocumentReference's `author` points to them;
- the author of the latest synthesis of a record whose synthesis they may read (the
  `recorder` of the Conditions, allergies and medications);
- the role of a professional they see, when that professional works in a facility (the
  `PractitionerRole` a DocumentReference's `author` also points to), and that facility.
A patient (the holder, a legal representative) so sees the authors of their own documents and
their facilities; a counter agent or an administrator, who reads no record, sees no one.
Anyone else is missing (404, like an id that does not exist). Asking is not a read of a
record: the policy is asked (`decide`), nothing is written to a patient's history. Giving
their documents (`documents_by_seen_by`, a search's `_revinclude`) is a read, and written."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Max, Q

from .. import access_log
from ..models import Document, Organisation, Professional, Record, Synthesis
from ..policy import Action, Actor, decide, records_open_to
from .records import documents_visible_to

# The records looked at, from the most recently added to back, this many at most: among those
# the actor may open only, so the answer stays bounded whatever the author's practice.
RECORDS_LOOKED_AT = 200


@dataclass(frozen=True)
class _Authors:
    """Whose authorship is asked about: one professional (`pk`), or every professional of one
    facility (`facility_id`). `q(path)` filters the rows whose author, at `path`, is one of them."""

    field: str
    value: int

    def q(self, path: str) -> Q:
        return Q(**{f"{path}__{self.field}": self.value})

    def include(self, professional: Professional) -> bool:
        return getattr(professional, self.field) == self.value


def _records_with_documents_by(actor: Actor, authors: _Authors) -> list[Record]:
    """The records the actor may open holding current documents by `authors`, the most
    recently added to first, RECORDS_LOOKED_AT at most."""
    ids = list(Document.objects.filter(authors.q("author_professional"), is_latest_version=True,
                                       status=Document.Status.CURRENT,
                                       record__in=records_open_to(actor).values("pk"))
               .values("record_id").annotate(latest=Max("added_at")).order_by("-latest")
               .values_list("record_id", flat=True)[:RECORDS_LOOKED_AT])
    records = Record.objects.in_bulk(ids)
    return [records[pk] for pk in ids]


def _authored_readable_document(actor: Actor, authors: _Authors) -> bool:
    return any(decide(actor, Action.VIEW_RECORD, record).allowed
               and documents_visible_to(actor, record).filter(authors.q("author_professional")).exists()
               for record in _records_with_documents_by(actor, authors))


def documents_by_seen_by(actor: Actor, professional: Professional, *, limit: int) -> list[Document]:
    """The professional's documents the actor may read now, from the records most recently
    added to, `limit` in all: what a `Practitioner` search's `_revinclude` adds. A record
    whose documents are given is read in its history like a documents search reads it; the
    others are asked about only (`decide`), nothing written, as for a read of the author."""
    found: list[Document] = []
    for record in _records_with_documents_by(actor, _Authors("pk", professional.pk)):
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


def _wrote_readable_synthesis(actor: Actor, authors: _Authors) -> bool:
    record_ids = (Synthesis.objects.filter(authors.q("author"), record__in=records_open_to(actor).values("pk"))
                  .values_list("record_id", flat=True).distinct()[:RECORDS_LOOKED_AT])
    for record in Record.objects.filter(pk__in=list(record_ids)):
        latest = record.syntheses.select_related("author").order_by("-version").first()
        if latest is not None and authors.include(latest.author) and \
                decide(actor, Action.VIEW_SYNTHESIS, latest).allowed:
            return True
    return False


def _referenced(actor: Actor, authors: _Authors) -> bool:
    """Whether a document or a synthesis the actor may read now names one of `authors`."""
    return _authored_readable_document(actor, authors) or _wrote_readable_synthesis(actor, authors)


def professional_seen_by(actor: Actor, pk: int) -> Professional | None:
    """Professional `pk` if the actor may see them (the module's rule), else None."""
    professional = Professional.objects.select_related("user", "facility").filter(pk=pk).first()
    if professional is None:
        return None
    if actor.professional is not None and professional.pk == actor.professional.pk:
        return professional
    return professional if _referenced(actor, _Authors("pk", professional.pk)) else None


def practitioner_role_seen_by(actor: Actor, pk: int) -> Professional | None:
    """Professional `pk`, for their role in their facility (`PractitionerRole`), if the actor
    may see them and they work in a facility, else None: a professional without a facility
    has no role to point at."""
    professional = professional_seen_by(actor, pk)
    return professional if professional is not None and professional.facility_id else None


def organisation_seen_by(actor: Actor, pk: int) -> Organisation | None:
    """Facility `pk` if it is the actor's own, or the facility of a professional the actor may
    see through what they read (the module's rule), else None."""
    organisation = Organisation.objects.filter(pk=pk).first()
    if organisation is None:
        return None
    if actor.professional is not None and actor.professional.facility_id == pk:
        return organisation
    return organisation if _referenced(actor, _Authors("facility_id", pk)) else None
