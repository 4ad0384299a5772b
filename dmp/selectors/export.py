"""Reads of the patient's record exports (the ZIP of the whole record).

An export holds what its requester could see when it was built — a legal representative's
leaves out what the minor hid from them — so it belongs to that account alone: another
account acting for the same record (the minor, the other parent) neither sees nor downloads it.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import access_log
from ..models import Record, RecordExport
from ..policy import Action, Actor, Decision, decide

# How long a prepared export stays downloadable; dmp.services.export.record_exports_purge
# deletes older ones (file and row).
EXPORT_RETENTION = timedelta(days=7)


def record_exports_for(actor: Actor, record: Record) -> QuerySet[RecordExport]:
    """The record's exports this account requested that are still kept, newest first. The
    caller has already authorised `EXPORT_RECORD` on the record."""
    if actor.user is None:
        return RecordExport.objects.none()
    return record.exports.filter(
        requested_by=actor.user, created_at__gt=timezone.now() - EXPORT_RETENTION
    ).order_by("-created_at", "-pk")


def get_record_export_for(actor: Actor, record_pk: int, export_pk: int) -> RecordExport:
    """A ready export of record `record_pk` that this account requested, for download; Http404
    otherwise (another patient's, someone else's, not ready, expired or missing alike). The
    download is a read of the whole record: it is written to the audit log (a legal
    representative's, and every refusal)."""
    record = Record.objects.filter(pk=record_pk).first()
    object_id = f"recordexport:{export_pk}"
    if record is None:
        decision = decide(actor, Action.EXPORT_RECORD, None)
    else:
        decision = decide(actor, Action.EXPORT_RECORD, record)
    export = None
    if decision.allowed:
        export = record_exports_for(actor, record).filter(pk=export_pk, status=RecordExport.Status.READY).first()
        if export is None:
            decision = Decision(False, "export_not_available", decision.mode,
                                _("This download is not available (expired or not yours)."))
    access_log.read(actor, Action.EXPORT_RECORD, decision, None, record=record, object_id=object_id)
    if not decision.allowed:
        raise Http404
    return export
