"""Helpers the portals share to turn policy answers into HTTP responses.

Every portal view is resolved once, here: `portal_view(portal)` gives it the request's actor
(403 outside its portal), `record_view(portal)` the actor and the record loaded through the
policy (404 if refused). A service that refuses later (`AccessRefused`) answers 404 through
`AccessRefusedMiddleware`, so no view translates a refusal by hand."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.handlers.exception import response_for_exception
from django.http import FileResponse, Http404, HttpResponse

from .access_log import reads_logged_together
from .cda.reading import is_cda
from .cda.reading import opened as cda_opened
from .policy import Action, Actor, portal_allowed
from .selectors import get_document_for, get_record_for, synthesis_for
from .services import AccessRefused
from .storage import CHUNK


def actor_for_portal(request, portal: str) -> Actor:
    """The request's actor, or 403 if the account has no business in this portal. Views get it
    from `portal_view` or `record_view`; nothing else calls this."""
    actor = Actor.from_request(request)
    if not portal_allowed(actor, portal):
        raise PermissionDenied
    return actor


def portal_view(portal: str):
    """A view of `portal` ("patient", "pro", "counter") called as `view(request, actor, ...)`
    with the URL's arguments after the actor: the login page for a visitor who is not logged
    in, 403 (logged by the policy) for an account of another portal. Goes under the `require_*`
    decorators, which keep answering first (405). No page is cached: `dmp/headers.py` says
    no-store on every response."""
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            return view(request, actor_for_portal(request, portal), *args, **kwargs)
        return login_required(wrapper)
    return decorator


def record_view(portal: str, *, action: str = Action.VIEW_RECORD):
    """A page about one record (URL argument `pk`), called as `view(request, actor, record,
    ...)`: as `portal_view`, and 404 if the policy refuses `action` on the record (the selector
    logs it), like a record that does not exist. A page that only reads (GET, HEAD) writes the
    entries of everything it read in one append when it is done, before it is sent
    (`access_log.reads_logged_together`); a POST's reads are written as they happen, apart
    from the transaction of its change."""
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, pk: int, **kwargs):
            actor = actor_for_portal(request, portal)
            if request.method not in ("GET", "HEAD"):
                return view(request, actor, get_record_for(actor, pk, action=action), *args, **kwargs)
            with reads_logged_together(actor):
                return view(request, actor, get_record_for(actor, pk, action=action), *args, **kwargs)
        return login_required(wrapper)
    return decorator


class AccessRefusedMiddleware:
    """A service's refusal (`AccessRefused`) that reaches the top of a view is the ordinary
    404 page: an action refused on a record says no more than a record that does not exist.
    Views catch `AccessRefused` only to do something else (a message, a form error, a 403)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, AccessRefused):
            return response_for_exception(request, Http404())
        return None


def document_file_response(actor: Actor, pk: int) -> FileResponse:
    """Stream a document's decrypted file, after the policy said yes (404 otherwise)."""
    return document_response(get_document_for(actor, pk))


def document_response(document) -> FileResponse | HttpResponse:
    """What opens for a document the caller has already loaded through a selector, always as a
    download (see `protected_file_response`): its decrypted file, or for a CDA document the file
    it wraps (level 1) or the PDF of its rendering (level 3, docs/cda.md)."""
    if is_cda(document):
        content, mime = cda_opened(document)
        return protected_file_response(HttpResponse(content, content_type=mime),
                                       f"document-{document.pk}.{_EXTENSIONS.get(mime, 'bin')}")
    return document_original_response(document)


def document_original_response(document) -> FileResponse:
    """The document's stored file as it was sent (a CDA's XML byte for byte), as a download."""
    response = decrypted_file_response(document.file, document.mime_type)
    return protected_file_response(response, document_file_name(document))


def decrypted_file_response(stored, content_type: str) -> FileResponse:
    """A stored file (a FileField's value) streamed as it decrypts, a chunk at a time, with
    its decrypted length (the stored file's length would be the ciphertext's)."""
    opened = stored.open("rb")
    response = FileResponse(opened, content_type=content_type)
    response.block_size = CHUNK  # read as the chunks decrypt
    response["Content-Length"] = str(opened.file.size)
    return response


def document_file_name(document) -> str:
    """A file name that says nothing about the person or the content."""
    return f"document-{document.pk}.{_EXTENSIONS.get(document.mime_type, 'bin')}"


_EXTENSIONS = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg", "application/xml": "xml"}


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


def synthesis_cda_response(actor: Actor, record) -> HttpResponse:
    """The latest synthesis as a CDA R2 VSM document (docs/cda.md), for whoever may read the
    synthesis: the read is logged as one (Action.VIEW_SYNTHESIS); refused, or none written yet,
    is 404. A download like every stored file, named by its version only."""
    from .cda.vsm import vsm_document

    synthesis = synthesis_for(actor, record)
    if synthesis is None:
        raise Http404
    response = HttpResponse(vsm_document(synthesis), content_type="application/xml")
    return protected_file_response(response, f"synthesis-v{synthesis.version}.xml")


def patient_summary_response(content) -> HttpResponse:
    """The International Patient Summary PDF of a `SummaryContent` a selector loaded through the
    policy, with the protected files' headers: a download named without identity, no-store."""
    from .summary_pdf import summary_pdf

    response = HttpResponse(summary_pdf(content), content_type="application/pdf")
    return protected_file_response(response, "patient-summary.pdf")
