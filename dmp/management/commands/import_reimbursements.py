"""`manage.py import_reimbursements FILE [FILE ...]`: file the insurer's reimbursement feed
(docs/reimbursement_feed.md) into the records. Idempotent; bad lines are reported by number
and skipped, the others imported."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dmp.services.reimbursements import reimbursement_file_import


class Command(BaseCommand):
    help = "Import reimbursement feed files (JSON lines). Importing the same file twice changes nothing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("files", nargs="+", type=Path)

    def handle(self, *args, files: list[Path], **options) -> None:
        for path in files:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
        for path in files:
            report = reimbursement_file_import(path)
            self.stdout.write(f"{path.name}: {report.summary()}")
