"""`manage.py reencrypt [--dry-run] [--batch-size N]`: after a new document key was put first in
DOCUMENT_ENCRYPTION_KEYS, write every encrypted object still under another key again under the
first one (dmp/keyring.py lists them: document files and thumbnails, record exports, every
encrypted column, the second-factor secrets). Once it reports nothing left, the former keys
can be removed (docs/deployment.md, "Document encryption keys").

One object per transaction, and each object records its key id as it moves: an interrupted run
is simply run again and continues where it stopped. Prints counts and row ids only, nothing
medical. A run that moved something is written in the access log as an administration act."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from dmp.keyring import encrypted_models, row_reencrypt, rows_to_reencrypt, secret_reencrypt, secrets_to_reencrypt
from dmp.services.administration import CommandLine, admin_audit
from dmp.storage import current_key_id


class Command(BaseCommand):
    help = "Re-encrypt every document, export, encrypted column and second-factor secret under the first key."
    # It must run when the key check (dmp.W002) asks for it.
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count what would be re-encrypted; change nothing.")
        parser.add_argument("--batch-size", type=int, default=100, help="Objects between two progress lines.")

    def handle(self, *args, dry_run: bool, batch_size: int, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        target = current_key_id()
        self.stdout.write(f"First key: {target}." + (" Dry run: nothing is changed." if dry_run else ""))
        moved = failed = 0
        for entry in encrypted_models():
            pending = rows_to_reencrypt(entry)
            total = pending.count()
            if dry_run or not total:
                self.stdout.write(f"{entry.label}: {total} to re-encrypt.")
                continue
            done, errors = self._run(entry.label, total, pending.values_list("pk", flat=True), batch_size,
                                     lambda pk, entry=entry: row_reencrypt(entry, pk))
            moved, failed = moved + done, failed + errors
        pending_secrets = secrets_to_reencrypt()
        if dry_run or not pending_secrets:
            self.stdout.write(f"second-factor secrets: {len(pending_secrets)} to re-encrypt.")
        else:
            done, errors = self._run("second-factor secrets", len(pending_secrets), pending_secrets, batch_size,
                                     secret_reencrypt)
            moved, failed = moved + done, failed + errors
        if dry_run:
            return
        if moved:
            admin_audit(actor=CommandLine("manage.py reencrypt"), action="keys_reencrypt", object_id=target)
        if failed:
            raise CommandError(f"{moved} re-encrypted, {failed} failed (listed above): fix them and run it again. "
                               f"Keep every key until a run ends with none failed.")
        self.stdout.write(f"Done: {moved} re-encrypted; every object is under key {target}.")

    def _run(self, label: str, total: int, pks, batch_size: int, reencrypt) -> tuple[int, int]:
        done = errors = 0
        # The ids are read first: each object is then locked and moved in its own transaction.
        for position, pk in enumerate(list(pks), start=1):
            try:
                if reencrypt(pk):
                    done += 1
            except Exception as exc:  # one unreadable object must not stop the others
                errors += 1
                self.stderr.write(f"{label} #{pk}: not re-encrypted ({type(exc).__name__}).")
            if position % batch_size == 0 or position == total:
                self.stdout.write(f"{label}: {position}/{total} ({done} re-encrypted, {errors} failed).")
        return done, errors
