"""`manage.py reindex_documents`: build every document's search index again under the first
SEARCH_INDEX_KEYS key, and encrypt its title and text again under the first
DOCUMENT_ENCRYPTION_KEYS key. Run after putting a new key first in either list; once it has
finished, the former key can be removed. Searches keep working meanwhile: every key of
SEARCH_INDEX_KEYS is looked up. One document per transaction, so it can be stopped and run
again. Prints ids and counts only, nothing medical."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from dmp.models import Document
from dmp.services import document_search_index_build


class Command(BaseCommand):
    help = "Re-index every document's search terms and re-encrypt its title and text with the first keys."

    def handle(self, *args, **options):
        done = terms = 0
        for pk in Document.objects.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=500):
            try:
                with transaction.atomic():
                    document = Document.objects.select_for_update().get(pk=pk)
                    # Saving writes new tokens under the first Fernet key (the field encrypts).
                    document.save(update_fields=["title", "extracted_text"])
                    terms += document_search_index_build(document)
            except Exception as exc:  # one document that cannot be read must not stop the others
                self.stderr.write(f"Document #{pk}: not re-indexed ({type(exc).__name__}).")
                continue
            done += 1
        self.stdout.write(f"{done} documents re-indexed ({terms} terms).")
