"""The document storage under test, on each backend the product supports: the file system (the
embedded default) and an S3-compatible object store, played by moto's standalone server on
127.0.0.1. Test files that use `storage_backend` run once per backend. Outside CI a machine
without moto skips the S3 half; in CI (CI=true) it fails instead."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import pytest

CI = os.environ.get("CI", "").lower() == "true"
S3_CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="session")
def moto_endpoint():
    """One moto S3 server for the session (per xdist worker), on a free port."""
    if not CI:
        pytest.importorskip("moto.server")
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_options(endpoint: str, bucket: str) -> dict:
    return {"bucket_name": bucket, "endpoint_url": endpoint, "addressing_style": "path",
            "object_parameters": {"ContentType": "application/octet-stream"}, **S3_CREDENTIALS}


@pytest.fixture(params=["fs", "s3"])
def storage_backend(request, settings):
    """"fs" or "s3": the default storage is switched to it for the test (the file system one
    is already a folder of the test's own, tests/conftest.py); an S3 test gets a bucket of its
    own, emptied and removed after it. The files already in the test's folder (the `world`'s:
    ask for `world` first) are copied into the bucket as they are, ciphertext, as an operator
    moving to an object store copies the folder (docs/deployment.md)."""
    if request.param == "fs":
        yield "fs"
        return
    import boto3

    endpoint = request.getfixturevalue("moto_endpoint")
    bucket = f"dmp-test-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")  # noqa: S106
    client.create_bucket(Bucket=bucket)
    root = Path(settings.MEDIA_ROOT)
    for path in root.rglob("*") if root.exists() else ():
        if path.is_file():
            client.put_object(Bucket=bucket, Key=path.relative_to(root).as_posix(), Body=path.read_bytes())
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "dmp.storage_s3.EncryptedS3Storage", "OPTIONS": s3_options(endpoint, bucket)}}
    yield "s3"
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", ()):
            client.delete_object(Bucket=bucket, Key=item["Key"])
    client.delete_bucket(Bucket=bucket)


def stored_bytes(name: str) -> bytes:
    """What the default storage holds under `name`, as it is at rest (ciphertext)."""
    from django.core.files.storage import default_storage

    raw, _size = default_storage._open_stored(name)
    try:
        return raw.read()
    finally:
        raw.close()


def put_stored_bytes(name: str, data: bytes) -> None:
    """Replace what the default storage holds under `name` by `data`, as an attacker with the
    disk or the bucket would."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from dmp.storage import EncryptedFileSystemStorage, EncryptedStorageMixin

    if isinstance(default_storage, EncryptedFileSystemStorage):
        default_storage._overwrite(name, lambda out: out.write(data))
    else:  # the object store's own save, under the encryption: a PUT of these bytes
        super(EncryptedStorageMixin, default_storage)._save(name, ContentFile(data))
