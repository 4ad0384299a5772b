"""The whole record as one ZIP, for the patient or their legal representative (DOMAIN.md §3,
patient management): every document the requester may see, a one-page summary PDF, the
structured data as FHIR R4 JSON, the record's access history with what is needed to check it
offline against a signed checkpoint (`access-history/`, checked by dmp/verify_history.py,
shipped inside), and a README. Prepared in the background (dmp/tasks.py).

The ZIP is built as a stream, in bounded memory whatever the record's size: each document is
read from the storage as it decrypts and copied into the archive in chunks, and the archive is
encrypted chunk by chunk (dmp/storage.py `EncryptingWriter`, docs/storage.md) into a temporary
file, which the storage then keeps as it is (a file or an object upload). Only encrypted bytes
ever land on a disk, not even in a temporary file.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
import zipfile
from datetime import timedelta
from pathlib import Path

from django.db import DatabaseError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from kombu.exceptions import OperationalError as BrokerUnreachable

from .. import access_log, audit, fhir, pdf, verify_history
from ..cda.reading import is_cda
from ..cda.reading import opened as cda_opened
from ..models import (
    AuditEntry,
    Document,
    DocumentType,
    Record,
    RecordExport,
    Space,
    TreatingDoctor,
)
from ..policy import Action, Actor, Standing, decide, record_access
from ..selectors import documents_visible_to
from ..selectors.export import EXPORT_RETENTION
from ..selectors.patient_data import declared_allergies, emergency_contacts_of, personal_profile
from ..storage import CHUNK, EncryptingWriter, Sealed, current_key_id
from . import permit

logger = logging.getLogger(__name__)

# A pending or running export older than this is taken for dead (its worker lost for good)
# and a new request starts afresh instead of waiting for it forever.
EXPORT_STALE_AFTER = timedelta(hours=1)
# Progress is saved every so many documents, not for every byte.
PROGRESS_EVERY = 10

_EXTENSIONS = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg", "application/xml": "xml"}
_ACTIVE = (RecordExport.Status.PENDING, RecordExport.Status.RUNNING)
SUMMARY_TEMPLATE = "portal_patient/export/summary.html"
README_TEMPLATE = "portal_patient/export/readme.txt"


def record_export_request(*, actor: Actor, record: Record) -> RecordExport:
    """Ask for the record as a ZIP (holder or legal representative only). The work runs in
    the background; while this account's previous request is still pending or running, that
    one is returned instead of starting a second."""
    from ..tasks import build_record_export

    decision = permit(actor, Action.EXPORT_RECORD, record)
    now = timezone.now()
    # The record row is locked so that two clicks (two tabs) cannot start two exports.
    with transaction.atomic():
        Record.objects.select_for_update().filter(pk=record.pk).first()
        mine = record.exports.filter(requested_by=actor.user)
        current = mine.filter(status__in=_ACTIVE).order_by("-created_at", "-pk").first()
        if current is not None and current.created_at > now - EXPORT_STALE_AFTER:
            return current
        # A new export replaces this account's earlier ones: fewer copies of the record at rest.
        _delete_exports(mine)
        export = RecordExport.objects.create(record=record, requested_by=actor.user, created_at=now)
        access_log.write(actor, Action.EXPORT_RECORD, decision, export, record=record)
        pk = export.pk

        def queue() -> None:
            try:
                build_record_export.delay(pk)
            except BrokerUnreachable:
                # Nothing will build it: without this the request made again in a minute would
                # wait on it for EXPORT_STALE_AFTER. The page answers 503 (dmp/unavailable.py).
                _delete_exports(RecordExport.objects.filter(pk=pk, status=RecordExport.Status.PENDING))
                raise

        transaction.on_commit(queue)
    return export


class ExportFailure(Exception):
    """The build stopped; `code` is what the export keeps and the page shows: never medical."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def record_export_build(*, export_id: int) -> RecordExport | None:
    """Build the ZIP of an export, as the account that asked for it, and store it encrypted.
    On any error the export ends FAILED with an error code, no file, and one log line with
    ids only. Returns None if there was nothing to do (finished already, or deleted)."""
    # Claimed with a conditional update: a redelivered task (worker lost) starts over, a
    # finished export is left alone.
    claimed = RecordExport.objects.filter(pk=export_id, status__in=_ACTIVE).update(
        status=RecordExport.Status.RUNNING, progress=0
    )
    if not claimed:
        return None
    export = RecordExport.objects.select_related("record", "requested_by").get(pk=export_id)
    try:
        # Encrypted bytes only, and gone when closed (or when the process dies).
        with tempfile.TemporaryFile(prefix="dmp-export-") as spool:
            size = _build_zip(export, spool)
            _store(export, spool, size)
        logger.info("record export %s (record %s) ready: %s bytes", export.pk, export.record_id, export.size)
    except ExportFailure as failure:
        _fail(export, failure.code, failure.__cause__)
    except Exception as exc:  # any other error too: the export ends FAILED, never half-done
        _fail(export, "unexpected_error", exc)
    return export


