"""Files that cannot hurt: every document is checked here once, before anything parses it.

`check_file()` is called by `dmp.services.documents` for every way a document comes in (the
patient's upload, a professional's add, a counter deposit, the insurer's feed, the FHIR API):

1. empty or over DOCUMENT_MAX_BYTES: refused, nothing read;
2. the antivirus (ClamAV's clamd, INSTREAM over TCP or a unix socket), when CLAMD_ADDRESS is
   set — always in production, the settings refuse to start without it. A file it finds is
   refused with the signature's name; a clamd that cannot be reached or answers an error
   refuses the file too ("cannot be checked now"): nothing is stored unscanned;
3. the format by its first bytes (PDF, PNG, JPEG, XML for a CDA R2 document), never by the
   name the browser sent;
4. the parsing itself, in a child process with no environment, a memory and a CPU limit and a
   wall-clock timeout, forked for each file by the inspecting server (`dmp/file_inspect.py`,
   started once per process with the parsers imported: a file costs a fork, not an
   interpreter): page count, decompressed size, pixel count,
   active content in PDFs (refused, never rewritten), images decoded and encoded again without
   metadata, a PDF's words for the search; a CDA parsed without DTD or entities, its header
   required, its embedded file checked as a PDF or image is (docs/cda.md). A child that runs out of time or memory is a
   refusal ("too complex"), not a server that stalls.

The result carries the bytes to store (a re-encoded image, or the PDF as sent), their type,
SHA-256 and the text read. Refusals are `InvalidInput` with a message that names the reason;
the batch code puts the file's name in front of it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import struct
import subprocess  # the inspector: our own interpreter and script, fixed arguments, no shell
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _

from .cda.header import CdaHeader, header_of
from .services import InvalidInput, InvalidInputCode

logger = logging.getLogger(__name__)

INSPECTOR = Path(__file__).with_name("file_inspect.py")

# Accepted formats, recognised by their first bytes, never by the name the browser sent.
_SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


CDA_MIME = "application/xml"
_WEB_PAGE = re.compile(rb"<(!doctype\s+html|html[\s>])", re.IGNORECASE)


def sniff_mime_type(content: bytes) -> str | None:
    for signature, mime in _SIGNATURES:
        if content.startswith(signature):
            return mime
    # XML (a CDA R2 document): a byte-order mark and blanks, then markup. The inspector decides
    # whether it is a ClinicalDocument. A web page is markup too, but never a CDA: it is told
    # which formats are accepted rather than that it is not well-formed XML.
    markup = content.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if markup.startswith(b"<") and not _WEB_PAGE.match(markup):
        return CDA_MIME
    return None


@dataclass(frozen=True)
class CheckedFile:
    """A file that passed every check: what to store and what was read from it on the way."""

    content: bytes  # what is stored: the PDF as sent, or the image encoded again
    mime: str
    digest: str  # SHA-256 of `content`
    text: str  # a PDF's text layer (bounded), empty for images
    pages: int | None = None  # a PDF's page count
    cda: CdaHeader | None = None  # a CDA document's header (`dmp/cda/header.py`)


def check_file(content: bytes, *, scan: bool = True) -> CheckedFile:
    """Every check of the module docstring, in that order. `scan=False` skips the antivirus
    (a maintenance command reading files already stored). Raises InvalidInput."""
    if not content:
        raise InvalidInput(_("The file is empty."), code=InvalidInputCode.MISSING)
    if len(content) > settings.DOCUMENT_MAX_BYTES:
        raise InvalidInput(
            _("The file is too large (at most %(mb)d MB).") % {"mb": settings.DOCUMENT_MAX_BYTES // 2**20},
            code=InvalidInputCode.LIMIT,
        )
    if scan:
        antivirus_scan(content)
    mime = sniff_mime_type(content)
    if mime is None:
        raise InvalidInput(_refusal_message("format", ""), code=InvalidInputCode.FILE_REFUSED)
    verdict = _inspect(content, mime)
    stored = base64.b64decode(verdict["content"]) if verdict.get("content") else content
    # A CDA passed the inspector's hardened parse: its header is read here, kept as sent.
    header = header_of(content) if mime == CDA_MIME else None
    return CheckedFile(stored, mime, hashlib.sha256(stored).hexdigest(), verdict.get("text") or "",
                       verdict.get("pages"), header)


# --- the inspector process -------------------------------------------------------------------


def _limits() -> dict:
    return {
        "max_pages": settings.DOCUMENT_MAX_PAGES,
        "max_decompressed_bytes": settings.DOCUMENT_MAX_DECOMPRESSED_BYTES,
        "max_pixels": settings.DOCUMENT_MAX_PIXELS,
        "cpu_seconds": settings.DOCUMENT_CHECK_SECONDS,
        "memory_bytes": settings.DOCUMENT_CHECK_MEMORY_MB * 2**20,
    }


def limited(argv: list[str]) -> list[str]:
    """`argv` run under the check's memory and CPU limits (util-linux's prlimit), for the other
    tools that read a stored file (pdftoppm draws the thumbnails). Unchanged without prlimit."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return argv
    limits = _limits()
    return [prlimit, f"--as={limits['memory_bytes']}", f"--cpu={limits['cpu_seconds']}", "--core=0", "--", *argv]


