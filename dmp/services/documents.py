"""Adding documents: by a professional, the patient, a counter deposit or a system feed."""

from __future__ import annotations

import hashlib
from datetime import date, datetime

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from ..models import Document, DocumentType, Record
from ..policy import Action, Actor, authorise, record_access
from . import InvalidInput, require

# Accepted formats, recognised by their first bytes, never by the name the browser sent.
_SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


def sniff_mime_type(content: bytes) -> str | None:
    for signature, mime in _SIGNATURES:
        if content.startswith(signature):
            return mime
    return None


def _checked_content(content: bytes) -> tuple[str, str]:
    if not content:
        raise InvalidInput(_("The file is empty."))
    if len(content) > settings.DOCUMENT_MAX_BYTES:
        raise InvalidInput(
            _("The file is too large (at most %(mb)d MB).") % {"mb": settings.DOCUMENT_MAX_BYTES // 2**20}
        )
    mime = sniff_mime_type(content)
    if mime is None:
        raise InvalidInput(_("Only PDF files and images (PNG, JPEG) can be added to a record."))
    return mime, hashlib.sha256(content).hexdigest()


def _store(
    *, record: Record, content: bytes, doc_type: str, title: str, act_date: date, author_kind: str,
    actor: Actor, author_professional=None, system_source: str = "", hidden: bool = False,
    withheld_until: datetime | None = None, replaces: Document | None = None,
) -> Document:
    if doc_type not in DocumentType.values:
        raise InvalidInput(_("Unknown document type."))
    if not title.strip():
        raise InvalidInput(_("Give the document a title."))
    mime, digest = _checked_content(content)
    if record.documents.filter(content_hash=digest).exists():
        raise InvalidInput(_("This file is already in the record."))
    document = Document(
        record=record, doc_type=doc_type, title=title.strip()[:200], act_date=act_date, author_kind=author_kind,
        author_professional=author_professional, added_by=actor.user, system_source=system_source,
        mime_type=mime, size=len(content), content_hash=digest, hidden_from_professionals=hidden,
        withheld_from_patient_until=withheld_until, replaces=replaces,
        version=replaces.version + 1 if replaces else 1,
    )
    try:
        # Two uploads of the same file can race past the check above: the unique constraint
        # decides, and the loser gets the same clear message.
        with transaction.atomic():
            document.file.save(digest, ContentFile(content), save=False)
            document.save()
    except IntegrityError as exc:
        document.file.delete(save=False)
        raise InvalidInput(_("This file is already in the record.")) from exc
    return document


def document_add(
    *, actor: Actor, record: Record, content: bytes, doc_type: str, title: str, act_date: date,
    withheld_until: datetime | None = None, replaces: Document | None = None,
) -> Document:
    """Add a document as the patient (personal space) or as an authorised professional. A
    professional may replace their own document with a new version: nothing is overwritten."""
    require(authorise(actor, Action.ADD_DOCUMENT, record, doc_type=doc_type))
    if replaces is not None:
        if replaces.record_id != record.pk:
            raise InvalidInput(_("The document to replace is not in this record."))
        require(authorise(actor, Action.REPLACE_DOCUMENT, replaces))
    # Authored as a professional only when acting as one: a GP adding to their own record, or
    # to their child's as legal representative, adds as the patient.
    professional = actor.professional if record_access(actor, record).relation == "professional" else None
    if professional is None and withheld_until is not None:
        raise InvalidInput(_("Only the authoring professional can delay a result for the patient."))
    return _store(
        record=record, content=content, doc_type=doc_type, title=title, act_date=act_date, actor=actor,
        author_kind=Document.AuthorKind.PROFESSIONAL if professional else Document.AuthorKind.PATIENT,
        author_professional=professional,
        # Types the patient chose to hide by default arrive hidden (sensitive care).
        hidden=bool(professional) and doc_type in record.default_hidden_types,
        withheld_until=withheld_until, replaces=replaces,
    )


def document_deposit(
    *, actor: Actor, record: Record, content: bytes, doc_type: str, title: str, act_date: date
) -> Document:
    """A counter agent scans the person's papers into a record they onboarded. Write-only:
    the returned document is not readable by the agent."""
    require(authorise(actor, Action.DEPOSIT_DOCUMENT, record))
    return _store(
        record=record, content=content, doc_type=doc_type, title=title, act_date=act_date, actor=actor,
        author_kind=Document.AuthorKind.COUNTER, system_source=actor.counter_agent.organisation.name,
        hidden=doc_type in record.default_hidden_types,
    )


def document_import(
    *, record: Record, content: bytes, doc_type: str, title: str, act_date: date, source: str
) -> Document:
    """A system feed (the insurer's reimbursement data). Not an actor's action: no policy
    question, but the record must be open."""
    if not record.is_open:
        raise InvalidInput(_("This record is closed."))
    return _store(
        record=record, content=content, doc_type=doc_type, title=title, act_date=act_date, actor=Actor(None),
        author_kind=Document.AuthorKind.SYSTEM, system_source=source,
    )
