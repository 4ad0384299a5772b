"""Document files are encrypted at rest (DOMAIN.md §4: administrators cannot read them,
not even from the disk or a backup).

Files are written in a chunked, authenticated format (docs/storage.md): AES-256-GCM per chunk
of 64 KiB under a key derived for each file, so a file of any size is encrypted and decrypted
as a stream, in bounded memory, and a file cut short, reordered or spliced from two files does
not decrypt. Files written before it are whole Fernet tokens (AES-128-CBC with HMAC-SHA256):
they are still read, and `manage.py reencrypt` writes them again in the chunked format. The
small values encrypted elsewhere (columns, secrets, sealed session values) stay Fernet tokens.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import shutil
import stat
import struct
import tempfile

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.files.base import File
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


# --- The chunked file format (docs/storage.md) --------------------------------------------------
#
#   header: MAGIC (7 bytes) | VERSION (1) | key id (8, ASCII) | salt (16) | nonce prefix (7)
#   then chunks: AES-256-GCM(64 KiB of plaintext) + 16-byte tag; only the last may be shorter.
#
# The file key is HKDF-SHA256(document key, salt, info = "dmp-file" + version + key id): every
# file has its own key. A chunk's nonce is the prefix, the chunk's index (4 bytes, big-endian)
# and a final flag (1 byte), and its associated data is the header: a chunk moved to another
# place or another file, a header edited, or a file cut after any chunk does not decrypt.

MAGIC = b"\x93DMPENC"  # never the start of a Fernet token (URL-safe base64), a ZIP or a PDF
VERSION = 1
CHUNK = 64 * 1024
TAG = 16
_KEY_ID_SIZE, _SALT_SIZE, _PREFIX_SIZE = 8, 16, 7
HEADER_SIZE = len(MAGIC) + 1 + _KEY_ID_SIZE + _SALT_SIZE + _PREFIX_SIZE
_MAX_CHUNKS = 2**32


class CorruptFile(Exception):
    """A stored file that does not decrypt: altered, cut short, spliced, or under a key that is
    no longer configured. Never says more (the caller logs the class name only)."""


def _raw_key(key: str) -> bytes:
    return base64.urlsafe_b64decode(key.encode())


def _file_aead(key: str, salt: bytes, kid: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                   info=b"dmp-file" + bytes([VERSION]) + kid).derive(_raw_key(key))
    return AESGCM(derived)


def _nonce(prefix: bytes, index: int, final: bool) -> bytes:
    if index >= _MAX_CHUNKS:
        raise CorruptFile("too many chunks")
    return prefix + struct.pack(">I?", index, final)


class _Sealer:
    """Encrypts one file chunk by chunk under the first key. A chunk is sealed only once the
    next byte is known to exist, so the last one always carries the final flag (an empty file
    is one empty final chunk)."""

    def __init__(self) -> None:
        key = settings.DOCUMENT_ENCRYPTION_KEYS[0]
        kid = key_id(key).encode("ascii")
        salt, self._prefix = os.urandom(_SALT_SIZE), os.urandom(_PREFIX_SIZE)
        self.header = MAGIC + bytes([VERSION]) + kid + salt + self._prefix
        self._aead = _file_aead(key, salt, kid)
        self._index = 0
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The chunks that `data` completes, encrypted (often none)."""
        self._pending += data
        sealed = []
        while len(self._pending) > CHUNK:
            sealed.append(self._seal(bytes(self._pending[:CHUNK]), final=False))
            del self._pending[:CHUNK]
        return sealed

    def finish(self) -> bytes:
        """The last chunk, with the final flag."""
        last = self._seal(bytes(self._pending), final=True)
        self._pending.clear()
        return last

    def _seal(self, plaintext: bytes, *, final: bool) -> bytes:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._index, final), plaintext, self.header)
        self._index += 1
        return sealed


