"""Files that cannot hurt, tried as an attacker would: every malicious file is refused with the
file and the reason named and nothing of its batch stored (no row, no file), whichever way it
comes in (the patient's upload and the professional's add through the views; the counter
deposit, the insurer's feed and the FHIR API); images are stored encoded again, without what
was hidden in them; the antivirus is a real clamd holding a test signature for EICAR, and a
clamd that cannot be reached refuses the file; production does not start without one; and
every response carrying a stored file is a sandboxed download."""

from __future__ import annotations

import base64
import functools
import io
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import zlib
from datetime import date
from pathlib import Path

import pikepdf
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from dmp import file_safety
from dmp.models import Document, DocumentType, RecordExport
from dmp.policy import Actor
from dmp.services import (
    InvalidFiles,
    InvalidInput,
    NewDocument,
    api_token_create,
    document_add,
    document_import,
)
from dmp.services.documents import document_deposit_batch
from tests.fresh_starts import manage_each
from tests.personas import titled
from tests.sample_files import image_bytes, text_pdf
from tests.test_deployment import _production_environment

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CLAMD = "/usr/sbin/clamd"  # Debian's clamav-daemon, installed by `make test`


def _titled_one(world, title: str) -> Document:
    (document,) = titled(world.record.documents.all(), title)
    return document


# --- the malicious files ---------------------------------------------------------------------


def _saved(pdf: pikepdf.Pdf) -> bytes:
    out = io.BytesIO()
    # Streams written as they are: nothing decompressed or compressed again on the way.
    pdf.save(out, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return out.getvalue()


def _report(change) -> bytes:
    """An honest one-page report with text, then `change` applied to it."""
    pdf = pikepdf.open(io.BytesIO(text_pdf("Compte rendu de consultation")))
    change(pdf)
    return _saved(pdf)


def pdf_with_javascript() -> bytes:
    def change(pdf):
        script = pdf.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.JavaScript,
                                                      JS=pikepdf.String("app.alert('pwned')")))
        pdf.Root.Names = pikepdf.Dictionary(JavaScript=pikepdf.Dictionary(
            Names=pikepdf.Array([pikepdf.String("a"), script])))
    return _report(change)


def pdf_with_open_action() -> bytes:
    def change(pdf):  # a tracking beacon fired as the file opens
        pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://evil.example/t"))
    return _report(change)


def pdf_with_launch() -> bytes:
    def change(pdf):
        link = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link,
                                  Rect=pikepdf.Array([0, 0, 595, 842]),
                                  A=pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("cmd.exe")))
        pdf.pages[0].Annots = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(link)]))
    return _report(change)


def pdf_with_embedded_file() -> bytes:
    def change(pdf):
        pdf.attachments["invoice.exe"] = pikepdf.AttachedFileSpec(pdf, b"MZ not really a program")
    return _report(change)


def pdf_with_automatic_action() -> bytes:
    def change(pdf):
        pdf.pages[0].AA = pikepdf.Dictionary(O=pikepdf.Dictionary(S=pikepdf.Name.URI,
                                                                  URI=pikepdf.String("https://evil.example/")))
    return _report(change)


def pdf_with_xfa_form() -> bytes:
    def change(pdf):
        xfa = pdf.make_stream(b"<xdp:xdp><script contentType='application/x-javascript'>app.alert(1)</script>"
                              b"</xdp:xdp>")
        pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array(), XFA=xfa)
    return _report(change)


def pdf_opening_at_its_first_page() -> bytes:
    """What LibreOffice writes: /OpenAction as a destination (page and zoom), not an action."""
    def change(pdf):
        pdf.Root.OpenAction = pikepdf.Array([pdf.pages[0].obj, pikepdf.Name.Fit])
    return _report(change)


# Built once per process: deflating 400 MB takes two seconds, and each test sends the same bytes.
@functools.cache
def pdf_bomb(megabytes: int = 400) -> bytes:
    """One page whose content stream is 400 MB of spaces, deflated to a few hundred KB."""
    deflate = zlib.compressobj(9)
    block = b" " * 2**20
    data = b"".join(deflate.compress(block) for _ in range(megabytes)) + deflate.flush()
    pdf = pikepdf.open(io.BytesIO(text_pdf("bombe")))
    stream = pikepdf.Stream(pdf, b"")
    stream.write(data, filter=pikepdf.Name.FlateDecode)
    pdf.pages[0].Contents = pdf.make_indirect(stream)
    return _saved(pdf)


