"""`manage.py verify_audit`: walk the audit hash chain; exit non-zero naming the first bad entry."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from dmp.audit import verify_chain
from dmp.models import AuditEntry


class Command(BaseCommand):
    help = "Verify that the audit log is intact (no entry altered, inserted or deleted)."

    def handle(self, *args, **options):
        problem = verify_chain()
        if problem is not None:
            raise CommandError(f"Audit log broken at {problem}.")
        self.stdout.write(f"Audit log intact: {AuditEntry.objects.count()} entries.")
