"""Filing the insurer's reimbursement feed into records (DOMAIN.md §2: 24 months at creation,
then kept up to date). The format is in dmp/reimbursement_feed.py and docs/reimbursement_feed.md.

A system feed, not an actor's action: no policy question (like `document_import`), but only
open records receive lines. Importing is idempotent: each line carries the insurer's
`line_id`, stored as `ReimbursementLine.external_id` (unique), so the same file imported twice
changes nothing, and a corrected line (same id, new values) updates the one it corrects. Bad
lines are reported with their line number and skipped; the others are imported.
"""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import Record, ReimbursementLine
from ..models.record import normalise_nir
from ..reimbursement_feed import BadLine, FeedLine, generate_lines, parse_line, write_lines

logger = logging.getLogger(__name__)

CHUNK = 500
INBOX_LOCK = "reimbursement-inbox-lock"


@dataclass(frozen=True)
class LineError:
    line: int  # 1-based line number in the file
    code: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message} ({self.code})"


@dataclass
class ImportReport:
    """What an import did. Counts and line numbers only: nothing of a line's content."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[LineError] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged

    def summary(self) -> str:
        head = (f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
                f"{len(self.errors)} bad line(s) skipped")
        return "\n".join([head, *map(str, self.errors)])


def reimbursement_feed_import(
    lines: Iterable[str], *, today: date | None = None, only_record: Record | None = None
) -> ImportReport:
    """Import the lines of a feed file (an iterable of text lines, e.g. an open file).
    `only_record`: a file that answers for one record (its history); lines about any other
    record are refused."""
    today = today or timezone.localdate()
    report = ImportReport()
    records: dict[str, Record | None] = {}
    seen: set[str] = set()
    batch: list[tuple[int, FeedLine, Record]] = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            line = parse_line(text, today=today)
            if line.line_id in seen:
                raise BadLine("duplicate_line_id", "line_id: already given earlier in this file")
            record = _record(records, line.record)
            if record is None:
                raise BadLine("unknown_record", "record: no record has this identifier")
            if only_record is not None and record.pk != only_record.pk:
                raise BadLine("other_record", "record: this file is about another record")
            if not record.is_open:
                raise BadLine("closed_record", "record: the record is closed")
        except BadLine as bad:
            report.errors.append(LineError(number, bad.code, str(bad)))
            continue
        seen.add(line.line_id)
        batch.append((number, line, record))
        if len(batch) >= CHUNK:
            _file(batch, report)
            batch = []
    if batch:
        _file(batch, report)
    return report


def _record(cache_: dict[str, Record | None], identifier: str) -> Record | None:
    if identifier not in cache_:
        cache_[identifier] = (
            Record.objects.filter(Q(nir=identifier) | Q(provisional_id=identifier)).only("pk", "state").first()
        )
    return cache_[identifier]


def _file(batch: list[tuple[int, FeedLine, Record]], report: ImportReport) -> None:
    """One chunk, one transaction: new lines created, changed ones updated, the rest left alone."""
    with transaction.atomic():
        existing = {
            line.external_id: line
            for line in ReimbursementLine.objects.select_for_update().filter(
                external_id__in=[line.line_id for _n, line, _r in batch])
        }
        new = []
        for number, line, record in batch:
            row = existing.get(line.line_id)
            if row is None:
                new.append(ReimbursementLine(record_id=record.pk, external_id=line.line_id, **line.values()))
            elif row.record_id != record.pk:
                report.errors.append(LineError(number, "line_id_of_another_record",
                                               "line_id: already filed in another record"))
            elif {name: getattr(row, name) for name in line.values()} == line.values():
                report.unchanged += 1
            else:
                for name, value in line.values().items():
                    setattr(row, name, value)
                row.save(update_fields=list(line.values()))
                report.updated += 1
        # Another import of the same file at the same moment: the unique id keeps one row each.
        ReimbursementLine.objects.bulk_create(new, ignore_conflicts=True)
        report.created += len(new)
    report.errors.sort(key=lambda e: e.line)


def reimbursement_file_import(path: str | Path, *, only_record: Record | None = None) -> ImportReport:
    """Import one feed file (`manage.py import_reimbursements`, the inbox)."""
    path = Path(path)
    with path.open(encoding="utf-8", errors="replace", newline="") as stream:
        report = reimbursement_feed_import(stream, only_record=only_record)
    # The file name and counts only: a line's content is personal.
    logger.info("reimbursement feed %s: %s created, %s updated, %s unchanged, %s bad", path.name, report.created,
                report.updated, report.unchanged, len(report.errors))
    return report


def reimbursement_inbox_import(directory: str | Path | None = None) -> list[tuple[str, ImportReport]]:
    """Import every `*.jsonl` file dropped in the inbox (REIMBURSEMENT_FEED_DIR; Celery beat),
    oldest name first, then move it with its report to `done/`. A file being written must be
    named otherwise (e.g. `.jsonl.part`) and renamed when complete. One run at a time."""
    folder = Path(directory or settings.REIMBURSEMENT_FEED_DIR) if (directory or settings.REIMBURSEMENT_FEED_DIR) \
        else None
    if folder is None or not folder.is_dir():
        return []
    if not cache.add(INBOX_LOCK, "1", timeout=3600):
        return []  # another run is importing; its files are its own
    try:
        done = folder / "done"
        done.mkdir(exist_ok=True)
        results = []
        for path in sorted(folder.glob("*.jsonl")):
            report = reimbursement_file_import(path)
            target = done / path.name
            if target.exists():
                target = done / f"{path.stem}.{timezone.now():%Y%m%dT%H%M%S%f}{path.suffix}"
            shutil.move(str(path), target)
            target.with_name(target.name + ".report.txt").write_text(report.summary() + "\n", encoding="utf-8")
            results.append((path.name, report))
        return results
    finally:
        cache.delete(INBOX_LOCK)


def reimbursement_history_pull(record_id: int, *, today: date | None = None) -> ImportReport | None:
    """The last 24 months of a record that has (just been given) a NIR, from
    REIMBURSEMENT_HISTORY_SOURCE: "generator" (made-up lines, development; not when the record
    already has lines, e.g. the demo's), a directory of `<NIR>.jsonl` files from the insurer,
    or nothing (the lines come through the inbox). None when there was nothing to import."""
    record = Record.objects.filter(pk=record_id, state=Record.State.OPEN, nir__isnull=False).first()
    source = settings.REIMBURSEMENT_HISTORY_SOURCE
    if record is None or not source:
        return None
    if source == "generator":
        if record.reimbursements.exists():
            return None
        text = io.StringIO()
        write_lines(generate_lines([record.nir], today=today or timezone.localdate(),
                                   birth_dates={record.nir: record.birth_date}), text)
        return reimbursement_feed_import(text.getvalue().splitlines(), today=today, only_record=record)
    path = Path(source) / f"{normalise_nir(record.nir)}.jsonl"
    if not path.is_file():
        logger.info("no reimbursement history file yet for record %s", record.pk)
        return None
    return reimbursement_file_import(path, only_record=record)