def pdf_with_pages(count: int) -> bytes:
    pdf = pikepdf.new()
    for _ in range(count):
        pdf.add_blank_page()
    return _saved(pdf)


def pdf_with_eicar() -> bytes:
    def change(pdf):
        pdf.Root.Extra = pdf.make_stream(EICAR)  # stored as is (no filter)
    content = _report(change)
    assert EICAR in content
    return content


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.cache  # as the PDF bomb: the same bytes for every test
def png_pixel_bomb(side: int = 20000) -> bytes:
    """A valid 20000×20000 black-and-white PNG: 400 megapixels in about 60 KB."""
    deflate = zlib.compressobj(9)
    row = b"\0" * (1 + side // 8)
    pixels = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixels)
            + _png_chunk(b"IEND", b""))


HTML = b"<html><body><script>fetch('/portal/').then(r => r.text()).then(steal)</script></body></html>"


def png_html_polyglot() -> bytes:
    """A real PNG that is also an HTML page: a script in a text chunk and after the image's end."""
    png = image_bytes("PNG", colour=(10, 200, 30))
    after_header = 8 + 25  # signature, then the IHDR chunk
    return png[:after_header] + _png_chunk(b"tEXt", b"Comment\0" + HTML) + png[after_header:] + HTML


MALICIOUS = {
    "javascript.pdf": (pdf_with_javascript, "This PDF contains active content (JavaScript)"),
    "open-action.pdf": (pdf_with_open_action, "This PDF contains active content (an action run when it opens"),
    "launch.pdf": (pdf_with_launch, "This PDF contains active content (a command that starts a program (/Launch))"),
    "embedded.pdf": (pdf_with_embedded_file, "This PDF contains active content (an embedded file)"),
    "auto-action.pdf": (pdf_with_automatic_action, "This PDF contains active content (actions run automatically"),
    "xfa.pdf": (pdf_with_xfa_form, "This PDF contains active content (an XFA form, which can run scripts)"),
    "bomb.pdf": (pdf_bomb, "This PDF holds more data than it shows (over 100 MB once opened)"),
    "pages.pdf": (lambda: pdf_with_pages(201), "This PDF has too many pages (201, at most 200)"),
    "pixels.png": (png_pixel_bomb, "This image is too large (20000×20000 pixels, at most 50 million)"),
}


# --- helpers ---------------------------------------------------------------------------------


def _page(response) -> str:
    return response.content.decode()


