"""Adding documents: by a professional, the patient, a counter deposit or a system feed."""

from __future__ import annotations

import io
import logging
import shutil
import subprocess  # pdftoppm draws PDF thumbnails: fixed arguments, no shell
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import PurePath
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import access_log
from ..cda.hardened import parse as cda_parse
from ..cda.header import CdaHeader
from ..cda.reading import wrapped_file as cda_wrapped_file
from ..file_safety import CDA_MIME, CheckedFile, check_file, limited
from ..models import SPACE_OF_TYPE, Document, DocumentSearchTerm, DocumentSelection, DocumentType, Record, Space
from ..models.documents import documents_kept_once
from ..notifications import notify_new_documents
from ..policy import Action, Actor, AuditMode, Decision, document_scope, record_access
from ..search_index import document_terms, keyed_terms
from . import InvalidInput, InvalidInputCode, permit

if TYPE_CHECKING:
    from .results import LabReportInput

logger = logging.getLogger(__name__)

THUMBNAIL_WIDTH = 200
THUMBNAIL_TIMEOUT_SECONDS = 20
# Files added at once by the patient (one form).
MAX_FILES_AT_ONCE = 20


def make_thumbnail(content: bytes, mime: str) -> bytes | None:
    """A PNG about THUMBNAIL_WIDTH pixels wide of a PDF's first page (poppler's pdftoppm) or of
    an image (Pillow), or of the one a level-1 CDA wraps. None when it cannot be made — the
    tool is missing, the file is odd — never an error: the patient's thumbnail view then shows
    the document's type instead."""
    try:
        if mime == CDA_MIME:  # a level-1 CDA shows the file it wraps; a level-3 one, its type
            wrapped = cda_wrapped_file(content)
            if wrapped is None:
                return None
            content, mime = wrapped
        png = _pdf_thumbnail(content) if mime == "application/pdf" else _image_thumbnail(content)
    except Exception as exc:  # a thumbnail is a convenience: nothing about it may stop a document
        logger.info("no thumbnail (%s)", type(exc).__name__)
        return None
    return png if png and png.startswith(b"\x89PNG\r\n\x1a\n") else None


def _pdf_thumbnail(content: bytes) -> bytes | None:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        return None
    # The PDF goes through a pipe, never to a temporary file: the decrypted content stays in memory.
    # Under the file check's memory and CPU limits, with no environment (dmp/file_safety.py).
    result = subprocess.run(  # noqa: S603 - fixed arguments, the file on stdin
        limited([pdftoppm, "-png", "-singlefile", "-f", "1", "-l", "1",
                 "-scale-to-x", str(THUMBNAIL_WIDTH), "-scale-to-y", "-1", "-"]),
        input=content, capture_output=True, timeout=THUMBNAIL_TIMEOUT_SECONDS, check=False, env={},
    )
    return result.stdout if result.returncode == 0 else None


def _image_thumbnail(content: bytes) -> bytes:
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(content)) as opened:
        opened.draft("RGB", (THUMBNAIL_WIDTH * 2, THUMBNAIL_WIDTH * 4))  # JPEG: decode small, fast
        image = ImageOps.exif_transpose(opened)  # phone photos: the right way up
        image.thumbnail((THUMBNAIL_WIDTH, THUMBNAIL_WIDTH * 2))
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGB")
        out = io.BytesIO()
        image.save(out, "PNG", optimize=True)
    return out.getvalue()


