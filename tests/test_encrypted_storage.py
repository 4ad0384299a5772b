"""The encrypted document storage (dmp/storage.py, docs/storage.md), on the file system and on
an S3-compatible object store: files go in and out as streams, what is at rest is ciphertext in
the chunked format, and an altered, cut, reordered or spliced file refuses to decrypt instead of
giving back part of a document."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from datetime import date

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from dmp.models import Document, DocumentType
from dmp.storage import (
    CHUNK,
    HEADER_SIZE,
    MAGIC,
    TAG,
    CorruptFile,
    EncryptingWriter,
    cipher,
    key_id,
    plaintext_size,
)
from tests import storage_backends
from tests.sample_files import text_pdf
from tests.storage_backends import put_stored_bytes, stored_bytes

# Each test below that asks for `storage_backend` runs on the file system and on S3.
moto_endpoint = storage_backends.moto_endpoint
storage_backend = storage_backends.storage_backend

SIZES = (0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17)
SEALED = CHUNK + TAG  # a full chunk at rest


def _save(data: bytes, name: str = "records/1/file") -> str:
    return default_storage.save(name, ContentFile(data))


def _read(name: str) -> bytes:
    with default_storage.open(name) as opened:
        return opened.read()


def _chunks(stored: bytes) -> tuple[bytes, list[bytes]]:
    body = stored[HEADER_SIZE:]
    return stored[:HEADER_SIZE], [body[at:at + SEALED] for at in range(0, len(body), SEALED)]


@pytest.mark.parametrize("size", SIZES)
def test_a_file_of_any_size_goes_in_and_out_unchanged(storage_backend, size):
    data = os.urandom(size)
    name = _save(data)

    assert _read(name) == data
    with default_storage.open(name) as opened:
        assert opened.size == size
        pieces = iter(lambda: opened.read(1000), b"")
        assert b"".join(pieces) == data
    stored = stored_bytes(name)
    assert stored.startswith(MAGIC) and len(stored) > size and plaintext_size(len(stored)) == size
    if size >= 16:  # shorter, a few bytes may turn up in the ciphertext by chance
        assert data[:64] not in stored


def test_save_open_exists_delete_and_no_url(storage_backend):
    name = _save(b"compte rendu")
    assert default_storage.exists(name)
    second = _save(b"another", name)  # never overwritten: another name
    assert second != name and _read(name) == b"compte rendu" and _read(second) == b"another"
    with pytest.raises(ValueError, match="no public URL"):
        default_storage.url(name)
    with pytest.raises(ValueError):
        default_storage.open(name, "wb")

    default_storage.delete(name)

    assert not default_storage.exists(name)
    with pytest.raises(FileNotFoundError):
        default_storage.open(name)


def test_a_file_is_read_from_a_stream_and_reopened_from_the_start(storage_backend):
    data = os.urandom(2 * CHUNK + 5)
    # A stream that is not a bytes object in memory: the storage reads it in chunks.
    name = default_storage.save("records/1/streamed", File(io.BufferedReader(io.BytesIO(data))))
    opened = default_storage.open(name)
    assert opened.read(10) == data[:10]
    opened.open()
    assert opened.read() == data
    opened.close()


@pytest.mark.parametrize("size", (10, 3 * CHUNK + 17))
def test_flipping_any_byte_is_detected(storage_backend, size):
    name = _save(os.urandom(size))
    stored = stored_bytes(name)
    places = (0, len(MAGIC), HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + SEALED // 2, len(stored) - 1)
    for at in (at for at in places if at < len(stored)):
        damaged = bytearray(stored)
        damaged[at] ^= 0x01
        put_stored_bytes(name, bytes(damaged))
        # The magic: no longer the chunked format, read as a (bad) Fernet token; anywhere else
        # the header or a chunk fails to authenticate.
        with pytest.raises(InvalidToken if at < len(MAGIC) else CorruptFile):
            _read(name)


def test_dropping_the_last_chunk_is_detected_not_read_as_a_shorter_file(storage_backend):
    name = _save(os.urandom(3 * CHUNK + 17))
    header, chunks = _chunks(stored_bytes(name))
    assert len(chunks) == 4

    for kept in (3, 2, 1):  # cut after any chunk
        put_stored_bytes(name, header + b"".join(chunks[:kept]))
        with pytest.raises(CorruptFile):
            _read(name)
    put_stored_bytes(name, header)  # every chunk gone
    with pytest.raises(CorruptFile):
        _read(name)
    put_stored_bytes(name, header + b"".join(chunks)[:-5])  # cut inside the last one
    with pytest.raises(CorruptFile):
        _read(name)


def test_nothing_of_a_cut_file_is_returned_past_the_cut(storage_backend):
    """A reader streaming the file gets the authenticated chunks, then an error: never an end
    of file that would pass a cut document off as whole."""
    data = os.urandom(3 * CHUNK)
    name = _save(data)
    header, chunks = _chunks(stored_bytes(name))
    put_stored_bytes(name, header + b"".join(chunks[:2]))
    with default_storage.open(name) as opened:
        assert opened.read(CHUNK) == data[:CHUNK]
        with pytest.raises(CorruptFile):
            opened.read()


def test_swapping_two_chunks_or_appending_one_is_detected(storage_backend):
    name = _save(os.urandom(3 * CHUNK + 17))
    header, chunks = _chunks(stored_bytes(name))

    put_stored_bytes(name, header + chunks[1] + chunks[0] + b"".join(chunks[2:]))
    with pytest.raises(CorruptFile):
        _read(name)
    put_stored_bytes(name, header + b"".join(chunks) + chunks[0])
    with pytest.raises(CorruptFile):
        _read(name)


def test_a_chunk_of_another_file_does_not_fit(storage_backend):
    name = _save(os.urandom(2 * CHUNK + 1))
    other = _save(os.urandom(2 * CHUNK + 1), "records/2/file")
    header, chunks = _chunks(stored_bytes(name))
    other_header, other_chunks = _chunks(stored_bytes(other))

    put_stored_bytes(name, header + other_chunks[0] + b"".join(chunks[1:]))
    with pytest.raises(CorruptFile):
        _read(name)
    put_stored_bytes(name, other_header + b"".join(chunks))  # the other file's key and nonces
    with pytest.raises(CorruptFile):
        _read(name)


def test_the_header_names_the_key_and_a_file_under_a_removed_key_does_not_open(storage_backend, settings):
    old_key = settings.DOCUMENT_ENCRYPTION_KEYS[0]
    name = _save(b"bilan")
    assert stored_bytes(name)[len(MAGIC) + 1:len(MAGIC) + 9] == key_id(old_key).encode()

    new_key = Fernet.generate_key().decode()
    settings.DOCUMENT_ENCRYPTION_KEYS = [new_key, old_key]
    assert _read(name) == b"bilan"  # any configured key reads
    renamed = _save(b"radio", "records/1/new")
    assert stored_bytes(renamed)[len(MAGIC) + 1:len(MAGIC) + 9] == key_id(new_key).encode()  # the first writes

    settings.DOCUMENT_ENCRYPTION_KEYS = [new_key]
    with pytest.raises(CorruptFile):
        _read(name)


def test_files_stored_before_the_chunked_format_are_still_read(storage_backend):
    name = _save(b"placeholder")
    put_stored_bytes(name, cipher().encrypt(b"compte rendu de 2024"))  # a whole Fernet token

    assert _read(name) == b"compte rendu de 2024"
    default_storage.reencrypt(name)
    assert stored_bytes(name).startswith(MAGIC) and _read(name) == b"compte rendu de 2024"


def test_the_writer_makes_what_the_storage_reads_without_encrypting_again(storage_backend):
    from dmp.storage import Sealed

    data = os.urandom(CHUNK * 2 + 3)
    spool = io.BytesIO()
    writer = EncryptingWriter(spool)
    for at in range(0, len(data), 1000):
        writer.write(data[at:at + 1000])
    assert writer.tell() == len(data)
    writer.close()

    name = default_storage.save("exports/1/1.zip", Sealed(spool))

    assert stored_bytes(name) == spool.getvalue() and _read(name) == data
    with pytest.raises(ValueError, match="chunked format"):
        default_storage.save("exports/1/2.zip", Sealed(io.BytesIO(b"PK\x03\x04 not encrypted")))


@pytest.mark.django_db
def test_a_patient_adds_a_document_and_downloads_it(client, world, storage_backend):
    content = text_pdf("Mes questions pour la consultation")
    client.force_login(world.alice)
    response = client.post(reverse("portal_patient:documents_add", args=[world.record.pk]), {
        "doc_type": DocumentType.PATIENT_DOCUMENT, "act_date": "2025-06-01", "title": "Mes questions",
        "files": [SimpleUploadedFile("questions.pdf", content)],
    })
    assert response.status_code == 302
    [document] = [d for d in Document.objects.filter(record=world.record) if d.title == "Mes questions"]
    assert stored_bytes(document.file.name).startswith(MAGIC)

    response = client.get(reverse("portal_patient:document_download", args=[world.record.pk, document.pk]))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == content
    assert response["Content-Length"] == str(len(content))
    assert response["Content-Disposition"] == f'attachment; filename="document-{document.pk}.pdf"'


@pytest.mark.django_db
def test_the_medecin_traitant_downloads_it_and_an_outsider_gets_404(client, world, storage_backend):
    from dmp.policy import Actor
    from dmp.services import document_add

    content = text_pdf("Compte rendu")
    document = document_add(actor=Actor(world.dr_house.user), record=world.record, content=content,
                            doc_type=DocumentType.LAB_REPORT, title="Bilan", act_date=date(2025, 11, 4))
    client.force_login(world.dr_house.user)
    response = client.get(reverse("portal_pro:document_file", args=[document.pk]))
    assert response.status_code == 200 and b"".join(response.streaming_content) == content
    assert response["Content-Length"] == str(len(content))

    client.force_login(world.stranger.user)  # a GP with no relation to Alice
    response = client.get(reverse("portal_pro:document_file", args=[document.pk]))
    assert response.status_code == 404


@pytest.mark.django_db
def test_the_export_is_stored_encrypted_and_downloads_whole(client, world, storage_backend, monkeypatch,
                                                            django_capture_on_commit_callbacks):
    from dmp import celery_app
    from dmp.models import RecordExport

    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    client.force_login(world.alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("portal_patient:export", args=[world.record.pk]))
    export = RecordExport.objects.get(record=world.record)
    assert export.status == RecordExport.Status.READY
    stored = stored_bytes(export.file.name)
    assert stored.startswith(MAGIC) and plaintext_size(len(stored)) == export.size

    response = client.get(reverse("portal_patient:export_download", args=[world.record.pk, export.pk]))

    assert response.status_code == 200 and response["Content-Length"] == str(export.size)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.testzip() is None
    documents = {name: archive.read(name) for name in archive.namelist() if name.startswith("documents/")}
    assert documents and {hashlib.sha256(content).hexdigest() for content in documents.values()} <= {
        document.content_hash for document in Document.objects.filter(record=world.record)}
    assert {"summary.pdf", "record.fhir.json", "README.txt"} <= set(archive.namelist())


def test_the_environment_chooses_the_object_store(moto_endpoint, tmp_path):
    """DMP_STORAGE=s3 and its variables, read by dmp/settings.py in a process of its own: what
    that process saves is in the bucket, as ciphertext; a wrong DMP_STORAGE stops it."""
    import boto3

    from tests.fresh_starts import manage_each

    client = boto3.client("s3", endpoint_url=moto_endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")  # noqa: S106
    client.create_bucket(Bucket="dmp-from-env")
    secret = tmp_path / "s3-secret"
    secret.write_text("testing\n")
    environment = {**os.environ, "DMP_STORAGE": "s3", "DMP_S3_BUCKET": "dmp-from-env",
                   "DMP_S3_ENDPOINT_URL": moto_endpoint, "DMP_S3_REGION": "us-east-1",
                   "DMP_S3_ACCESS_KEY_ID": "testing", "DMP_S3_SECRET_ACCESS_KEY_FILE": str(secret),
                   "DMP_S3_ADDRESSING_STYLE": "path", "DMP_S3_PREFIX": "documents"}
    environment.pop("DMP_S3_SECRET_ACCESS_KEY", None)
    save = ("from django.core.files.base import ContentFile; from django.core.files.storage import default_storage;"
            "print(default_storage.__class__.__name__,"
            " default_storage.save('records/9/f', ContentFile(b'compte rendu')))")

    # Two fresh starts, forked from one interpreter (tests/fresh_starts.py).
    shell = ["shell", "-v", "0", "-c", save]
    done, refused = manage_each((shell, environment), (shell, {**environment, "DMP_STORAGE": "nfs"}))

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["EncryptedS3Storage", "records/9/f"]
    stored = client.get_object(Bucket="dmp-from-env", Key="documents/records/9/f")
    assert stored["ContentType"] == "application/octet-stream"
    body = stored["Body"].read()
    assert body.startswith(MAGIC) and b"compte rendu" not in body
    assert refused.returncode != 0 and "DMP_STORAGE must be filesystem or s3" in refused.stderr


def test_a_large_encrypted_file_is_stored_as_it_is_in_parts(storage_backend):
    """What the export hands over: a temporary file of ciphertext, larger than boto3's
    multipart threshold (8 MB), uploaded in parts to the object store and read back whole."""
    import tempfile

    from dmp.storage import Sealed

    data = os.urandom(9 * 1024 * 1024 + 3)
    with tempfile.TemporaryFile() as spool:
        writer = EncryptingWriter(spool)
        writer.write(data)
        writer.close()
        name = default_storage.save("exports/1/1.zip", Sealed(spool))

    with default_storage.open(name) as opened:
        assert opened.size == len(data)
        digest = hashlib.sha256()
        for piece in iter(lambda: opened.read(CHUNK), b""):
            digest.update(piece)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    if storage_backend == "s3":
        etag = default_storage.bucket.Object(name).e_tag
        assert "-" in etag  # a multipart upload's ETag: "<md5 of the parts' md5s>-<parts>"


def test_s3_storage_objects_of_a_thread_share_its_session_for_the_same_credentials():
    """A boto3 session reads botocore's service descriptions once: storage objects share one per
    thread and credentials, never one between threads (boto3 sessions are not thread-safe)."""
    import threading

    from dmp.storage_s3 import EncryptedS3Storage

    def storage(secret: str = "testing") -> EncryptedS3Storage:  # noqa: S107
        return EncryptedS3Storage(bucket_name="dmp-sessions", access_key="testing", secret_key=secret,
                                  region_name="us-east-1")

    here = storage()._create_session()
    assert storage()._create_session() is here
    assert storage(secret="other")._create_session() is not here
    elsewhere = []
    thread = threading.Thread(target=lambda: elsewhere.append(storage()._create_session()))
    thread.start()
    thread.join()
    assert elsewhere and elsewhere[0] is not here
