"""Helpers the portals share to turn policy answers into HTTP responses."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpResponse

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


def document_response(document) -> FileResponse:
    """The decrypted file of a document the caller has already loaded through a selector,
    always as a download (see `protected_file_response`)."""
    response = FileResponse(document.file.open("rb"), content_type=document.mime_type)
    return protected_file_response(response, document_file_name(document))


def document_file_name(document) -> str:
    """A file name that says nothing about the person or the content."""
    extension = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}.get(document.mime_type, "bin")
    return f"document-{document.pk}.{extension}"


# Uploaded content is never active content on the application's origin: a PDF with a script or
# an image that is also an HTML page would otherwise run with the reader's session.
FILE_CSP = "sandbox; default-src 'none'"


def protected_file_response(response, filename: str):
    """Headers for every response that carries a stored file or its thumbnail: saved rather
    than shown (`attachment`, a name without identity), never sniffed into another type,
    sandboxed with nothing allowed if a browser renders it anyway, never cached."""
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_CSP
    response["Cache-Control"] = "no-store"
    return response


def patient_summary_response(content) -> HttpResponse:
    """The International Patient Summary PDF of a `SummaryContent` a selector loaded through the
    policy, with the protected files' headers: a download named without identity, no-store."""
    from .summary_pdf import summary_pdf

    response = HttpResponse(summary_pdf(content), content_type="application/pdf")
    return protected_file_response(response, "patient-summary.pdf")