class _InspectingServer:
    """The inspector (`dmp/file_inspect.py`) as a server of this process: started on first use
    with no environment, it forks one child per file from parsers already imported. Started
    again when it is gone, when this process is a fork of the one that started it (a
    pre-forking web server), or when `INSPECTOR` names another script (the tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        self._started_by: tuple[int, Path] | None = None

    def _start(self) -> socket.socket:
        self._stop()
        ours, theirs = socket.socketpair()
        with theirs:
            self._process = subprocess.Popen(  # noqa: S603 - our interpreter and script, fixed arguments
                [sys.executable, "-I", str(INSPECTOR), str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                env={}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._control, self._started_by = ours, (os.getpid(), INSPECTOR)
        return ours

    def _stop(self) -> None:
        if self._control is not None:
            self._control.close()  # the server reads the end of its input and exits
        if self._process is not None and self._started_by and self._started_by[0] == os.getpid():
            self._process.wait()
        self._process = self._control = self._started_by = None

    def _running(self) -> socket.socket:
        alive = self._process is not None and self._process.poll() is None
        if alive and self._started_by == (os.getpid(), INSPECTOR):
            return self._control
        return self._start()

    def child(self) -> tuple[socket.socket, int]:
        """A connected socket to a new child, and its pid. Raises OSError."""
        ours, theirs = socket.socketpair()
        with theirs, self._lock:
            for attempt in (1, 2):  # a server that died since its last file is started again
                control = self._running()
                try:
                    control.settimeout(_CONTROL_SECONDS)
                    socket.send_fds(control, [b"F"], [theirs.fileno()])
                    answer = control.recv(8)
                    if len(answer) == 8:
                        return ours, struct.unpack("!q", answer)[0]
                except OSError:
                    if attempt == 2:
                        ours.close()
                        raise
                self._stop()
        ours.close()
        raise OSError("the file inspector did not start")


_CONTROL_SECONDS = 5
_SERVER = _InspectingServer()


def _exchange(conn: socket.socket, request: bytes, seconds: float) -> bytes:
    """Send the request, read the whole answer, within `seconds` in all. Raises TimeoutError."""
    deadline = time.monotonic() + seconds
    view, chunks = memoryview(request), []
    while view:
        conn.settimeout(max(deadline - time.monotonic(), 0.001))
        view = view[conn.send(view):]
    conn.shutdown(socket.SHUT_WR)
    while True:
        conn.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = conn.recv(1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _inspect(content: bytes, mime: str) -> dict:
    limits = _limits()
    header = json.dumps({"mime": mime, "limits": limits, "size": len(content)}).encode()
    try:
        conn, pid = _SERVER.child()
    except OSError:
        logger.exception("file check: the inspector cannot start")
        raise InvalidInput(_("This file cannot be checked right now: nothing was added, try again in a few "
                             "minutes."), code=InvalidInputCode.UNAVAILABLE) from None
    with conn:
        try:
            answer = _exchange(conn, header + b"\n" + content, settings.DOCUMENT_CHECK_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            logger.warning("file check: %s took longer than %ds, refused", mime, settings.DOCUMENT_CHECK_SECONDS)
            raise InvalidInput(_refusal_message("too_complex", ""), code=InvalidInputCode.FILE_REFUSED) from None
        except OSError:  # the child died while we were still sending: see below
            answer = b""
    try:
        verdict = json.loads(answer)
    except ValueError:
        verdict = None
    if not isinstance(verdict, dict):
        # Killed at its memory or CPU limit, or crashed inside a parser: the file is refused.
        logger.warning("file check: %s inspector ended without a verdict, refused", mime)
        raise InvalidInput(_refusal_message("too_complex", ""), code=InvalidInputCode.FILE_REFUSED)
    if "refused" in verdict:
        logger.info("file check: %s refused (%s)", mime, verdict["refused"])
        raise InvalidInput(_refusal_message(str(verdict["refused"]), str(verdict.get("detail") or "")),
                           code=InvalidInputCode.FILE_REFUSED)
    return verdict


def _active_content_names() -> dict[str, str]:
    return {
        "javascript": _("JavaScript"),
        "open_action": _("an action run when it opens (/OpenAction)"),
        "launch": _("a command that starts a program (/Launch)"),
        "automatic_action": _("actions run automatically (/AA)"),
        "embedded_file": _("an embedded file"),
        "multimedia": _("multimedia content"),
        "xfa_form": _("an XFA form, which can run scripts"),
    }


def _refusal_message(code: str, detail: str) -> str:
    if code == "active":
        what = _active_content_names().get(detail, detail)
        return _("This PDF contains active content (%(what)s), which could act on the reader's computer: "
                 "print it to a new PDF or scan it, then add it again.") % {"what": what}
    if code == "pages":
        return _("This PDF has too many pages (%(pages)s, at most %(max)d): split it into several files.") % {
            "pages": detail, "max": settings.DOCUMENT_MAX_PAGES}
    if code == "decompressed":
        return _("This PDF holds more data than it shows (over %(mb)d MB once opened): it was refused.") % {
            "mb": settings.DOCUMENT_MAX_DECOMPRESSED_BYTES // 2**20}
    if code == "missing":
        return _("This is not a complete CDA R2 document: its header has no %(missing)s.") % {"missing": detail}
    if code == "pixels":
        return _("This image is too large (%(size)s pixels, at most %(max)d million).") % {
            "size": detail or "?", "max": settings.DOCUMENT_MAX_PIXELS // 1_000_000}
    messages = {
        "pdf_password": _("This PDF is protected by a password: remove the protection, then add it again."),
        "pdf_no_page": _("This file is not a valid PDF (it has no page)."),
        "pdf_invalid": _("This file is not a valid PDF."),
        "image_invalid": _("This file is not a valid image."),
        "format": _("Only PDF files, images (PNG, JPEG) and CDA R2 documents (XML) can be added to a record."),
        "dtd": _("This XML file declares a DTD or entities, which a CDA document never does: it was refused."),
        "xml_invalid": _("This file is not well-formed XML."),
        "too_deep": _("This XML file is nested too deeply to be read safely: it was refused."),
        "not_cda": _("This XML file is not a CDA R2 document (a ClinicalDocument in the HL7 v3 namespace)."),
        "cda_embedded": _("The file inside this CDA document is not a PDF, PNG or JPEG file."),
    }
    return messages.get(code) or _(
        "This file is too complex to be checked safely (it takes too long or too much memory to open): "
        "it was refused.")


# --- the antivirus ---------------------------------------------------------------------------

_CHUNK = 64 * 1024


def _unavailable() -> InvalidInput:
    return InvalidInput(_("This file cannot be checked for viruses right now: nothing was added, "
                          "try again in a few minutes."), code=InvalidInputCode.UNAVAILABLE)


def _clamd_socket(address: str, timeout: float) -> socket.socket:
    """A connected socket to clamd: `tcp://host:port`, or `unix:///path` (or a bare path)."""
    if address.startswith("tcp://"):
        host, _sep, port = address[len("tcp://"):].rpartition(":")
        return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    path = address[len("unix://"):] if address.startswith("unix://") else address
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def clamd_instream(content: bytes, *, address: str, timeout: float) -> str:
    """clamd's answer for `content` sent with INSTREAM: "stream: OK", "stream: <name> FOUND"
    or "... ERROR". Raises OSError when clamd cannot be reached or does not answer in time."""
    with _clamd_socket(address, timeout) as sock:
        sock.sendall(b"zINSTREAM\0")
        for start in range(0, len(content), _CHUNK):
            chunk = content[start:start + _CHUNK]
            sock.sendall(struct.pack(">I", len(chunk)) + chunk)
        sock.sendall(struct.pack(">I", 0))
        reply = b""
        while not reply.endswith(b"\0"):
            part = sock.recv(4096)
            if not part:
                break
            reply += part
    return reply.rstrip(b"\0").decode("utf-8", "replace").strip()


def antivirus_scan(content: bytes) -> None:
    """Refuse a file clamd finds (InvalidInput naming the signature). Fails closed: when
    CLAMD_ADDRESS is set and clamd cannot be reached or answers an error, the file is refused
    with "try again"; when it is not set (development, tests), nothing is scanned."""
    address = settings.CLAMD_ADDRESS
    if not address:
        return
    try:
        reply = clamd_instream(content, address=address, timeout=settings.CLAMD_TIMEOUT_SECONDS)
    except (OSError, ValueError) as exc:
        logger.warning("antivirus: clamd unreachable (%s), file refused", type(exc).__name__)
        raise _unavailable() from None
    if reply.endswith(" FOUND"):
        name = reply.removeprefix("stream:").removesuffix(" FOUND").strip()
        logger.warning("antivirus: clamd found %s, file refused", name)
        raise InvalidInput(_("This file contains a virus (%(name)s): it was refused.") % {"name": name},
                           code=InvalidInputCode.FILE_REFUSED)
    if not reply.endswith(" OK"):
        # e.g. "INSTREAM size limit exceeded. ERROR": StreamMaxLength below DOCUMENT_MAX_BYTES.
        logger.warning("antivirus: clamd answered an error (%s), file refused", reply[:200])
        raise _unavailable()