def _store(
    *, record: Record, content: bytes, doc_type: str, title: str, act_date: date, author_kind: str,
    actor: Actor, author_professional=None, system_source: str = "", hidden: bool = False,
    withheld_until: datetime | None = None, replaces: Document | None = None, checked: CheckedFile | None = None,
    client: ClientMetadata | None = None,
) -> Document:
    """Store one document with its extracted text and thumbnail. Every way in (patient,
    professional, counter deposit, system feed) comes through here, so every document is
    checked the same way and can be searched and shown as a thumbnail."""
    if doc_type not in DocumentType.values:
        raise InvalidInput(_("Unknown document type."), code=InvalidInputCode.INVALID)
    if not title.strip():
        raise InvalidInput(_("Give the document a title."), code=InvalidInputCode.MISSING)
    checked = checked or check_file(content)
    if checked.cda is not None:
        doc_type, act_date = _cda_type_and_date(checked.cda, record, doc_type, act_date)
    content = checked.content  # what is stored: the PDF as sent, the image encoded again, the CDA as sent
    digest = checked.digest
    if documents_kept_once(record).filter(content_hash=digest).exists():
        raise InvalidInput(_("This file is already in the record."), code=InvalidInputCode.DUPLICATE)
    client = client or ClientMetadata()
    hidden_from_representatives = client.hidden_from_representatives
    if replaces is not None:
        # A new version keeps what the patient chose for the one it replaces, and a release
        # date still to come: it never shows where the version it replaces did not.
        hidden = hidden or replaces.hidden_from_professionals
        hidden_from_representatives = hidden_from_representatives or replaces.hidden_from_representatives
        still_withheld = replaces.withheld_from_patient_until
        if withheld_until is None and still_withheld and still_withheld > timezone.now():
            withheld_until = still_withheld
    lab_report = _cda_lab_report(checked, doc_type)
    thumbnail = make_thumbnail(content, checked.mime)
    document = Document(
        record=record, doc_type=doc_type, title=title.strip()[:200], act_date=act_date, author_kind=author_kind,
        author_professional=author_professional, added_by=actor.user, system_source=system_source,
        mime_type=checked.mime, size=len(content), content_hash=digest,
        hidden_from_professionals=hidden or client.hidden_from_professionals,
        hidden_from_representatives=hidden_from_representatives,
        withheld_from_patient_until=withheld_until, replaces=replaces,
        version=replaces.version + 1 if replaces else 1, extracted_text=checked.text,
        master_identifier_system=client.master_identifier_system, master_identifier=client.master_identifier,
        identifiers=list(client.identifiers), codings=dict(client.codings),
    )
    try:
        # Two uploads of the same file can race past the check above: the unique constraint
        # decides, and the loser gets the same clear message.
        with transaction.atomic():
            document.file.save(digest, ContentFile(content), save=False)
            if thumbnail:
                document.thumbnail.save(f"{digest}.thumb", ContentFile(thumbnail), save=False)
            document.save()
            if replaces is not None:
                # In the same transaction as the new version: the lists never show both, nor neither.
                Document.objects.filter(pk=replaces.pk).update(is_latest_version=False, changed_at=document.added_at)
                replaces.is_latest_version = False
                replaces.changed_at = document.added_at
            document_search_index_build(document)
            if lab_report is not None:
                _cda_values_attach(record, document, lab_report)
    except IntegrityError as exc:
        _delete_files(document)
        raise InvalidInput(_("This file is already in the record."), code=InvalidInputCode.DUPLICATE) from exc
    return document


def _cda_lab_report(checked: CheckedFile, doc_type: str) -> LabReportInput | None:
    """The values a laboratory's level-3 CDA carries, checked before the document's transaction
    (None: none, or refused by the results checks; the document is stored all the same)."""
    if checked.cda is None or checked.cda.level != 3 or doc_type != DocumentType.LAB_REPORT:
        return None
    from .results import cda_lab_report  # the results service builds on this one: imported here

    return cda_lab_report(cda_parse(checked.content), checked.cda)


def _cda_values_attach(record: Record, document: Document, report: LabReportInput) -> None:
    """The values bound to the CDA document itself, in the transaction that stores it."""
    from .results import lab_report_attach

    lab_report_attach(record=record, document=document, report=report)


# A CDA document whose record target is not the record it was added to: a refused attempt,
# written at once (a document about someone else is never filed, and someone should know).
CDA_OTHER_PATIENT = Decision(False, "cda_other_patient", AuditMode.NONE,
                             gettext_lazy("The document names another patient."))


def _other_patient() -> InvalidInput:
    return InvalidInput(_("This CDA document is about another patient (its INS or identifier does not match "
                          "this record): it was not added."), code=InvalidInputCode.MISMATCH)


