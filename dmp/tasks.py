"""Celery tasks: thin wrappers around services. They receive ids, never objects, and are sent
once the transaction that created their work has committed (`transaction.on_commit`).
The periodic ones are scheduled by CELERY_BEAT_SCHEDULE (dmp/settings.py)."""

from __future__ import annotations

from .audit import checkpoint_create
from .celery import app
from .notifications import notification_send, notifications_send_due
from .services.access import break_glass_expire_due
from .services.documents import documents_release_due
from .services.export import record_export_build, record_exports_purge
from .services.records import records_destroy_due
from .services.reimbursements import (
    reimbursement_file_import,
    reimbursement_history_pull,
    reimbursement_inbox_import,
)


@app.task
def build_record_export(export_id: int) -> None:
    """Prepare the ZIP of a record export (dmp/services/export.py)."""
    record_export_build(export_id=export_id)


@app.task
def purge_record_exports() -> int:
    """Delete the record exports older than their retention (7 days), files included."""
    return record_exports_purge()


@app.task
def send_notification(notification_id: int) -> str:
    """Send one notification of the outbox, if it is due and nobody else holds it. Retries are
    the outbox's (`next_attempt_at`, found by `send_due_notifications`), not Celery's: a
    failure is stored on the row, so nothing depends on a message staying in the broker."""
    return notification_send(notification_id)


@app.task
def send_due_notifications() -> int:
    """Queue the notifications that are due: failed ones whose next try has come, ones stuck in
    "sending" past their lease (their worker died), ones never queued."""
    return notifications_send_due()


@app.task
def release_withheld_documents() -> int:
    """Tell the patients about results whose "not yet visible to the patient" delay passed."""
    return documents_release_due()


@app.task
def expire_break_glass() -> int:
    """Mark ended the emergency accesses whose time is over."""
    return break_glass_expire_due()


@app.task
def destroy_expired_records() -> list[int]:
    """Destroy the records closed 10 years ago (files and rows; a tombstone in the audit log)."""
    return records_destroy_due()


@app.task
def import_reimbursement_feed(path: str) -> str:
    """Import one feed file; returns its summary (counts and bad line numbers)."""
    return reimbursement_file_import(path).summary()


@app.task
def import_reimbursement_inbox() -> int:
    """Import the files dropped in REIMBURSEMENT_FEED_DIR, then move them to done/."""
    return len(reimbursement_inbox_import())


@app.task
def pull_reimbursement_history(record_id: int) -> int:
    """The 24 months of reimbursements of a record given a NIR; returns how many lines were filed."""
    report = reimbursement_history_pull(record_id)
    return report.imported if report else 0


@app.task
def audit_checkpoint() -> int | None:
    """Sign the audit chain heads changed since the last checkpoint (every minute)."""
    checkpoint = checkpoint_create()
    return checkpoint.seq if checkpoint else None
