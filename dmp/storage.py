"""Document files are encrypted at rest (DOMAIN.md §4: administrators cannot read them,
not even from the disk or a backup). Fernet: AES-128-CBC with HMAC-SHA256."""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.utils.deconstruct import deconstructible


def cipher() -> MultiFernet:
    """The keyring that encrypts documents and second-factor secrets: the first key encrypts."""
    return MultiFernet([Fernet(key.encode()) for key in settings.DOCUMENT_ENCRYPTION_KEYS])


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

    def url(self, name):
        raise ValueError("Document files have no public URL.")
