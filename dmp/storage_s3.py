"""Documents in an S3-compatible object store shared by every application server
(docs/deployment.md, "Choosing the object store"), encrypted by us exactly as on a disk
(dmp/storage.py, docs/storage.md): the store only ever holds ciphertext. Chosen with
DMP_STORAGE=s3 (dmp/settings.py); imported only then, so the embedded default needs no boto3."""

from __future__ import annotations

import tempfile
import threading

from botocore.exceptions import ClientError
from django.utils.deconstruct import deconstructible
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from .storage import EncryptedStorageMixin, Sealed

# boto3 sessions by credentials, per thread (a session is not safe to share between threads). A
# new session re-reads botocore's service and endpoint descriptions, about as long as a small
# request, and every storage object opened its own: one per thread is read once.
_sessions = threading.local()


@deconstructible
class EncryptedS3Storage(EncryptedStorageMixin, S3Storage):
    """django-storages' S3 backend under our encryption. Objects get no ACL of their own (the
    bucket is private: docs/deployment.md), are named like the files of the file system
    storage, never overwritten by a save (a second object with the same name gets another
    name, as on a disk), and typed application/octet-stream: what they hold is ciphertext,
    whatever their name says."""

    def get_default_settings(self) -> dict:
        return {
            **super().get_default_settings(),
            "file_overwrite": False,
            "object_parameters": {"ContentType": "application/octet-stream"},
        }

    def _create_session(self):
        # The same session as django-storages would make (a profile wins over keys), made once.
        key = (self.session_profile, self.access_key, self.secret_key, self.security_token)
        by_credentials = getattr(_sessions, "by_credentials", None)
        if by_credentials is None:
            by_credentials = _sessions.by_credentials = {}
        session = by_credentials.get(key)
        if session is None:
            session = by_credentials[key] = super()._create_session()
        return session

    def _open_stored(self, name: str):
        # A streaming GET: django-storages' S3File would first copy the whole object into memory.
        key = self._normalize_name(clean_name(name))
        try:
            response = self.bucket.Object(key).get()
        except ClientError as err:
            if err.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                raise FileNotFoundError(name) from err
            raise
        return response["Body"], response["ContentLength"]

    def _overwrite(self, name: str, fill) -> None:
        # An object is replaced whole by one PUT (or one completed multipart upload): readers
        # see the old object or the new one. Spooled to a temporary file first: encrypted
        # bytes only.
        with tempfile.TemporaryFile() as spool:
            fill(spool)
            self._save(name, Sealed(spool, name=name))
