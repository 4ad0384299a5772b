"""What a stored CDA document shows: its header, the HTML of its narrative (level 3), the file it
wraps (level 1), and a PDF of the rendering for printing and the export.

Rendered on the fly from the decrypted XML, never stored: the original is the one copy, kept
byte for byte and encrypted like every file; a rendering kept beside it would be a second copy
of medical content to encrypt, rotate and purge, and would go stale when the whitelist
(`narrative.py`) improves. Parsing a stored document costs milliseconds (it was checked on the
way in, bounded in size and depth)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from .. import pdf
from ..file_safety import CDA_MIME, sniff_mime_type
from .hardened import embedded, parse
from .header import CdaHeader, read_header
from .narrative import body_html


@dataclass(frozen=True)
class CdaReading:
    header: CdaHeader
    html: SafeString  # the sections' narrative (empty for level 1)
    embedded_mime: str = ""
    embedded_content: bytes = b""


def is_cda(document) -> bool:
    return document.mime_type == CDA_MIME


def original_bytes(document) -> bytes:
    with document.file.open("rb") as stored:
        return stored.read()


def reading_of(document) -> CdaReading:
    """The stored CDA of a document the caller loaded through a selector, read again."""
    return read(original_bytes(document))


def read(content: bytes) -> CdaReading:
    root = parse(content)
    header = read_header(root)
    wrapped = _wrapped(root)
    if wrapped is None:
        return CdaReading(header, body_html(root))
    inner, mime = wrapped
    return CdaReading(header, SafeString(""), mime, inner)


def wrapped_file(content: bytes) -> tuple[bytes, str] | None:
    """The file a level-1 CDA wraps and its type; None for a level-3 document, whose narrative
    is not rendered for that (the thumbnail asks only this)."""
    return _wrapped(parse(content))


def _wrapped(root) -> tuple[bytes, str] | None:
    body = embedded(root)
    if body is None:
        return None
    inner = base64.b64decode("".join(body[1].split()))
    return inner, _sniffed(inner)


def _sniffed(content: bytes) -> str:
    return sniff_mime_type(content) or "application/octet-stream"


def _no_fetch(url: str, *args, **kwargs):
    raise ValueError("a CDA rendering fetches nothing")


def rendering_pdf(reading: CdaReading, *, title: str) -> bytes:
    """The rendering as a PDF (WeasyPrint), which fetches no resource whatever the HTML says."""
    html = render_to_string("documents/cda_print.html", {"reading": reading, "title": title})
    return pdf.write_pdf(html, url_fetcher=_no_fetch)


def opened(document) -> tuple[bytes, str]:
    """What opens when a CDA document is opened: the file a level-1 document wraps, or the PDF
    of a level-3 document's rendering."""
    reading = reading_of(document)
    if reading.embedded_content:
        return reading.embedded_content, reading.embedded_mime
    return rendering_pdf(reading, title=document.title), "application/pdf"