def _refuse_other_patient(actor: Actor, action: str, record: Record, checked: CheckedFile) -> None:
    """A CDA names its patient: one that is not this record's is refused, and the attempt
    written in the access log before (outside) the write's transaction, so that it stays."""
    if checked.cda is None or checked.cda.is_about(record):
        return
    access_log.refusal(actor, action, CDA_OTHER_PATIENT, record, record=record)
    logger.warning("cda: record target does not match record=%s", record.pk)
    raise _other_patient()


def _cda_type_and_date(header: CdaHeader, record: Record, doc_type: str, act_date: date) -> tuple[str, date]:
    """The type and date of the act a CDA states. Its type must be the one the policy was asked
    about (the patient's own space keeps the patient's choice); its date wins over the form's.
    The patient is checked again here, the last step before storing: never the wrong record."""
    if not header.is_about(record):
        raise _other_patient()
    if header.doc_type and SPACE_OF_TYPE[doc_type] != Space.PERSONAL and header.doc_type != doc_type:
        raise InvalidInput(_("This CDA document says it is a “%(type)s”: choose that type.")
                           % {"type": DocumentType(header.doc_type).label}, code=InvalidInputCode.MISMATCH)
    return doc_type, header.act_date or act_date


@dataclass(frozen=True)
class ClientMetadata:
    """What practice software says of a document it publishes (IHE MHD, docs/api.md): its own
    unique id (`masterIdentifier`, system and value, kept as given: the same one twice in a
    record is refused like the same file), its other identifiers and type/class codings (kept
    to be read back), and the visibility it asks for: hidden from professionals or from the
    legal representatives at once (the patient, or the minor, lifts it as for any document)."""

    master_identifier_system: str = ""
    master_identifier: str = ""
    identifiers: tuple[dict, ...] = ()
    codings: dict = field(default_factory=dict)
    hidden_from_professionals: bool = False
    hidden_from_representatives: bool = False


def document_search_index_build(document: Document) -> int:
    """Maintenance and storing: (re)build the document's blind index (`dmp/search_index.py`)
    from its title and text, under the first SEARCH_INDEX_KEYS key. Nobody reads anything:
    no policy question. Returns the number of terms."""
    hashes = keyed_terms(document.record_id, document_terms(document.title, document.extracted_text))
    with transaction.atomic():  # never a document half indexed: found by some words, not others
        DocumentSearchTerm.objects.filter(document=document).delete()
        DocumentSearchTerm.objects.bulk_create(
            [DocumentSearchTerm(document=document, term=term) for term in sorted(hashes)], batch_size=1000
        )
    return len(hashes)


def _delete_files(document: Document) -> None:
    """Remove a document's stored files after its row was rolled back: nothing half-saved."""
    for stored in (document.file, document.thumbnail):
        if stored:
            stored.delete(save=False)


def document_add(
    *, actor: Actor, record: Record, content: bytes, doc_type: str, title: str, act_date: date,
    withheld_until: datetime | None = None, replaces: Document | None = None, checked: CheckedFile | None = None,
    client: ClientMetadata | None = None,
) -> Document:
    """Add a document as the patient (personal space) or as an authorised professional. A
    professional may replace their own document with a new version: nothing is overwritten.
    `checked` is `check_file(content)` when the caller already asked for it (the FHIR API);
    `client`, what practice software said of it (identifiers, codings, visibility)."""
    decision = permit(actor, Action.ADD_DOCUMENT, record, doc_type=doc_type)
    replace_decision = None
    if replaces is not None:
        if replaces.record_id != record.pk:
            raise InvalidInput(_("The document to replace is not in this record."), code=InvalidInputCode.INVALID)
        replace_decision = permit(actor, Action.REPLACE_DOCUMENT, replaces)
    professional = _acting_professional(actor, record)
    if professional is None and withheld_until is not None:
        raise InvalidInput(_("Only the authoring professional can delay a result for the patient."),
                           code=InvalidInputCode.NOT_ALLOWED)
    checked = checked or check_file(content)
    _refuse_other_patient(actor, Action.ADD_DOCUMENT, record, checked)
    document = None
    try:
        # The document, its entry in the access log and the patient's notice stand or fall
        # together: a file refused by the checks leaves no "added" line.
        with transaction.atomic():
            document = _store(
                record=record, content=content, doc_type=doc_type, title=title, act_date=act_date, actor=actor,
                withheld_until=withheld_until, replaces=replaces, checked=checked, client=client,
                **_authorship(record, professional, doc_type),
            )
            access_log.write(actor, Action.ADD_DOCUMENT, decision, document, record=record)
            if replace_decision is not None:
                access_log.write(actor, Action.REPLACE_DOCUMENT, replace_decision, replaces, record=record)
            if professional is not None:
                notify_new_documents(record, [document], professional)
    except Exception:
        if document is not None:
            _delete_files(document)
        raise
    return document