def record_exports_purge(*, now=None) -> int:
    """Delete exports (file and row) older than EXPORT_RETENTION; returns how many. Run daily
    by Celery beat (dmp/tasks.py `purge_record_exports`)."""
    cutoff = (now or timezone.now()) - EXPORT_RETENTION
    with transaction.atomic():
        return _delete_exports(RecordExport.objects.filter(created_at__lt=cutoff))


def _delete_exports(queryset) -> int:
    names = [name for name in queryset.values_list("file", flat=True) if name]
    count, _ = queryset.delete()
    if names:
        # Files go once the rows are gone for good: a rolled-back delete keeps its file.
        storage = RecordExport._meta.get_field("file").storage

        def delete_files() -> None:
            for name in names:
                storage.delete(name)

        transaction.on_commit(delete_files)
    return count


def _progress(export: RecordExport, value: int) -> None:
    export.progress = value
    RecordExport.objects.filter(pk=export.pk).update(progress=value)


def _build_zip(export: RecordExport, spool) -> int:
    """Write the export's ZIP, encrypted, into `spool`; returns the ZIP's (plaintext) size."""
    record = export.record
    actor = Actor(export.requested_by)
    # Asked again, without a second audit entry (the request was logged): the representation
    # may have ended, or the record been closed, since the request.
    if not decide(actor, Action.EXPORT_RECORD, record):
        raise ExportFailure("not_allowed")
    documents = list(documents_visible_to(actor, record, include_archived=True).order_by("space", "act_date", "pk"))
    synthesis = None
    if decide(actor, Action.VIEW_SYNTHESIS, record):
        synthesis = (record.syntheses.select_related("author__user").prefetch_related("problems")
                     .order_by("-version").first())
    personal_data = bool(decide(actor, Action.VIEW_PERSONAL_DATA, record))
    treating = (TreatingDoctor.objects.active().filter(record=record)
                .select_related("professional__user").first())
    treating_doctor = treating.professional if treating else None
    paths = {doc.pk: document_path(doc) for doc in documents}
    sha1: dict[int, bytes] = {}

    encrypted = EncryptingWriter(spool)
    with zipfile.ZipFile(encrypted, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for n, document in enumerate(documents, start=1):
            sha1[document.pk] = _copy(document, archive, paths[document.pk])
            if is_cda(document):
                _write_cda_readable(document, archive, paths[document.pk])
            if n % PROGRESS_EVERY == 0:
                _progress(export, 5 + 80 * n // len(documents))
        _progress(export, 85)
        history_entries = _write_access_history(archive, record)
        context = _summary_context(record, actor, documents, synthesis, treating_doctor, personal_data)
        with translation.override(record.preferred_language):
            archive.writestr("summary.pdf", _summary_pdf(context), compress_type=zipfile.ZIP_STORED)
            _progress(export, 92)
            archive.writestr("record.fhir.json", _fhir_json(record, documents, paths, sha1, synthesis,
                                                            treating_doctor, personal_data))
            archive.writestr("README.txt", render_to_string(README_TEMPLATE, {
                **context, "spaces_present": [s for s in Space if any(d.space == s for d in documents)],
                "history_entries": history_entries,
            }))
    size = encrypted.tell()
    encrypted.close()  # the last chunk
    _progress(export, 97)
    return size


def _write_access_history(archive: zipfile.ZipFile, record: Record) -> int:
    """The record's audit chain up to the newest signed checkpoint, which is made now so that
    it covers the chain's head; the checkpoint's signed statement (without the other chains'
    heads: they belong to other people), the Merkle proof of this chain's head, the public
    key, and the verifier itself. Returns the number of entries shipped."""
    try:
        audit.checkpoint_create()
        proof = audit.chain_proof(record.pk)
    except Exception as exc:  # an unwritable checkpoint folder: no copy without its proof
        raise ExportFailure("history_unavailable") from exc
    folder = verify_history.FOLDER
    entries = []
    if proof is not None:
        entries = list(AuditEntry.objects.filter(chain=proof.chain, chain_seq__lte=proof.chain_seq)
                       .order_by("chain_seq"))
        body = {k: v for k, v in proof.checkpoint.body.items() if k != "leaves"}
        archive.writestr(folder + "checkpoint.json", verify_history.canonical(
            {"body": body, "signature": proof.checkpoint.signature}))
        archive.writestr(folder + "proof.json", verify_history.canonical(
            {"chain": proof.chain, "chain_seq": proof.chain_seq, "hash": proof.hash, "proof": proof.proof}))
    archive.writestr(folder + "chain.jsonl", "".join(
        verify_history.canonical({"seq": e.seq, "payload": e.payload(), "hash": e.hash}) + "\n" for e in entries))
    archive.writestr(folder + "public-key.txt", audit.public_key() + "\n")
    archive.writestr(folder + "verify_history.py", Path(verify_history.__file__).read_text())
    return len(entries)


def document_path(document: Document) -> str:
    """Where a document goes in the ZIP: by space, then date of the act, type and number.
    Built from codes only (the title stays inside the summary and the FHIR data), so every
    name is short, ASCII, unique and the same in every language."""
    doc_type = document.doc_type.replace("_", "-")
    extension = _EXTENSIONS.get(document.mime_type, "bin")
    return f"documents/{document.space}/{document.act_date:%Y-%m-%d}-{doc_type}-{document.pk}.{extension}"


def _write_cda_readable(document: Document, archive: zipfile.ZipFile, path: str) -> None:
    """Beside a CDA's XML, what it shows (docs/cda.md): the file a level-1 document wraps, or
    the PDF of a level-3 document's rendering, under the same name and its own extension."""
    content, mime = cda_opened(document)
    archive.writestr(f"{path.rsplit('.', 1)[0]}.{_EXTENSIONS.get(mime, 'bin')}", content,
                     compress_type=zipfile.ZIP_STORED)


def _copy(document: Document, archive: zipfile.ZipFile, path: str) -> bytes:
    """Copy a document into the archive as it decrypts, a chunk at a time, checking it against
    its SHA-256 on the way; returns its SHA-1 (FHIR R4's Attachment.hash: integrity of the
    copy, not security). A document that fails the check fails the export: its bytes are only
    in the encrypted temporary file, which goes."""
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(usedforsecurity=False)
    try:
        stored = document.file.open("rb")
    except Exception as exc:  # a missing file
        raise ExportFailure("document_unreadable") from exc
    # PDFs and images are compressed already.
    with stored, archive.open(_entry(path, document.size), "w") as entry:
        while True:
            try:
                chunk = stored.read(CHUNK)
            except Exception as exc:  # a key that no longer decrypts, an altered file
                raise ExportFailure("document_unreadable") from exc
            if not chunk:
                break
            sha256.update(chunk)
            sha1.update(chunk)
            entry.write(chunk)
    if sha256.hexdigest() != document.content_hash:
        raise ExportFailure("document_integrity")
    return sha1.digest()


def _entry(path: str, size: int) -> zipfile.ZipInfo:
    # Dated like writestr() dates the other entries. The size is a hint: zipfile sizes the
    # entry's header from it (ZIP64 or not) since it cannot go back over a stream.
    entry = zipfile.ZipInfo(path, date_time=time.localtime()[:6])
    entry.compress_type = zipfile.ZIP_STORED
    entry.file_size = size
    return entry


def _fhir_json(record, documents, paths, sha1, synthesis, treating_doctor, personal_data) -> str:
    from fhir.resources.R4B.bundle import Bundle

    try:
        bundle = fhir.record_bundle(
            record, documents=documents, attachment_url=lambda d: paths[d.pk], synthesis=synthesis,
            treating_doctor=treating_doctor, personal_data=personal_data, sha1=sha1,
        )
        text = fhir.bundle_json(bundle)
        # Parsed back, as any reader of the file will: what we ship must validate.
        Bundle.model_validate_json(text)
    except Exception as exc:  # pydantic's messages quote the values: never logged
        raise ExportFailure("fhir_invalid") from exc
    return text


# Less and less detail until the summary fits on one A4 page.
_SUMMARY_LEVELS = (
    {"per_space": 6, "items": 12, "chars": 400, "font_size": "9.5pt"},
    {"per_space": 3, "items": 8, "chars": 220, "font_size": "8.5pt"},
    {"per_space": 1, "items": 5, "chars": 120, "font_size": "8pt"},
    {"per_space": 0, "items": 3, "chars": 60, "font_size": "7.5pt"},
)


def _summary_context(record, actor, documents, synthesis, treating_doctor, personal_data) -> dict:
    profile = personal_profile(record) if personal_data else None
    by_space = []
    for space in Space:
        docs = sorted((d for d in documents if d.space == space), key=lambda d: (d.act_date, d.pk), reverse=True)
        if docs:
            by_space.append({"label": space.label, "documents": docs, "count": len(docs)})
    has_directive_document = any(d.doc_type == DocumentType.ADVANCE_DIRECTIVES for d in documents)
    return {
        "record": record,
        "representative": record_access(actor, record).standing is Standing.REPRESENTATIVE,
        "prepared_at": timezone.now(),
        "treating_doctor": treating_doctor,
        "synthesis": synthesis,
        "problems": list(synthesis.problems.all()) if synthesis else [],
        "declared_allergies": declared_allergies(record) if personal_data else [],
        "advance_directives": has_directive_document or bool(profile and profile.advance_directives.strip()),
        "profile": profile,
        "emergency_contacts": emergency_contacts_of(record) if personal_data else [],
        "spaces": by_space,
        "document_count": len(documents),
    }


def _summary_pdf(context: dict) -> bytes:
    try:
        return pdf.one_page_pdf(SUMMARY_TEMPLATE, context, _SUMMARY_LEVELS)
    except Exception as exc:
        raise ExportFailure("summary_failed") from exc


def _store(export: RecordExport, spool, size: int) -> None:
    """Hand the encrypted ZIP to the storage, which keeps it as it is (an S3 store uploads it
    in parts)."""
    try:
        spool.flush()
        export.file.save(f"{export.pk}.zip", Sealed(spool), save=False)
    except Exception as exc:
        raise ExportFailure("storage_failed") from exc
    export.size = size
    export.key_id = current_key_id()  # the row may be older than the key that wrote the file
    export.status = RecordExport.Status.READY
    export.progress = 100
    export.finished_at = timezone.now()
    try:
        # update_fields: fails (DatabaseError) if the export was deleted meanwhile, and then
        # the file must not stay behind.
        export.save(update_fields=["file", "size", "key_id", "status", "progress", "finished_at"])
    except DatabaseError as exc:
        export.file.delete(save=False)
        raise ExportFailure("storage_failed") from exc


def _fail(export: RecordExport, code: str, exc: BaseException | None) -> None:
    if export.file:
        export.file.delete(save=False)
    RecordExport.objects.filter(pk=export.pk).update(
        status=RecordExport.Status.FAILED, error=code, file="", size=0, finished_at=timezone.now()
    )
    export.status, export.error = RecordExport.Status.FAILED, code
    # Ids, the code and the exception's class only: messages may quote medical content.
    logger.warning("record export %s (record %s) failed: %s (%s)", export.pk, export.record_id, code,
                   type(exc).__name__ if exc is not None else "-")
