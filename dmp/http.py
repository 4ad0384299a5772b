"""Helpers the portals share to turn policy answers into HTTP responses."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import FileResponse

from .policy import Actor, portal_allowed
from .selectors import get_document_for


def actor_for_portal(request, portal: str) -> Actor:
    """The request's actor, or 403 if the account has no business in this portal."""
    actor = Actor.from_request(request)
    if not portal_allowed(actor, portal):
        raise PermissionDenied
    return actor


def document_file_response(request, pk: int) -> FileResponse:
    """Stream a document's decrypted file, after the policy said yes (404 otherwise)."""
    return document_response(get_document_for(Actor.from_request(request), pk))


def document_response(document, *, download: bool = False) -> FileResponse:
    """The decrypted file of a document the caller has already loaded through a selector:
    shown by the browser, or saved (`download`)."""
    response = FileResponse(document.file.open("rb"), content_type=document.mime_type)
    # The file name says nothing medical.
    extension = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}[document.mime_type]
    disposition = "attachment" if download else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="document-{document.pk}.{extension}"'
    response["Cache-Control"] = "no-store"
    return response
