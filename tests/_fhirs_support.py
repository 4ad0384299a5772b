"""Many documents at once, for the tests of paging and query ceilings: the rows, files and
search index `tests.personas.make_document` writes, in three queries instead of five per
document (a record of 200 documents took a second and a half to build one by one)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date

from django.core.files.base import ContentFile

from dmp.models import Document, DocumentSearchTerm, DocumentType, Professional, Record
from dmp.models.documents import SPACE_OF_TYPE
from dmp.search_index import document_terms, keyed_terms
from tests.personas import pdf_bytes


def make_documents(record: Record, labels: Sequence[str], *, author: Professional,
                   act_dates: Sequence[date] | None = None,
                   doc_type: str = DocumentType.CONSULTATION_REPORT) -> list[Document]:
    """One document per label by `author`, as `make_document` makes it (the same file per
    label, found by its title), on `act_dates` (one per label) or `make_document`'s date."""
    documents = []
    for n, label in enumerate(labels):
        content = pdf_bytes(f"{record.pk}-{label}")
        digest = hashlib.sha256(content).hexdigest()
        document = Document(
            record=record, doc_type=doc_type, space=SPACE_OF_TYPE[doc_type], title=label,
            act_date=act_dates[n] if act_dates is not None else date(2026, 1, 10),
            author_kind=Document.AuthorKind.PROFESSIONAL, author_professional=author,
            mime_type="application/pdf", size=len(content), content_hash=digest,
        )
        document.file.save(digest, ContentFile(content), save=False)
        documents.append(document)
    Document.objects.bulk_create(documents)
    DocumentSearchTerm.objects.bulk_create([
        DocumentSearchTerm(document=document, term=term)
        for document in documents
        for term in sorted(keyed_terms(record.pk, document_terms(document.title, document.extracted_text)))
    ], batch_size=1000)
    return documents
