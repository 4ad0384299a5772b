"""`manage.py backfill_documents`: the extracted text, search index and thumbnail of
documents stored before every new document got them. Safe to run again: only documents still
missing one are read. Prints ids and counts only, nothing medical."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db.models import Exists, OuterRef, Q

from dmp.models import Document, DocumentSearchTerm
from dmp.services import document_derivatives_fill


class Command(BaseCommand):
    help = "Fill in the extracted text, search index and thumbnail of documents that have none."

    def handle(self, *args, **options):
        indexed = Exists(DocumentSearchTerm.objects.filter(document=OuterRef("pk")))
        pending = Document.objects.filter(
            Q(thumbnail="") | Q(mime_type="application/pdf", extracted_text="") | ~indexed
        )
        seen = texts = thumbnails = 0
        for document in pending.order_by("pk").iterator(chunk_size=100):
            seen += 1
            try:
                text, thumbnail = document_derivatives_fill(document)
            except Exception as exc:  # one unreadable file must not stop the others
                self.stderr.write(f"Document #{document.pk}: not read ({type(exc).__name__}).")
                continue
            texts += text
            thumbnails += thumbnail
        self.stdout.write(f"{seen} documents looked at: {texts} texts and {thumbnails} thumbnails added.")