def _acting_professional(actor: Actor, record: Record):
    # Authored as a professional only when acting as one: a GP adding to their own record, or
    # to their child's as legal representative, adds as the patient.
    return actor.professional if record_access(actor, record).standing.is_professional else None


def _authorship(record: Record, professional, doc_type: str) -> dict:
    return {
        "author_kind": Document.AuthorKind.PROFESSIONAL if professional else Document.AuthorKind.PATIENT,
        "author_professional": professional,
        # Types the patient chose to hide by default arrive hidden (sensitive care).
        "hidden": bool(professional) and doc_type in record.default_hidden_types,
    }


def document_deposit(
    *, actor: Actor, record: Record, content: bytes, doc_type: str, title: str, act_date: date
) -> Document:
    """A counter agent scans the person's papers into a record they onboarded. Write-only:
    the returned document is not readable by the agent."""
    decision = permit(actor, Action.DEPOSIT_DOCUMENT, record)
    checked = check_file(content)
    _refuse_other_patient(actor, Action.DEPOSIT_DOCUMENT, record, checked)
    document = None
    try:
        with transaction.atomic():  # the document and its entry in the access log
            document = _store(
                record=record, content=content, doc_type=doc_type, title=title, act_date=act_date, actor=actor,
                author_kind=Document.AuthorKind.COUNTER, system_source=actor.counter_agent.organisation.name,
                hidden=doc_type in record.default_hidden_types, checked=checked,
            )
            access_log.write(actor, Action.DEPOSIT_DOCUMENT, decision, document, record=record)
    except Exception:
        if document is not None:
            _delete_files(document)
        raise
    return document


def document_import(
    *, record: Record, content: bytes, doc_type: str, title: str, act_date: date, source: str
) -> Document:
    """A system feed (the insurer's reimbursement data). Not an actor's action: no policy
    question, but the record must be open."""
    if not record.is_open:
        raise InvalidInput(_("This record is closed."), code=InvalidInputCode.STATE)
    return _store(
        record=record, content=content, doc_type=doc_type, title=title, act_date=act_date, actor=Actor(None),
        author_kind=Document.AuthorKind.SYSTEM, system_source=source,
    )


