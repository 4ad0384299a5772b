"""Model fields whose value is encrypted in the database (DOMAIN.md §4: a dump or a backup of
the database must not show medical content, as the files already do not)."""

from __future__ import annotations

from django.core.exceptions import FieldError
from django.db import models
from django.db.models.lookups import Exact, IsNull

from ..storage import cipher, current_key_id


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token made with the document keys (`dmp.storage.cipher()`): the
    first key encrypts, every key decrypts, so the keys rotate like the files'. Read and written
    as plain text by the code; the column holds the token only. An empty value stays empty
    (nothing to hide, and `field=""` keeps working for "has no text yet").

    A token is different each time the same text is encrypted, so the database cannot compare
    or order these values: every lookup but "is empty" / "is null" is refused loudly rather than
    silently matching nothing. Searching goes through the blind index (`dmp/search_index.py`)."""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return cipher().encrypt(value.encode()).decode("ascii")

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return cipher().decrypt(value.encode("ascii")).decode()

    def get_lookup(self, lookup_name):
        if lookup_name == "exact":
            return EmptyOnlyExact
        if lookup_name == "isnull":
            return IsNull
        raise FieldError(f"{self.name} is encrypted: the database cannot compare it ({lookup_name}).")

    def get_transform(self, lookup_name):
        raise FieldError(f"{self.name} is encrypted: the database cannot transform it ({lookup_name}).")


class KeyIdField(models.CharField):
    """Which document key (`dmp.storage.key_id`) encrypted this row's files and encrypted
    columns: set when the row is created, and by `manage.py reencrypt` once it has written them
    all again under the first key. A later edit writes under the first key too, so the id
    stays on the safe side: it never names a newer key than the oldest one the row may need.
    Empty: written before key ids were recorded, key unknown until `reencrypt` runs. The
    system check dmp.E002 refuses to start when a key named here is no longer configured."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 8)
        kwargs.setdefault("default", current_key_id)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("db_index", True)
        super().__init__(*args, **kwargs)


class EmptyOnlyExact(Exact):
    """`field=""` (no text): the only equality an encrypted column can answer."""

    def get_prep_lookup(self):
        if self.rhs != "":
            raise FieldError("An encrypted field can only be compared with the empty string.")
        return self.rhs

    def process_rhs(self, compiler, connection):
        # The empty string is stored as is (see get_prep_value): compare with it, unencrypted.
        return "%s", [""]
