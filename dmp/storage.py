"""Document files are encrypted at rest (DOMAIN.md §4: administrators cannot read them,
not even from the disk or a backup). Fernet: AES-128-CBC with HMAC-SHA256."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.utils.deconstruct import deconstructible


def cipher() -> MultiFernet:
    """The keyring that encrypts documents and second-factor secrets: the first key encrypts."""
    return MultiFernet([Fernet(key.encode()) for key in settings.DOCUMENT_ENCRYPTION_KEYS])


def key_id(key: str) -> str:
    """A short public name of a document key, recorded next to what it encrypted (so an old
    key is known to be still in use, or no longer), not the key."""
    return hashlib.sha256(b"dmp-document-key-id:" + key.encode()).hexdigest()[:8]


def current_key_id() -> str:
    """The id of the first key, the one that encrypts now."""
    return key_id(settings.DOCUMENT_ENCRYPTION_KEYS[0])


def configured_key_ids() -> set[str]:
    return {key_id(key) for key in settings.DOCUMENT_ENCRYPTION_KEYS}


def tagged_encrypt(text: str) -> str:
    """`text` encrypted under the first key, as `<key id>:<token>`, for a value stored in a
    place that has no column of ours for the key id (the second-factor secrets, in allauth's
    JSON). A Fernet token is URL-safe base64, so it never holds a colon."""
    return f"{current_key_id()}:{cipher().encrypt(text.encode()).decode()}"


def tagged_decrypt(value: str) -> str:
    """What `tagged_encrypt` made, or a bare token written before key ids were recorded."""
    return cipher().decrypt(value.rpartition(":")[2].encode()).decode()


def tag_of(value: str) -> str:
    """The key id of a `tagged_encrypt` value; empty for a bare token (key unknown)."""
    return value.partition(":")[0] if ":" in value else ""


def sealed(value: dict) -> str:
    """`value` as a token for a place at rest that is not ours to encrypt, such as a session
    row in the database holding a search's words (medical: "HIV")."""
    return cipher().encrypt(json.dumps(value).encode()).decode("ascii")


def unsealed(token: object) -> dict:
    """What `sealed` made; an empty dict for anything else (a former key, an older session)."""
    if not isinstance(token, str):
        return {}
    try:
        value = json.loads(cipher().decrypt(token.encode("ascii")))
    except (InvalidToken, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


@deconstructible
class EncryptedFileSystemStorage(FileSystemStorage):
    """Encrypts on save, decrypts on open. There is no URL: files leave only through views
    that ask the access policy."""

    def _save(self, name, content):
        content.seek(0)
        return super()._save(name, ContentFile(cipher().encrypt(content.read())))

    def _open(self, name, mode="rb"):
        with super()._open(name, "rb") as stored:
            return ContentFile(cipher().decrypt(stored.read()), name=name)

    def reencrypt(self, name: str) -> None:
        """Write the stored file again under the first key (`manage.py reencrypt`). Through a
        temporary file in the same folder and an atomic rename: a crash at any point leaves the
        old file or the new one, never half of one, and both are readable by the keyring."""
        path = self.path(name)
        with open(path, "rb") as stored:
            token = cipher().rotate(stored.read())
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".reencrypt-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(token)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def url(self, name):
        raise ValueError("Document files have no public URL.")