class InvalidFiles(InvalidInput):
    """Several files checked together and some refused: one message per refused file, by the
    name the browser sent (shown back to the person, never stored or logged)."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors),
                         code=InvalidInputCode.FILE_REFUSED)
        self.errors = list(errors)


def _title_from(name: str, prefix: str, index: int, count: int, doc_type: str) -> str:
    """The title the patient gave once (numbered when several files share it), else the file
    name without its extension."""
    prefix = " ".join(prefix.split())
    if prefix:
        return prefix if count == 1 else f"{prefix} ({index}/{count})"
    stem = " ".join(PurePath(name).stem.replace("_", " ").split())
    return stem or str(DocumentType(doc_type).label)


@dataclass(frozen=True)
class NewDocument:
    """One file of a batch and what it is. `name` is the name the browser sent: shown back in
    messages about this file, never stored or logged."""

    name: str
    content: bytes
    doc_type: str
    title: str
    act_date: date


def document_add_many(
    *, actor: Actor, record: Record, files: Sequence[tuple[str, bytes]], doc_type: str, act_date: date,
    title_prefix: str = "",
) -> list[Document]:
    """Add several files at once with one type and one date (the patient's personal space, or
    any type for an authorised professional). Every file is checked before any is stored; if
    one is refused, none is stored and `InvalidFiles` names each refused file."""
    if not files:
        permit(actor, Action.ADD_DOCUMENT, record, doc_type=doc_type)
        raise InvalidInput(_("Choose at least one file."), code=InvalidInputCode.MISSING)
    return document_add_batch(actor=actor, record=record, documents=[
        NewDocument(name, content, doc_type, _title_from(name, title_prefix, index, len(files), doc_type), act_date)
        for index, (name, content) in enumerate(files, 1)
    ])


def _checked_batch(actor: Actor, action: str, record: Record, documents: Sequence[NewDocument], *,
                   refused: Callable[[NewDocument], str] | None = None) -> list[tuple[NewDocument, CheckedFile]]:
    """Check every file of a batch before any is stored: `check_file()` (size, antivirus,
    format, limits, active content), a CDA about another patient (each such attempt logged as
    `action` refused), the same file twice in the batch or already in the
    record, and `refused` (a message, or "" to accept). Raises
    InvalidFiles naming each refused file; nothing is half-saved."""
    errors: list[tuple[str, str]] = []
    checked: list[tuple[NewDocument, CheckedFile]] = []
    seen: dict[str, str] = {}
    for new in documents:
        message = refused(new) if refused else ""
        if message:
            errors.append((new.name, message))
            continue
        try:
            result = check_file(new.content)
            _refuse_other_patient(actor, action, record, result)
        except InvalidInput as exc:
            errors.append((new.name, str(exc)))
            continue
        if result.digest in seen:
            errors.append((new.name, _("This is the same file as %(name)s.") % {"name": seen[result.digest]}))
            continue
        seen[result.digest] = new.name
        checked.append((new, result))
    already = set(documents_kept_once(record).filter(content_hash__in=list(seen))
                  .values_list("content_hash", flat=True))
    errors += [(new.name, _("This file is already in the record.")) for new, result in checked
               if result.digest in already]
    if errors:
        raise InvalidFiles(errors)
    return checked


def document_add_batch(
    *, actor: Actor, record: Record, documents: Sequence[NewDocument], withheld_until: datetime | None = None,
) -> list[Document]:
    """Add several files at once, each with its own type, title and date (a professional's
    drop of files on the patient screen), optionally not yet visible to the patient until
    `withheld_until` (the author's choice only). The policy is asked once per type; every file
    is checked before any is stored; if one is refused, none is stored and `InvalidFiles`
    names each refused file."""
    decisions = {
        doc_type: permit(actor, Action.ADD_DOCUMENT, record, doc_type=doc_type)
        for doc_type in sorted({d.doc_type for d in documents}) or [None]
    }
    if not documents:
        raise InvalidInput(_("Choose at least one file."), code=InvalidInputCode.MISSING)
    if len(documents) > MAX_FILES_AT_ONCE:
        raise InvalidInput(_("Add at most %(n)d files at once.") % {"n": MAX_FILES_AT_ONCE},
                           code=InvalidInputCode.LIMIT)
    professional = _acting_professional(actor, record)
    if professional is None and withheld_until is not None:
        raise InvalidInput(_("Only the authoring professional can delay a result for the patient."),
                           code=InvalidInputCode.NOT_ALLOWED)
    checked = _checked_batch(actor, Action.ADD_DOCUMENT, record, documents)
    stored: list[Document] = []
    try:
        # All or nothing: one transaction for the rows, and the files already written are
        # removed if a later one fails.
        with transaction.atomic():
            for new, result in checked:
                stored.append(_store(
                    record=record, content=new.content, doc_type=new.doc_type, actor=actor, act_date=new.act_date,
                    title=new.title, checked=result, withheld_until=withheld_until,
                    **_authorship(record, professional, new.doc_type),
                ))
                # One entry per document that was stored, in the same transaction.
                access_log.write(actor, Action.ADD_DOCUMENT, decisions[new.doc_type], stored[-1], record=record)
            if professional is not None:
                notify_new_documents(record, stored, professional)
    except Exception:
        for document in stored:
            _delete_files(document)
        raise
    return stored


def document_release(*, actor: Actor, document: Document) -> Document:
    """The author makes a result they withheld visible to the patient now, once they have
    announced it (DOMAIN.md §2: lifted by the author, or by itself after the delay)."""
    decision = permit(actor, Action.RELEASE_DOCUMENT, document)
    now = timezone.now()
    if not document.is_withheld_from_patient(now):
        raise InvalidInput(_("The patient can already see this document."), code=InvalidInputCode.STATE)
    with transaction.atomic():  # visible, logged and told together (DOMAIN.md §5)
        document.withheld_from_patient_until = now
        document.changed_at = now
        document.save(update_fields=["withheld_from_patient_until", "changed_at"])
        access_log.write(actor, Action.RELEASE_DOCUMENT, decision, document, record=document.record)
        notify_new_documents(document.record, [document], document.author_professional, now=now)
    return document


def documents_release_due(*, at: datetime | None = None) -> int:
    """Results withheld from the patient whose date has come (or that their author released)
    are visible from then on by the policy's own rule; this tells the patient, once per
    document, that a professional's new document is there (Celery beat, every few minutes).
    Returns how many documents were told."""
    at = at or timezone.now()
    due = Document.objects.filter(
        withheld_from_patient_until__isnull=False, withheld_from_patient_until__lte=at,
        patient_notified_at__isnull=True, author_professional__isnull=False, record__state=Record.State.OPEN,
    )
    told = 0
    for pk in due.values_list("pk", flat=True)[:1000]:
        # One transaction per document: its notice and its "told" mark go together. Locked and
        # skipped if another run holds it.
        with transaction.atomic():
            document = Document.objects.select_for_update(skip_locked=True).filter(
                pk=pk, patient_notified_at__isnull=True).first()
            if document is None:
                continue
            notify_new_documents(document.record, [document], document.author_professional, now=at)
            told += 1
    return told


def _versions_visible_to(actor: Actor, document: Document) -> list[int]:
    """The document and its other versions the actor may see: hiding a result hides its earlier
    and later versions too, which stay readable by their number."""
    pks = {document.pk}
    older = document
    while older.replaces_id is not None and older.replaces_id not in pks:
        pks.add(older.replaces_id)
        older = Document.objects.only("pk", "replaces_id").get(pk=older.replaces_id)
    newer = Document.objects.filter(replaces_id=document.pk).values_list("pk", flat=True).first()
    while newer is not None and newer not in pks:
        pks.add(newer)
        newer = Document.objects.filter(replaces_id=newer).values_list("pk", flat=True).first()
    scope = document_scope(actor, document.record)
    return list(document.record.documents.filter(scope.q(), pk__in=pks).values_list("pk", flat=True))


def document_visibility_set(*, actor: Actor, document: Document, hidden: bool) -> Document:
    """Hide a document (all its versions) from professionals, or show it to them again. The
    patient or their legal representative, at any time; the médecin traitant and the author
    still see a hidden document (the policy's document rule)."""
    return _set_on_its_versions(actor, document, Action.HIDE_DOCUMENT, hidden_from_professionals=hidden)


def document_representatives_visibility_set(*, actor: Actor, document: Document, hidden: bool) -> Document:
    """Hide a document (all its versions) from the legal representatives, or show it to them
    again: the holder themselves only, a minor keeping their confidential care from their parents
    (DOMAIN.md §2, docs/minors.md). Hidden, it is absent from everything a representative reads:
    lists, counts, search, timeline, exports, history (the policy's document rule)."""
    return _set_on_its_versions(actor, document, Action.HIDE_FROM_REPRESENTATIVES, hidden_from_representatives=hidden)


def _set_on_its_versions(actor: Actor, document: Document, action: str, **flags: bool) -> Document:
    """`action` asked of the policy, then `flags` set on every version of the document the actor
    sees, with the write's audit entry, in one transaction."""
    decision = permit(actor, action, document)
    with transaction.atomic():
        Document.objects.filter(pk__in=_versions_visible_to(actor, document)).update(
            **flags, changed_at=timezone.now())
        access_log.write(actor, action, decision, document, record=document.record)
    for name, value in flags.items():
        setattr(document, name, value)
    return document


def document_archive_set(*, actor: Actor, document: Document, archived: bool) -> Document:
    """Archive a document (it leaves the current list, nothing is deleted) or bring it back."""
    decision = permit(actor, Action.ARCHIVE_DOCUMENT, document)
    status = Document.Status.ARCHIVED if archived else Document.Status.CURRENT
    with transaction.atomic():
        if document.status != status:
            document.status = status
            document.changed_at = timezone.now()
            document.save(update_fields=["status", "changed_at"])
        access_log.write(actor, Action.ARCHIVE_DOCUMENT, decision, document, record=document.record)
    return document


def document_withdraw(*, actor: Actor, document: Document) -> Document:
    """The author withdraws their document as entered in error (IHE MHD's `entered-in-error`):
    the row and its file stay, for the audit log and the patient's history, but no list shows
    it any more. The policy's rule for replacing a document: its author, on its current latest
    version, with a right to write to the record."""
    decision = permit(actor, Action.WITHDRAW_DOCUMENT, document)
    with transaction.atomic():
        # Locked: two withdrawals, or a withdrawal and a replacement, do not cross.
        locked = Document.objects.select_for_update().get(pk=document.pk)
        if locked.status != Document.Status.CURRENT or not locked.is_latest_version:
            raise InvalidInput(_("This document can no longer be withdrawn."), code=InvalidInputCode.STATE)
        document.status = Document.Status.ENTERED_IN_ERROR
        document.changed_at = timezone.now()
        document.save(update_fields=["status", "changed_at"])
        access_log.write(actor, Action.WITHDRAW_DOCUMENT, decision, document, record=document.record)
    return document


@dataclass(frozen=True)
class Publication:
    """One document of a publication (`documents_publish`): `document_add`'s arguments."""

    record: Record
    content: bytes
    doc_type: str
    title: str
    act_date: date
    withheld_until: datetime | None = None
    replaces: Document | None = None
    checked: CheckedFile | None = None
    client: ClientMetadata | None = None


def documents_publish(*, actor: Actor, publications: Sequence[Publication]) -> list[Document]:
    """Add several documents as one act, all or nothing (an IHE MHD transaction): each through
    `document_add` (the policy, the checks, the access log, the notice), in one database
    transaction; if one is refused, none is kept, and the files already written are removed."""
    # A CDA about another patient is refused, and logged, before the one transaction (which
    # would take the refusal's entry with it).
    publications = [replace(p, checked=p.checked or check_file(p.content)) for p in publications]
    for publication in publications:
        _refuse_other_patient(actor, Action.ADD_DOCUMENT, publication.record, publication.checked)
    stored: list[Document] = []
    try:
        with transaction.atomic():
            for publication in publications:
                stored.append(document_add(
                    actor=actor, record=publication.record, content=publication.content,
                    doc_type=publication.doc_type, title=publication.title, act_date=publication.act_date,
                    withheld_until=publication.withheld_until, replaces=publication.replaces,
                    checked=publication.checked, client=publication.client,
                ))
    except Exception:
        for document in stored:
            _delete_files(document)
        raise
    return stored


def document_selection_set(*, actor: Actor, document: Document, selected: bool) -> None:
    """Put a document on the account's "my selection" shortlist, or take it off. Each account
    keeps its own (a minor's and their parent's are not shared); it changes nothing in the
    record, so reading the document is all it takes."""
    decision = permit(actor, Action.VIEW_DOCUMENT, document)
    with transaction.atomic():
        if selected:
            DocumentSelection.objects.get_or_create(user=actor.user, document=document)
        else:
            DocumentSelection.objects.filter(user=actor.user, document=document).delete()
        access_log.write(actor, Action.VIEW_DOCUMENT, decision, document, record=document.record)


def record_default_hidden_types_set(*, actor: Actor, record: Record, types: Iterable[str]) -> Record:
    """The document types hidden from professionals as they arrive (sensitive care). Who may
    see the record is the holder's choice: the same right as managing access."""
    decision = permit(actor, Action.MANAGE_ACCESS, record)
    chosen = sorted(set(types))
    if not set(chosen) <= set(DocumentType.values):
        raise InvalidInput(_("Unknown document type."), code=InvalidInputCode.INVALID)
    with transaction.atomic():
        record.default_hidden_types = chosen
        record.save(update_fields=["default_hidden_types"])
        access_log.write(actor, Action.MANAGE_ACCESS, decision, record, record=record, object_id="default_hidden_types")
    return record


def document_derivatives_fill(document: Document) -> tuple[bool, bool]:
    """Maintenance (`manage.py backfill_documents`): the extracted text, search index and
    thumbnail of a document stored before they existed. Nobody reads anything: no policy
    question. An old PDF that no longer opens keeps its place, without text (its title is still
    indexed). Returns (text added, thumbnail added)."""
    with document.file.open("rb") as stored:
        content = stored.read()
    fields = []
    if document.mime_type == "application/pdf" and not document.extracted_text:
        try:
            document.extracted_text = check_file(content, scan=False).text
        except InvalidInput:
            document.extracted_text = ""
        if document.extracted_text:
            fields.append("extracted_text")
    if not document.thumbnail:
        thumbnail = make_thumbnail(content, document.mime_type)
        if thumbnail:
            document.thumbnail.save(f"{document.content_hash}.thumb", ContentFile(thumbnail), save=False)
            fields.append("thumbnail")
    with transaction.atomic():  # the text and the index built from it go together
        if fields:
            document.save(update_fields=fields)
        if "extracted_text" in fields or not document.search_terms.exists():
            document_search_index_build(document)
    return "extracted_text" in fields, "thumbnail" in fields


# --- Counter deposit of several papers at once (issue 6) ---------------------------------------

# What a counter deposits: papers the person brings, never what only professionals or the
# system write (the record summary, the insurer's data) nor the patient's personal space.
COUNTER_DEPOSIT_EXCLUDED_TYPES = frozenset({
    DocumentType.RECORD_SYNTHESIS, DocumentType.REIMBURSEMENT_DATA,
    DocumentType.ADVANCE_DIRECTIVES, DocumentType.PATIENT_DOCUMENT,
})


def document_deposit_batch(*, actor: Actor, record: Record, documents: Sequence[NewDocument]) -> int:
    """A counter agent scans several of the person's papers at once, each with its own type
    and original's date. Write-only like `document_deposit`: only the number stored is
    returned. Every file is checked before any is stored; if one is refused, none is stored
    and `InvalidFiles` names each refused file (by the name the browser sent)."""
    decision = permit(actor, Action.DEPOSIT_DOCUMENT, record)
    if not documents:
        raise InvalidInput(_("Choose at least one file."), code=InvalidInputCode.MISSING)
    if len(documents) > MAX_FILES_AT_ONCE:
        raise InvalidInput(_("Add at most %(n)d files at once.") % {"n": MAX_FILES_AT_ONCE},
                           code=InvalidInputCode.LIMIT)
    def refused_type(new: NewDocument) -> str:
        if new.doc_type not in DocumentType.values or new.doc_type in COUNTER_DEPOSIT_EXCLUDED_TYPES:
            return str(_("Choose the kind of paper."))
        return ""

    checked = _checked_batch(actor, Action.DEPOSIT_DOCUMENT, record, documents, refused=refused_type)
    stored: list[Document] = []
    try:
        with transaction.atomic():
            for new, result in checked:
                stored.append(_store(
                    record=record, content=new.content, doc_type=new.doc_type, title=new.title,
                    act_date=new.act_date, actor=actor, author_kind=Document.AuthorKind.COUNTER,
                    system_source=actor.counter_agent.organisation.name, checked=result,
                    hidden=new.doc_type in record.default_hidden_types,
                ))
                access_log.write(actor, Action.DEPOSIT_DOCUMENT, decision, stored[-1], record=record)
    except Exception:
        for document in stored:
            _delete_files(document)
        raise
    return len(stored)