def _stored(settings) -> tuple[int, set[Path]]:
    """Every row and every file under the document storage, to show nothing was added."""
    root = Path(settings.MEDIA_ROOT)
    return Document.objects.count(), {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _patient_upload(client, world, files):
    client.force_login(world.alice)
    return client.post(reverse("portal_patient:documents_add", args=[world.record.pk]), {
        "doc_type": DocumentType.PATIENT_DOCUMENT, "act_date": "2025-06-01", "title": "",
        "files": [SimpleUploadedFile(name, content) for name, content in files]})


def _professional_add(client, world, files):
    client.force_login(world.dr_house.user)
    return client.post(reverse("portal_pro:documents_add", args=[world.record.pk]), {
        "files": [SimpleUploadedFile(name, content) for name, content in files]})


PORTALS = {"patient upload": _patient_upload, "professional add": _professional_add}


def _refused_and_nothing_stored(client, world, settings, portal, name, content, message, *, alone=True):
    before = _stored(settings)
    started = time.monotonic()
    response = PORTALS[portal](client, world, [("honest.pdf", text_pdf("Ordonnance honnete")), (name, content)])
    elapsed = time.monotonic() - started
    assert response.status_code == 400, _page(response)[:2000]
    page = re.sub(r"</?bdi[^>]*>", "", _page(response))  # the patient's page isolates file names
    assert "No file was added." in page
    assert f"<strong>{name}</strong>: {message}" in page.replace("&#x27;", "'")
    if alone:
        assert "<strong>honest.pdf</strong>" not in page  # only the refused file is named
    assert _stored(settings) == before
    return elapsed


# --- every malicious file, through both portals ----------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("portal", PORTALS)
@pytest.mark.parametrize("name", MALICIOUS)
def test_a_malicious_file_is_refused_named_with_its_reason_and_nothing_of_the_batch_is_stored(
        client, world, settings, portal, name):
    build, message = MALICIOUS[name]
    _refused_and_nothing_stored(client, world, settings, portal, name, build(), message)


@pytest.mark.django_db
def test_a_decompression_bomb_is_refused_in_a_few_seconds_not_after_minutes_of_work(client, world, settings):
    bomb = pdf_bomb(400)
    assert len(bomb) < 2 * 2**20  # a small file...
    elapsed = _refused_and_nothing_stored(client, world, settings, "patient upload", "bomb.pdf", bomb,
                                          "This PDF holds more data than it shows")
    # ...abandoned as soon as it passes the limit, not inflated to 400 MB: seconds, not minutes,
    # with room for a CI machine running the suite on every core at once.
    assert elapsed < 15


@pytest.mark.django_db
def test_a_pixel_bomb_is_refused_from_its_header_without_being_decoded(client, world, settings):
    elapsed = _refused_and_nothing_stored(client, world, settings, "professional add", "scan.png",
                                          png_pixel_bomb(), "This image is too large")
    assert elapsed < 5


@pytest.mark.django_db
def test_a_png_html_polyglot_is_stored_encoded_again_without_its_html(client, world, settings):
    polyglot = png_html_polyglot()
    assert Image.open(io.BytesIO(polyglot)).size == (120, 80)  # a real image...
    assert HTML in polyglot  # ...and a page with a script
    response = _patient_upload(client, world, [("photo.png", polyglot)])
    assert response.status_code == 302
    document = _titled_one(world, "photo")
    with document.file.open("rb") as stored:
        content = stored.read()
    assert content.startswith(b"\x89PNG\r\n\x1a\n")
    assert b"<script" not in content and b"<html" not in content and b"tEXt" not in content
    assert Image.open(io.BytesIO(content)).getpixel((5, 5)) == (10, 200, 30)  # the same picture
    assert document.size == len(content) and document.content_hash == file_safety.check_file(polyglot).digest
    served = client.get(reverse("portal_patient:document_file", args=[document.pk]))
    body = b"".join(served.streaming_content)
    assert body == content and b"<script" not in body
    assert served["Content-Disposition"].startswith("attachment;")
    assert served["Content-Security-Policy"] == "sandbox; default-src 'none'"


@pytest.mark.django_db
def test_a_phone_photo_is_stored_the_right_way_up_without_its_metadata(client, world):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotated 90° clockwise
    exif[0x010E] = "Alice Martin, 12 rue des Lilas"  # a description: identity in the metadata
    out = io.BytesIO()
    Image.new("RGB", (120, 80), (200, 30, 30)).save(out, "JPEG", exif=exif.tobytes())
    response = _professional_add(client, world, [("photo-plaie.jpg", out.getvalue())])
    assert response.status_code == 302, _page(response)[:2000]
    document = Document.objects.get(added_by=world.dr_house.user)
    with document.file.open("rb") as stored:
        content = stored.read()
    assert document.mime_type == "image/jpeg" and content.startswith(b"\xff\xd8\xff")
    assert b"Alice Martin" not in content and b"Exif" not in content
    assert Image.open(io.BytesIO(content)).size == (80, 120)  # turned as the phone meant it


@pytest.mark.django_db
def test_a_pdf_that_only_opens_at_its_first_page_is_accepted(client, world):
    """LibreOffice writes /OpenAction as a destination: no action, nothing runs."""
    response = _patient_upload(client, world, [("export-libreoffice.pdf", pdf_opening_at_its_first_page())])
    assert response.status_code == 302, _page(response)[:2000]
    assert _titled_one(world, "export-libreoffice").extracted_text == "Compte rendu de consultation"


@pytest.mark.django_db
@pytest.mark.parametrize("portal", PORTALS)
def test_honest_pdfs_pngs_and_jpegs_still_upload_with_their_text_and_thumbnail(client, world, portal):
    response = PORTALS[portal](client, world, [
        ("compte-rendu.pdf", text_pdf("Hemoglobine glyquee 6,1 pour cent")),
        ("radio.png", image_bytes("PNG", colour=(1, 2, 3))),
        ("ordonnance.jpg", image_bytes("JPEG", colour=(4, 5, 6))),
    ])
    assert response.status_code == 302, _page(response)[:2000]
    added = {d.mime_type: d for d in Document.objects.filter(record=world.record).order_by("-pk")[:3]}
    assert set(added) == {"application/pdf", "image/png", "image/jpeg"}
    assert added["application/pdf"].extracted_text == "Hemoglobine glyquee 6,1 pour cent"
    assert added["application/pdf"].thumbnail or not shutil.which("pdftoppm")
    assert added["image/png"].thumbnail and added["image/jpeg"].thumbnail


# --- the other ways in: counter deposit, insurer's feed, FHIR API ----------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["javascript.pdf", "launch.pdf", "bomb.pdf", "pixels.png"])
def test_a_counter_deposit_refuses_the_same_files_and_stores_none_of_the_batch(world, settings, name):
    build, message = MALICIOUS[name]
    before = _stored(settings)
    papers = [NewDocument("titre-de-sejour.pdf", text_pdf("Titre de sejour"), DocumentType.CERTIFICATE,
                          "Titre de séjour", date(2025, 3, 1)),
              NewDocument(name, build(), DocumentType.CERTIFICATE, "Certificat", date(2025, 3, 1))]
    with pytest.raises(InvalidFiles) as refused:
        document_deposit_batch(actor=Actor(world.agent.user), record=world.record, documents=papers)
    assert [(file, reason[:len(message)]) for file, reason in refused.value.errors] == [(name, message)]
    assert _stored(settings) == before


@pytest.mark.django_db
def test_the_insurers_feed_and_a_single_add_refuse_them_too(world, settings):
    before = _stored(settings)
    with pytest.raises(InvalidInput, match="active content"):
        document_import(record=world.record, content=pdf_with_javascript(), doc_type=DocumentType.REIMBURSEMENT_DATA,
                        title="Remboursements", act_date=date(2025, 3, 1), source="CPAM")
    with pytest.raises(InvalidInput, match="too large"):
        document_add(actor=Actor(world.dr_house.user), record=world.record, content=png_pixel_bomb(),
                     doc_type=DocumentType.NON_DICOM_IMAGE, title="Radio", act_date=date(2025, 3, 1))
    assert _stored(settings) == before


@pytest.mark.django_db
def test_the_fhir_api_refuses_a_pdf_with_javascript_and_dedupes_a_reencoded_image(client, world, settings):
    raw = api_token_create(actor=Actor(world.dr_house.user), label="Logiciel de cabinet")[1]

    def push(content: bytes, content_type: str):
        return client.post("/fhir/DocumentReference", {
            "resourceType": "DocumentReference", "status": "current",
            "subject": {"reference": f"Patient/{world.record.pk}"},
            "type": {"coding": [{"system": "urn:dmp:document-type", "code": DocumentType.CONSULTATION_REPORT}]},
            "description": "Consultation", "context": {"period": {"start": "2026-03-03"}},
            "content": [{"attachment": {"contentType": content_type, "data": base64.b64encode(content).decode()}}],
        }, content_type="application/fhir+json", HTTP_AUTHORIZATION=f"Bearer {raw}")

    before = _stored(settings)
    refused = push(pdf_with_javascript(), "application/pdf")
    assert refused.status_code == 422 and "active content (JavaScript)" in refused.content.decode()
    assert _stored(settings) == before
    polyglot = png_html_polyglot()
    assert push(polyglot, "image/png").status_code == 201
    again = push(polyglot, "image/png")  # found by the digest of what was stored
    assert again.status_code == 200 and again["X-DMP-Outcome"].startswith("duplicate")
    assert world.record.documents.filter(mime_type="image/png", added_by=world.dr_house.user).count() == 1


# --- limits of the inspecting process --------------------------------------------------------


@pytest.mark.django_db
def test_an_inspection_past_its_time_is_killed_and_the_file_refused(world, settings, tmp_path, monkeypatch):
    """An inspecting server whose children sleep: the parent gives up at the time limit and
    kills the child."""
    slow = tmp_path / "slow_inspector.py"
    slow.write_text(
        "import importlib.util, sys, time\n"
        f"spec = importlib.util.spec_from_file_location('file_inspect', {str(file_safety.INSPECTOR)!r})\n"
        "file_inspect = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(file_inspect)\n"
        "file_inspect.inspect = lambda mime, limits, content: time.sleep(60)\n"
        "sys.exit(file_inspect.serve(int(sys.argv[1])))\n")
    monkeypatch.setattr(file_safety, "INSPECTOR", slow)
    settings.DOCUMENT_CHECK_SECONDS = 1
    started = time.monotonic()
    with pytest.raises(InvalidInput, match="too complex to be checked safely"):
        file_safety.check_file(text_pdf("lent"))
    assert time.monotonic() - started < 5


def test_one_inspecting_server_forks_a_child_per_file_and_comes_back_when_killed():
    first = file_safety.check_file(text_pdf("un"), scan=False)
    server = file_safety._SERVER._process
    assert first.text == "un" and server.poll() is None
    assert file_safety.check_file(image_bytes("PNG"), scan=False).mime == "image/png"
    assert file_safety._SERVER._process is server  # the same server: no interpreter per file
    server.kill()
    server.wait()
    assert file_safety.check_file(text_pdf("deux"), scan=False).text == "deux"
    assert file_safety._SERVER._process is not server and file_safety._SERVER._process.poll() is None


def test_a_forked_web_worker_starts_its_own_inspecting_server():
    """A pre-forking web server forks after the first check: the child must not share the
    parent's server (their answers would cross)."""
    file_safety.check_file(text_pdf("parent"), scan=False)
    parent_server = file_safety._SERVER._process.pid
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the forked worker
        os.close(read)
        try:
            text = file_safety.check_file(text_pdf("enfant"), scan=False).text
            os.write(write, f"{text} {file_safety._SERVER._process.pid}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        text, child_server = answer.read().split()
    os.waitpid(pid, 0)
    assert text == "enfant" and int(child_server) != parent_server
    assert file_safety.check_file(text_pdf("encore"), scan=False).text == "encore"


@pytest.mark.django_db
def test_an_inspection_past_its_memory_is_refused(settings):
    settings.DOCUMENT_CHECK_MEMORY_MB = 256
    out = io.BytesIO()
    Image.new("RGB", (7000, 7000), (9, 9, 9)).save(out, "PNG")  # 49 megapixels: under the pixel limit
    with pytest.raises(InvalidInput, match="too complex to be checked safely"):
        file_safety.check_file(out.getvalue())
    # The same limit lets ordinary files through: it is the big image that did not fit.
    assert file_safety.check_file(text_pdf("petit")).text == "petit"
    assert file_safety.check_file(image_bytes("PNG")).mime == "image/png"


def test_the_inspecting_process_gets_no_secret_from_the_server():
    result = subprocess.run(  # noqa: S603 - our interpreter, a fixed script
        [file_safety.sys.executable, "-I", "-c", "import os, sys; print(sorted(os.environ))"],
        env={}, capture_output=True, text=True, check=True)
    assert "SECRET_KEY" not in result.stdout and "DATABASE_URL" not in result.stdout
    source = Path(file_safety.__file__).read_text()
    assert "env={}" in source  # the inspector is started with that same empty environment


def test_the_thumbnail_tool_runs_under_the_same_limits(settings):
    """pdftoppm reads the stored PDF after the checks: under the same memory and CPU limits."""
    if shutil.which("prlimit") is None:
        pytest.skip("util-linux's prlimit is missing")
    settings.DOCUMENT_CHECK_MEMORY_MB, settings.DOCUMENT_CHECK_SECONDS = 300, 7
    argv = file_safety.limited(["pdftoppm", "-"])
    assert argv[1:] == [f"--as={300 * 2**20}", "--cpu=7", "--core=0", "--", "pdftoppm", "-"]
    assert subprocess.run(file_safety.limited(["true"]), check=False).returncode == 0  # noqa: S603


# --- the antivirus: a real clamd -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clamd_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"zPING\0")
            return sock.recv(16).startswith(b"PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def clamd_address(tmp_path_factory):
    """clamd from Debian, started once for the session on a free port, with a database of one
    signature (the EICAR test string, as a body signature: found inside a PDF too)."""
    binary = shutil.which("clamd") or CLAMD
    if not Path(binary).exists():
        pytest.skip("clamd is missing: `make test` installs clamav-daemon")
    home = tmp_path_factory.mktemp("clamd")
    (home / "db").mkdir()
    (home / "db" / "test.ndb").write_text(f"Eicar-Test-Body:0:*:{EICAR.hex()}\n")
    port = _free_port()
    (home / "clamd.conf").write_text(
        f"DatabaseDirectory {home / 'db'}\nTCPSocket {port}\nTCPAddr 127.0.0.1\nForeground yes\n"
        f"LogFile {home / 'clamd.log'}\nStreamMaxLength 30M\n")
    process = subprocess.Popen(  # noqa: S603 - a fixed binary and our own configuration
        [binary, f"--config-file={home / 'clamd.conf'}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not _clamd_answers(port):
            log = (home / "clamd.log").read_text() if (home / "clamd.log").exists() else ""
            assert process.poll() is None, f"clamd stopped: {log[-2000:]}"
            assert time.monotonic() < deadline, f"clamd did not answer: {log[-2000:]}"
            time.sleep(0.1)
        yield f"tcp://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def antivirus(settings, clamd_address):
    settings.CLAMD_ADDRESS = clamd_address
    return clamd_address


def test_clamd_finds_eicar_alone_and_inside_a_pdf_and_passes_an_honest_file(antivirus):
    def answer(content):
        return file_safety.clamd_instream(content, address=antivirus, timeout=10)

    assert answer(EICAR) == "stream: Eicar-Test-Body.UNOFFICIAL FOUND"
    assert answer(pdf_with_eicar()) == "stream: Eicar-Test-Body.UNOFFICIAL FOUND"
    assert answer(text_pdf("honnete")) == "stream: OK"


@pytest.mark.django_db
@pytest.mark.parametrize("portal", PORTALS)
@pytest.mark.parametrize("name, build", [("eicar.com", lambda: EICAR), ("eicar.pdf", pdf_with_eicar)])
def test_the_antivirus_refuses_eicar_alone_or_in_a_pdf(client, world, settings, antivirus, portal, name, build):
    _refused_and_nothing_stored(client, world, settings, portal, name, build(),
                                "This file contains a virus (Eicar-Test-Body.UNOFFICIAL): it was refused.")


@pytest.mark.django_db
def test_with_the_antivirus_on_honest_files_are_stored(client, world, antivirus):
    response = _patient_upload(client, world, [("bilan.pdf", text_pdf("Bilan sanguin")),
                                               ("photo.jpg", image_bytes("JPEG"))])
    assert response.status_code == 302, _page(response)[:2000]
    assert _titled_one(world, "bilan").extracted_text == "Bilan sanguin"


@pytest.mark.django_db
@pytest.mark.parametrize("portal", PORTALS)
@pytest.mark.parametrize("address", ["tcp://127.0.0.1:{port}", "unix:///nonexistent/clamd.ctl"])
def test_an_antivirus_that_cannot_be_reached_refuses_the_file_and_stores_nothing(
        client, world, settings, portal, address):
    settings.CLAMD_ADDRESS = address.format(port=_free_port())  # nothing listens there
    _refused_and_nothing_stored(client, world, settings, portal, "bilan.pdf", text_pdf("Bilan"),
                                "This file cannot be checked for viruses right now: nothing was added",
                                alone=False)  # the honest file cannot be checked either


def test_production_refuses_to_start_without_an_antivirus():
    refused = ((None, "CLAMD_ADDRESS is required in production"),
               ("", "CLAMD_ADDRESS is required in production"),
               ("clamd.example.org", "CLAMD_ADDRESS must be tcp://host:port"))
    # Each configuration a fresh start of its own, forked from one interpreter.
    *results, fine = manage_each(
        *((["check"], _production_environment(CLAMD_ADDRESS=value)) for value, _ in refused),
        (["check"], _production_environment(CLAMD_ADDRESS="unix:///run/clamav/clamd.ctl")))
    for (_, complaint), result in zip(refused, results, strict=True):
        assert result.returncode != 0 and complaint in result.stderr, result.stderr[-1000:]
    assert fine.returncode == 0, fine.stderr[-2000:]


# --- serving: every response that carries a stored file --------------------------------------

def _serving_views(world):
    """(who, URL, extra headers) of every view that answers with a stored file or thumbnail."""
    document = document_add(actor=Actor(world.dr_house.user), record=world.record, content=image_bytes("PNG"),
                            doc_type=DocumentType.NON_DICOM_IMAGE, title="Radio", act_date=date(2025, 3, 1))
    export = RecordExport.objects.create(record=world.record, requested_by=world.alice,
                                         status=RecordExport.Status.READY, finished_at=timezone.now())
    export.file.save("export.zip", ContentFile(b"PK\x05\x06" + b"\0" * 18))
    token = api_token_create(actor=Actor(world.dr_house.user), label="Logiciel")[1]
    return [
        (world.alice, reverse("portal_patient:document_file", args=[document.pk]), {}),
        (world.alice, reverse("portal_patient:document_download", args=[world.record.pk, document.pk]), {}),
        (world.alice, reverse("portal_patient:document_thumbnail", args=[world.record.pk, document.pk]), {}),
        (world.alice, reverse("portal_patient:export_download", args=[world.record.pk, export.pk]), {}),
        (world.dr_house.user, reverse("portal_pro:document_file", args=[document.pk]), {}),
        (None, f"/fhir/Binary/{document.pk}", {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_ACCEPT": "image/png"}),
    ]


@pytest.mark.django_db
def test_every_file_and_thumbnail_response_is_a_sandboxed_download_without_identity(client, world):
    views = _serving_views(world)
    assert len(views) == 6
    for user, url, headers in views:
        client.logout()
        if user is not None:
            client.force_login(user)
        response = client.get(url, **headers)
        assert response.status_code == 200, url
        disposition = response["Content-Disposition"]
        assert disposition.startswith("attachment; filename=") and "Alice" not in disposition, url
        assert "Martin" not in disposition and "Radio" not in disposition, url
        assert response["X-Content-Type-Options"] == "nosniff", url
        assert response["Content-Security-Policy"] == "sandbox; default-src 'none'", url
        assert "no-store" in response["Cache-Control"].split(", "), url


@pytest.mark.django_db(transaction=True)
def test_thumbnails_served_as_sandboxed_downloads_still_show_in_the_browser(live_server, page, world, sms_outbox):
    """`<img>` ignores `attachment` and the CSP of the image's own response: the thumbnails
    view still draws every picture, while opening the file itself downloads it."""
    from tests.browser import log_in_with_sms_code

    document = document_add(actor=Actor(world.alice), record=world.record, content=image_bytes("PNG"),
                            doc_type=DocumentType.PATIENT_DOCUMENT, title="Carte de groupe sanguin",
                            act_date=date(2025, 3, 1))
    log_in_with_sms_code(page, live_server.url, "alice_martin", sms_outbox, "correct-horse-battery")
    page.wait_for_url(f"**/patient/records/{world.record.pk}/")
    page.goto(f"{live_server.url}{reverse('portal_patient:documents', args=[world.record.pk])}?view=thumbnails"
              "&space=personal")
    thumbnail = page.locator(f"img[src$='/documents/{document.pk}/thumbnail/']")
    thumbnail.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    assert thumbnail.evaluate("img => img.naturalWidth") > 0
    with page.expect_download() as download:
        page.evaluate("url => { const a = document.createElement('a'); a.href = url; document.body.append(a); "
                      "a.click(); }", reverse("portal_patient:document_file", args=[document.pk]))
    assert download.value.suggested_filename == f"document-{document.pk}.png"
