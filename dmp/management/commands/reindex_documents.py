"""`manage.py reindex_documents`: after a key rotation, build every document's search index
again under the first SEARCH_INDEX_KEYS key, and write every encrypted column again under the
first DOCUMENT_ENCRYPTION_KEYS key (documents' titles and text, the synthesis, the personal
notes…: every `EncryptedTextField`). Once it has finished, the former search index keys can be
removed; the former document keys only after `manage.py reencrypt`, which also moves the files
and the second-factor secrets.
Searches keep working meanwhile: every key of SEARCH_INDEX_KEYS is looked up. One row per
transaction, so it can be stopped and run again. Prints counts and ids only, nothing medical."""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from dmp.models import Document
from dmp.models.fields import EncryptedTextField
from dmp.services import document_search_index_build


class Command(BaseCommand):
    help = "Re-index every document and re-encrypt every encrypted column with the first keys."

    def handle(self, *args, **options):
        for model in apps.get_models():
            fields = [field.name for field in model._meta.concrete_fields if isinstance(field, EncryptedTextField)]
            if not fields:
                continue
            done = failed = 0
            for pk in model._default_manager.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=500):
                try:
                    with transaction.atomic():
                        row = model._default_manager.select_for_update().get(pk=pk)
                        # Saving writes new tokens under the first Fernet key (the field encrypts).
                        row.save(update_fields=fields)
                        if model is Document:
                            document_search_index_build(row)
                except Exception as exc:  # one row that cannot be read must not stop the others
                    failed += 1
                    self.stderr.write(f"{model._meta.label} #{pk}: not rewritten ({type(exc).__name__}).")
                    continue
                done += 1
            self.stdout.write(f"{model._meta.label}: {done} rewritten, {failed} failed.")
