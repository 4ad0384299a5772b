"""`manage.py verify_audit`: check the access ledger against the HMAC keys and the signed
checkpoint files; exit non-zero naming the first problem."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from dmp.audit import verify_ledger


class Command(BaseCommand):
    help = ("Verify that the audit log is intact: every chain (positions, links, hashes, MACs), its "
            "head, and the signed checkpoints (no entry altered, inserted, reordered or deleted).")

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true",
                            help="walk every chain, not only those changed since the last verified checkpoint")

    def handle(self, *args, **options):
        report = verify_ledger(full=options["full"])
        if report.problems:
            raise CommandError(f"Audit log broken at {report.problems[0]}.")
        if report.last_checkpoint is None:
            self.stderr.write("No signed checkpoint found: newest entries cannot be checked against one yet.")
        self.stdout.write(
            f"Audit log intact: {report.entries} entries in {report.chains} chains checked"
            f"{'' if options['full'] else ' (changed since the last verified checkpoint; --full for all)'}, "
            f"{report.checkpoints} signed checkpoints."
        )
