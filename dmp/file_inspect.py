"""Open an uploaded file in a process of its own, under limits, and say what it is.

Started by `dmp.file_safety` as `python -I dmp/file_inspect.py <fd>`: a small server that
imports the parsers once, then for each file the parent passes it a socket over `<fd>` and
forks a child that reads the request (mime, limits, the file) from that socket and answers
one JSON object on it. It imports nothing of Django and is given no environment (no secret, no
database address): a file crafted to crash or take over a PDF or image parser then does so in
a throwaway child that holds nothing, may use only `memory_bytes` of memory and `cpu_seconds`
of processor time, and is killed by the parent at its wall-clock limit.

- A PDF must open (pikepdf), have at most `max_pages` pages, no active content (JavaScript,
  an action run on opening, a command launching a program, automatic actions, multimedia,
  an XFA form, an embedded file), streams that decompress to at most `max_decompressed_bytes` in all (a
  Flate stream is inflated piece by piece and abandoned past the budget: a bomb costs
  milliseconds) and images of at most `max_pixels`. Then the words of its first pages are
  read (pypdf) for the full-text search. The PDF itself is kept as sent: it is refused, never
  rewritten.
- An image (PNG, JPEG) must have at most `max_pixels` pixels, read from its header before any
  decoding; it is then decoded and encoded again into a fresh file of the same format, the
  right way up, without metadata: whatever was hidden in its chunks or after its end (a
  PNG/HTML polyglot) is gone.

- A CDA R2 document (XML) is parsed by `dmp/cda/hardened.py` (no DTD, no entity, no network,
  bounded depth) and must have the CDA header; a level-1 document's embedded PDF or image is
  checked as above (never rewritten: the XML is kept as sent), a level-3 document's narrative
  is its text.

Answers: {"mime", "pages", "text", "content" (base64, images only)} or {"refused": code,
"detail": text}. The parent turns the codes into translated messages.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import re
import resource
import signal
import socket
import struct
import sys
import zlib

TEXT_MAX_PAGES = 30
TEXT_MAX_CHARS = 100_000
_INFLATE_CHUNK = 1 << 20


class Refused(Exception):  # noqa: N818 - a verdict, not an error of this program
    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


# --- PDF -------------------------------------------------------------------------------------

# Dictionary keys that make a PDF act on its own, and action types (/S) that run something.
_ACTIVE_KEYS = {
    "/JS": "javascript", "/JavaScript": "javascript", "/AA": "automatic_action",
    "/EmbeddedFiles": "embedded_file", "/EF": "embedded_file", "/RichMedia": "multimedia",
    "/RichMediaContent": "multimedia",
    "/XFA": "xfa_form",  # XML forms carry their scripts inside XML streams, out of sight of /JS
}
_ACTIVE_ACTIONS = {
    "/JavaScript": "javascript", "/Launch": "launch", "/RichMediaExecute": "multimedia",
    "/ImportData": "launch",
}
_ACTIVE_TYPES = {"/EmbeddedFile": "embedded_file", "/FileAttachment": "embedded_file", "/RichMedia": "multimedia"}


def _active_content(pdf) -> str | None:
    """The first kind of active content found in any object of the PDF, else None. Every
    indirect object is visited once; the direct objects inside it are walked from it."""
    import pikepdf

    def walk(obj, depth: int) -> str | None:
        if depth > 200:
            raise Refused("too_complex")
        if isinstance(obj, pikepdf.Stream):
            obj = obj.stream_dict
        if isinstance(obj, pikepdf.Dictionary):
            for key in obj.keys():  # noqa: SIM118 - a pikepdf Dictionary, not a dict
                if key in _ACTIVE_KEYS:
                    return _ACTIVE_KEYS[key]
                value = obj.get(key)
                if key == "/OpenAction" and isinstance(value, pikepdf.Dictionary):
                    # An array is only the page and zoom to open at (LibreOffice writes one);
                    # a dictionary is an action run as the file opens.
                    return "open_action"
                if key == "/S" and isinstance(value, pikepdf.Name) and str(value) in _ACTIVE_ACTIONS:
                    return _ACTIVE_ACTIONS[str(value)]
                if key in ("/Type", "/Subtype") and isinstance(value, pikepdf.Name) and str(value) in _ACTIVE_TYPES:
                    return _ACTIVE_TYPES[str(value)]
                if isinstance(value, pikepdf.Dictionary | pikepdf.Array | pikepdf.Stream) and not value.is_indirect:
                    found = walk(value, depth + 1)
                    if found:
                        return found
        elif isinstance(obj, pikepdf.Array):
            for value in obj:
                if isinstance(value, pikepdf.Dictionary | pikepdf.Array | pikepdf.Stream) and not value.is_indirect:
                    found = walk(value, depth + 1)
                    if found:
                        return found
        return None

    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Dictionary | pikepdf.Array | pikepdf.Stream):
            found = walk(obj, 0)
            if found:
                return found
    # The trailer is not an object of the file but may point at direct dictionaries too.
    return walk(pdf.trailer, 0)


def _filters(stream) -> list[str]:
    import pikepdf

    value = stream.stream_dict.get("/Filter")
    if value is None:
        return []
    if isinstance(value, pikepdf.Array):
        return [str(item) for item in value]
    return [str(value)]


def _inflated_size(raw: bytes, budget: int) -> int:
    """How many bytes a Flate stream inflates to, stopping as soon as it passes `budget`."""
    inflater = zlib.decompressobj()
    size = 0
    data = raw
    try:
        while data and size <= budget:
            size += len(inflater.decompress(data, _INFLATE_CHUNK))
            data = inflater.unconsumed_tail
        if size <= budget and not inflater.eof:
            size += len(inflater.flush())
    except zlib.error:
        pass  # a damaged stream inflates no further: what came out is what counts
    return size


def _check_streams(pdf, limits: dict) -> None:
    import pikepdf

    budget = limits["max_decompressed_bytes"]
    total = 0
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Stream):
            continue
        details = obj.stream_dict
        if details.get("/Subtype") == pikepdf.Name.Image:
            try:
                pixels = int(details.get("/Width", 0)) * int(details.get("/Height", 0))
            except (TypeError, ValueError):
                pixels = 0
            if pixels > limits["max_pixels"]:
                raise Refused("pixels", f"{int(details.get('/Width', 0))}×{int(details.get('/Height', 0))}")
        filters = _filters(obj)
        try:
            if filters and filters[0] == "/FlateDecode":
                size = _inflated_size(obj.read_raw_bytes(), budget - total)
            elif filters and filters[0] in ("/DCTDecode", "/JPXDecode", "/JBIG2Decode", "/CCITTFaxDecode"):
                size = len(obj.read_raw_bytes())  # images: bounded by their pixels, checked above
            else:
                size = len(obj.read_bytes())
        except pikepdf.PdfError:
            size = len(obj.read_raw_bytes())  # a stream that does not decode is not a bomb
        total += size
        if total > budget:
            raise Refused("decompressed")


def _pdf_text(content: bytes) -> str:
    """The words of the first TEXT_MAX_PAGES pages, at most TEXT_MAX_CHARS characters."""
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(content))
        if reader.is_encrypted and not reader.decrypt(""):
            raise Refused("pdf_password")
        pages = reader.pages
        if len(pages) == 0:
            raise Refused("pdf_no_page")
    except Refused:
        raise
    except Exception as exc:  # pypdf raises many kinds of errors on a broken file
        raise Refused("pdf_invalid") from exc
    parts: list[str] = []
    length = 0
    for page in itertools.islice(pages, TEXT_MAX_PAGES):
        try:
            words = page.extract_text() or ""
        except Exception:  # noqa: S112 - one unreadable page does not make the document unreadable
            continue
        # PostgreSQL text cannot hold NUL; runs of spaces and line breaks say nothing to a search.
        words = re.sub(r"\s+", " ", words.replace("\x00", " ")).strip()
        if words:
            parts.append(words)
            length += len(words) + 1
        if length >= TEXT_MAX_CHARS:
            break
    return "\n".join(parts)[:TEXT_MAX_CHARS]


def inspect_pdf(content: bytes, limits: dict) -> dict:
    import pikepdf

    try:
        pdf = pikepdf.open(io.BytesIO(content))
    except pikepdf.PasswordError:
        raise Refused("pdf_password") from None
    except Exception:
        raise Refused("pdf_invalid") from None
    with pdf:
        try:
            pages = len(pdf.pages)
        except Exception:
            raise Refused("pdf_invalid") from None
        if pages == 0:
            raise Refused("pdf_no_page")
        if pages > limits["max_pages"]:
            raise Refused("pages", str(pages))
        active = _active_content(pdf)
        if active:
            raise Refused("active", active)
        _check_streams(pdf, limits)
    return {"mime": "application/pdf", "pages": pages, "text": _pdf_text(content)}


# --- images ----------------------------------------------------------------------------------

_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}
_KEPT_MODES = {"PNG": {"1", "L", "LA", "RGB", "RGBA", "I;16"}, "JPEG": {"L", "RGB", "CMYK"}}


def inspect_image(content: bytes, mime: str, limits: dict) -> dict:
    from PIL import Image, ImageOps

    fmt = _FORMATS[mime]
    # Our limit replaces Pillow's own guard (a warning at 89 megapixels, an error at twice that),
    # checked below on the header's size before anything is decoded.
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(io.BytesIO(content), formats=[fmt]) as opened:
            width, height = opened.size  # from the header: nothing decoded yet
            if width * height > limits["max_pixels"]:
                raise Refused("pixels", f"{width}×{height}")
            opened.load()
            image = ImageOps.exif_transpose(opened)  # phone photos: the right way up, then no EXIF
    except Refused:
        raise
    except MemoryError:
        raise
    except Exception:
        raise Refused("image_invalid") from None
    if image.mode not in _KEPT_MODES[fmt]:
        has_alpha = fmt == "PNG" and (image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info)
        image = image.convert("RGBA" if has_alpha else "RGB")
    image.info = {}  # no metadata is carried over: text chunks, EXIF, ICC profile, comments
    out = io.BytesIO()
    if fmt == "PNG":
        image.save(out, "PNG")
    else:
        image.save(out, "JPEG", quality=92)
    return {"mime": mime, "pages": None, "text": "", "content": base64.b64encode(out.getvalue()).decode()}


# --- CDA R2 ----------------------------------------------------------------------------------

CDA_MIME = "application/xml"
_EMBEDDED = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def _hardened():
    """dmp/cda/hardened.py, loaded by its path: this process imports nothing of the project's
    package (whose import would start Django's pieces)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("cda_hardened", Path(__file__).parent / "cda" / "hardened.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def inspect_cda(content: bytes, limits: dict) -> dict:
    hardened = _hardened()
    try:
        root = hardened.parse(content)
        hardened.check_structure(root)
    except hardened.CdaRefused as refusal:
        raise Refused(refusal.code, refusal.detail) from None
    body = hardened.embedded(root)
    if body is None:
        return {"mime": CDA_MIME, "pages": None, "text": hardened.narrative_text(root), "level": 3}
    try:
        inner = base64.b64decode("".join(body[1].split()), validate=True)
    except ValueError:
        raise Refused("cda_embedded") from None
    mime = next((m for signature, m in _EMBEDDED if inner.startswith(signature)), None)
    if mime is None:
        raise Refused("cda_embedded")
    verdict = inspect_pdf(inner, limits) if mime == "application/pdf" else inspect_image(inner, mime, limits)
    return {"mime": CDA_MIME, "pages": verdict["pages"], "text": verdict["text"], "level": 1, "embedded": mime}


# --- the process -----------------------------------------------------------------------------


def _limit_self(limits: dict) -> None:
    memory = limits["memory_bytes"]
    cpu = limits["cpu_seconds"]
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # writes no file anywhere


_INVALID = {"application/pdf": "pdf_invalid", CDA_MIME: "xml_invalid"}


def inspect(mime: str, limits: dict, content: bytes) -> dict:
    """The verdict on one file: what it is, or why it is refused. Never raises."""
    try:
        if mime == "application/pdf":
            return inspect_pdf(content, limits)
        if mime in _FORMATS:
            return inspect_image(content, mime, limits)
        if mime == CDA_MIME:
            return inspect_cda(content, limits)
        raise Refused("format")
    except Refused as refusal:
        return {"refused": refusal.code, "detail": refusal.detail}
    except (MemoryError, RecursionError):
        return {"refused": "too_complex", "detail": ""}
    except Exception:  # a parser's error on a damaged file: not a valid file, not a crash
        return {"refused": _INVALID.get(mime, "image_invalid"), "detail": ""}


def _preload() -> None:
    """The parsers, imported once in the server so that each child starts with them (a fork
    costs milliseconds; importing pikepdf, pypdf and Pillow again costs a tenth of a second)."""
    import pikepdf  # noqa: F401
    import pypdf  # noqa: F401
    from PIL import Image, ImageOps, JpegImagePlugin, PngImagePlugin  # noqa: F401

    _hardened()


def _answer(conn: socket.socket) -> None:
    """In a child: limit ourselves, read one request (a JSON line: mime, limits, size; then the
    file), answer the verdict as JSON and close."""
    with conn, conn.makefile("rb") as stream:
        header = json.loads(stream.readline(4096))
        limits = header["limits"]
        _limit_self(limits)
        # The parent gives up and kills us at cpu_seconds of wall-clock time; this is the
        # backstop should it be gone.
        signal.alarm(int(limits["cpu_seconds"]) + 2)
        content = stream.read(int(header["size"]))
        conn.sendall(json.dumps(inspect(header["mime"], limits, content)).encode())


def serve(control_fd: int) -> int:
    """The inspecting server: wait for a socket from the parent on `control_fd`, fork a child
    that answers on it, tell the parent the child's pid (to kill it at its time limit). Ends
    when the parent closes its end (it exited, or it started a new server)."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    _preload()
    control = socket.socket(fileno=control_fd)
    while True:
        try:
            message, fds, _flags, _address = socket.recv_fds(control, 1, 1)
        except OSError:
            return 0
        if not message:
            return 0
        if not fds:
            continue
        pid = os.fork()
        if pid == 0:  # the child: nothing of the server's but the parsers and its socket
            control.close()
            try:
                _answer(socket.socket(fileno=fds[0]))
            finally:
                os._exit(0)
        os.close(fds[0])
        control.sendall(struct.pack("!q", pid))


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1])))
