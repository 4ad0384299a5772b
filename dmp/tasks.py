"""Celery tasks: thin wrappers around services. They receive ids, never objects, and are sent
once the transaction that created their work has committed (`transaction.on_commit`)."""

from __future__ import annotations

from .celery import app
from .services.export import record_export_build, record_exports_purge


@app.task
def build_record_export(export_id: int) -> None:
    """Prepare the ZIP of a record export (dmp/services/export.py)."""
    record_export_build(export_id=export_id)


@app.task
def purge_record_exports() -> int:
    """Delete the record exports older than their retention (7 days), files included."""
    return record_exports_purge()
