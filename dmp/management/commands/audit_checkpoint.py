"""`manage.py audit_checkpoint`: sign the chain heads changed since the last checkpoint now
(Celery beat does it every minute); `--public-key` prints the key that verifies them."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from dmp.audit import checkpoint_create, public_key


class Command(BaseCommand):
    help = "Write a signed checkpoint of the audit chains, or print the checkpoints' public key."

    def add_arguments(self, parser):
        parser.add_argument("--public-key", action="store_true", help="print the public key (base64) and stop")

    def handle(self, *args, **options):
        if options["public_key"]:
            self.stdout.write(public_key())
            return
        checkpoint = checkpoint_create()
        if checkpoint is None:
            self.stdout.write("No chain changed since the last checkpoint.")
        else:
            self.stdout.write(f"Checkpoint #{checkpoint.seq}: {checkpoint.body['chains']} chains, "
                              f"root {checkpoint.body['root']}.")
