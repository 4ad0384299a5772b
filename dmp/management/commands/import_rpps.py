"""`manage.py import_rpps FILE…`: create the professionals of a registry extract (format in
docs/rpps_import.md). Run by whoever runs the server; each professional created is in the audit
log. Prints counts and the number and code of each line skipped, never a line's content."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dmp.services import InvalidInput
from dmp.services.administration import CommandLine
from dmp.services.rpps import rpps_import


class Command(BaseCommand):
    help = "Create the professionals of a PS_LibreAcces registry extract who are not known yet."

    def add_arguments(self, parser) -> None:
        parser.add_argument("files", nargs="+", type=Path)

    def handle(self, *args, files: list[Path], **options) -> None:
        actor = CommandLine("import_rpps")
        for path in files:
            try:
                with path.open(encoding="utf-8-sig", newline="") as lines:
                    report = rpps_import(actor=actor, lines=lines)
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"{path}: cannot be read as UTF-8 text ({type(exc).__name__}).") from exc
            except InvalidInput as exc:
                raise CommandError(f"{path}: {exc}") from exc
            self.stdout.write(f"{path.name}: {len(report.created)} professional(s) created, "
                              f"{report.already_known} already known, {len(report.problems)} line(s) skipped.")
            for number, code in report.problems:
                self.stdout.write(f"  line {number}: {code}")
