"""`manage.py make_reimbursement_feed`: write a realistic sample of the insurer's feed
(docs/reimbursement_feed.md) for records of this database, to try the import, the inbox and
the demo. The same records, months and day give the same file (same line ids)."""

from __future__ import annotations

import sys
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from dmp.models import Record
from dmp.reimbursement_feed import generate_lines, write_lines


class Command(BaseCommand):
    help = "Write sample reimbursement feed lines (JSON lines) for records with a NIR."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--record", action="append", default=[],
                            help="NIR or provisional identifier (repeat); default: every open record with a NIR")
        parser.add_argument("--months", type=int, default=1,
                            help="months back from today, the current one included (24: a full history); default 1")
        parser.add_argument("--today", type=date.fromisoformat, default=None, help="YYYY-MM-DD; default: today")
        parser.add_argument("--output", "-o", default="-", help="file to write; default: standard output")

    def handle(self, *args, record: list[str], months: int, today: date | None, output: str, **options) -> None:
        if not 1 <= months <= 120:
            raise CommandError("--months: from 1 to 120")
        identifiers = record or list(
            Record.objects.filter(state=Record.State.OPEN, nir__isnull=False).order_by("pk").values_list("nir",
                                                                                                         flat=True)
        )
        # The person's age decides which treatments are plausible (no metformin for a teenager).
        birth_dates = {}
        for nir, provisional, birth_date in Record.objects.filter(
                Q(nir__in=identifiers) | Q(provisional_id__in=identifiers)).values_list("nir", "provisional_id",
                                                                                        "birth_date"):
            birth_dates.update({identifier: birth_date for identifier in (nir, provisional) if identifier})
        lines = generate_lines(identifiers, today=today or timezone.localdate(), months=months,
                               birth_dates=birth_dates)
        if output == "-":
            count = write_lines(lines, sys.stdout)
        else:
            with open(output, "w", encoding="utf-8") as out:
                count = write_lines(lines, out)
        self.stderr.write(f"{count} lines for {len(identifiers)} record(s).")