class EncryptingWriter(io.RawIOBase):
    """A write-only stream that encrypts what is written to it into `out`, chunk by chunk:
    what zipfile writes an export into. `close()` writes the last chunk (it does not close
    `out`). `tell()` is the plaintext position; it cannot seek, so zipfile writes data
    descriptors instead of going back."""

    def __init__(self, out) -> None:
        super().__init__()
        self._out = out
        self._sealer = _Sealer()
        self._out.write(self._sealer.header)
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.closed:
            raise ValueError("write to a closed file")
        data = bytes(data)
        for sealed in self._sealer.feed(data):
            self._out.write(sealed)
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        if not self.closed:
            self._out.write(self._sealer.finish())
            self._out.flush()
        super().close()


class _EncryptingReader(io.RawIOBase):
    """A read-only stream of the encrypted form of `source` (a Django File), produced as it
    is read: what a storage's own `_save` (a file write, an S3 upload) consumes."""

    def __init__(self, source) -> None:
        super().__init__()
        self._pieces = self._encrypted(source)
        self._buffer = bytearray()

    @staticmethod
    def _encrypted(source):
        sealer = _Sealer()
        yield sealer.header
        for piece in source.chunks(CHUNK):
            yield from sealer.feed(piece)
        yield sealer.finish()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._buffer += piece
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _read_exactly(raw, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        piece = raw.read(size - len(data))
        if not piece:
            break
        data += piece
    return bytes(data)


def plaintext_size(stored_size: int) -> int:
    """The size of what a file of the chunked format decrypts to, from its stored size."""
    body = stored_size - HEADER_SIZE
    chunks = max(1, -(-body // (CHUNK + TAG)))
    return body - chunks * TAG


class _DecryptingReader(io.RawIOBase):
    """Reads a file of the chunked format from `raw` and decrypts it as it is read, one chunk
    at a time: never more than two chunks in memory. Any failure raises CorruptFile at the
    read that meets it; nothing of a chunk that did not authenticate is ever returned."""

    def __init__(self, raw, header: bytes, stored_size: int | None) -> None:
        super().__init__()
        self._raw = raw
        self._header = header
        kid = header[len(MAGIC) + 1: len(MAGIC) + 1 + _KEY_ID_SIZE]
        salt_at = len(MAGIC) + 1 + _KEY_ID_SIZE
        salt, self._prefix = header[salt_at: salt_at + _SALT_SIZE], header[salt_at + _SALT_SIZE:]
        keys = {key_id(key).encode("ascii"): key for key in settings.DOCUMENT_ENCRYPTION_KEYS}
        if kid not in keys:
            raise CorruptFile("the file's key is not configured")
        self._aead = _file_aead(keys[kid], salt, kid)
        self._index = 0
        self._ahead = b""  # raw bytes read past the current chunk, to know whether it is the last
        self._plain = b""  # the current chunk, decrypted, read up to self._at
        self._at = 0
        self._done = False
        self._position = 0
        self.size = plaintext_size(stored_size) if stored_size is not None else None

    def _next_chunk(self) -> None:
        wanted = CHUNK + TAG + 1
        data = self._ahead + _read_exactly(self._raw, wanted - len(self._ahead))
        final = len(data) < wanted
        sealed, self._ahead = (data, b"") if final else (data[: CHUNK + TAG], data[CHUNK + TAG:])
        try:
            self._plain = self._aead.decrypt(_nonce(self._prefix, self._index, final), sealed, self._header)
        except (InvalidTag, ValueError) as exc:
            raise CorruptFile("a chunk does not authenticate") from exc
        self._at = 0
        self._index += 1
        self._done = final

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        parts = []
        wanted = size if size is not None and size >= 0 else None
        got = 0
        while wanted is None or got < wanted:
            if self._at == len(self._plain):
                if self._done:
                    break
                self._next_chunk()
                continue
            end = len(self._plain) if wanted is None else min(len(self._plain), self._at + wanted - got)
            parts.append(self._plain[self._at:end])
            got += end - self._at
            self._at = end
        self._position += got
        return b"".join(parts)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def decrypting_reader(raw, stored_size: int | None = None):
    """A stream of the decrypted content of `raw`, a stored file: the chunked format read as
    it goes, or a whole Fernet token (files stored before it) decrypted at once."""
    head = _read_exactly(raw, len(MAGIC))
    if head != MAGIC:
        token = head + raw.read()
        raw.close()
        return io.BytesIO(cipher().decrypt(token))
    rest = _read_exactly(raw, HEADER_SIZE - len(MAGIC))
    if len(rest) != HEADER_SIZE - len(MAGIC) or rest[0] != VERSION:
        raw.close()
        raise CorruptFile("unknown header")
    try:
        return _DecryptingReader(raw, head + rest, stored_size)
    except BaseException:
        raw.close()
        raise


class Sealed(File):
    """A file already in the chunked format, made by `EncryptingWriter` (an export written
    to a temporary file): the storage stores it as it is, without encrypting it again."""


class DecryptedFile(File):
    """What the encrypted storages' `open()` returns: reads decrypt as they go. Opening it
    again reads the stored file again from the start."""

    def __init__(self, storage, name: str) -> None:
        self._storage = storage
        super().__init__(storage._decrypting(name), name=name)

    def open(self, mode=None):
        self.file.close()
        self.file = self._storage._decrypting(self.name)
        return self

    @property
    def size(self) -> int:
        """The decrypted size (the chunked format knows it from the stored size)."""
        size = getattr(self.file, "size", None)
        return len(self.file.getbuffer()) if size is None else size


class EncryptedStorageMixin:
    """Encryption at rest over a Django storage: `_save` encrypts as a stream (the content is
    read in chunks, never whole), `open` returns a file that decrypts as it is read. There is
    no URL: files leave only through views that ask the access policy. A concrete storage
    gives `_open_stored` (the stored bytes as a stream, and their size) and `_overwrite`
    (replace a stored file in one step, for `reencrypt`)."""

    def _save(self, name, content):
        if isinstance(content, Sealed):
            content.seek(0)
            if content.read(len(MAGIC)) != MAGIC:
                raise ValueError("Not a file of the chunked format.")
            content.seek(0)
            return super()._save(name, content)
        return super()._save(name, File(_EncryptingReader(content), name=name))

    def _open(self, name, mode="rb"):
        if mode not in ("r", "rb"):
            raise ValueError("Encrypted files are written only through save().")
        return DecryptedFile(self, name)

    def _decrypting(self, name: str):
        raw, stored_size = self._open_stored(name)
        return decrypting_reader(raw, stored_size)

    def _open_stored(self, name: str):
        stored = super()._open(name, "rb")
        return stored, stored.size

    def reencrypt(self, name: str) -> None:
        """Write the stored file again in the chunked format under the first key (`manage.py
        reencrypt`), decrypting and encrypting as a stream. The new file replaces the old in
        one step: a crash at any point leaves the old file or the new one, never half of one,
        and both are readable by the keyring."""
        with self.open(name) as plain:

            def fill(out) -> None:
                writer = EncryptingWriter(out)
                shutil.copyfileobj(plain, writer, CHUNK)
                writer.close()

            self._overwrite(name, fill)

    def url(self, name, *args, **kwargs):
        raise ValueError("Document files have no public URL.")


@deconstructible
class EncryptedFileSystemStorage(EncryptedStorageMixin, FileSystemStorage):
    """Documents on a local (or shared network) file system: the embedded default."""

    def _open_stored(self, name: str):
        stored = open(self.path(name), "rb")  # noqa: SIM115 - closed by the decrypting reader
        return stored, os.fstat(stored.fileno()).st_size

    def _overwrite(self, name: str, fill) -> None:
        # A temporary file in the same folder, then an atomic rename: encrypted bytes only.
        path = self.path(name)
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".reencrypt-")
        try:
            with os.fdopen(handle, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
