"""Helpers the portals share to turn policy answers into HTTP responses."""

from __future__ import annotations

from django.http import FileResponse

from .policy import Actor
from .selectors import get_document_for


def document_file_response(request, pk: int) -> FileResponse:
    """Stream a document's decrypted file, after the policy said yes (404 otherwise)."""
    document = get_document_for(Actor.from_request(request), pk)
    response = FileResponse(document.file.open("rb"), content_type=document.mime_type)
    # The file name says nothing medical; the browser shows it inline.
    extension = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}[document.mime_type]
    response["Content-Disposition"] = f'inline; filename="document-{document.pk}.{extension}"'
    response["Cache-Control"] = "no-store"
    return response
