"""Which document key encrypted what, and moving it to the first key (docs/deployment.md,
"Document encryption keys"). The encrypted objects are:

- every model with a `KeyIdField`: its encrypted files (documents, their thumbnails, record
  exports) and its encrypted columns (`EncryptedTextField`: titles, extracted text, the
  synthesis, personal data, reimbursement lines, break-glass justifications), all under the
  DOCUMENT_ENCRYPTION_KEYS, the row's key id naming the key of all of them;
- the second-factor secrets (TOTP secret, recovery-code seed) in allauth's `Authenticator.data`,
  each value prefixed with its key id (`dmp.storage.tagged_encrypt`).

Short-lived tokens made with the same keys are not listed: a search kept in the session, the
credentials sheet of an onboarding, a FHIR upload in the cache. They expire with the session or
the cache entry, and an unreadable one is treated as absent.
"""

from __future__ import annotations

from dataclasses import dataclass

from allauth.mfa.models import Authenticator
from django.apps import apps
from django.db import models, transaction

from .models.fields import EncryptedTextField, KeyIdField
from .storage import EncryptedStorageMixin, current_key_id, tag_of, tagged_decrypt, tagged_encrypt

SECRET_TYPES = (Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES)


@dataclass(frozen=True)
class EncryptedModel:
    model: type[models.Model]
    files: tuple[str, ...]  # FileFields stored by the encrypted storage
    columns: tuple[str, ...]  # EncryptedTextFields

    @property
    def label(self) -> str:
        return self.model._meta.label


def encrypted_models() -> list[EncryptedModel]:
    """Every model that records the key id of what it encrypts."""
    found = []
    for model in apps.get_models():
        fields = model._meta.concrete_fields
        if not any(isinstance(field, KeyIdField) for field in fields):
            continue
        files = tuple(field.name for field in fields if isinstance(field, models.FileField)
                      and isinstance(field.storage, EncryptedStorageMixin))
        columns = tuple(field.name for field in fields if isinstance(field, EncryptedTextField))
        found.append(EncryptedModel(model, files, columns))
    return found


def _secret_values(data: dict) -> list[str]:
    """The encrypted values of an authenticator's data (allauth's TOTP and recovery codes)."""
    values = [data[name] for name in ("secret", "seed") if isinstance(data.get(name), str)]
    return values + [code for code in data.get("migrated_codes") or [] if isinstance(code, str)]


def key_ids_in_use() -> tuple[set[str], int]:
    """The key ids named by the stored objects, and how many objects name none (stored before
    key ids were recorded, with several keys configured: `manage.py reencrypt` settles them).
    Ids only: nothing is decrypted. Raises DatabaseError when the tables do not exist yet."""
    in_use: set[str] = set()
    unknown = 0
    for entry in encrypted_models():
        rows = entry.model._default_manager
        in_use.update(rows.exclude(key_id="").values_list("key_id", flat=True).distinct().order_by())
        unknown += rows.filter(key_id="").count()
    for data in Authenticator.objects.filter(type__in=SECRET_TYPES).values_list("data", flat=True).iterator():
        for value in _secret_values(data or {}):
            tag = tag_of(value)
            if tag:
                in_use.add(tag)
            else:
                unknown += 1
    return in_use, unknown


def rows_to_reencrypt(entry: EncryptedModel):
    """The rows of one model not (known to be) under the first key."""
    return entry.model._default_manager.exclude(key_id=current_key_id()).order_by("pk")


def row_reencrypt(entry: EncryptedModel, pk: int) -> bool:
    """Write one row's files and encrypted columns again under the first key, then record its
    key id. False if there was nothing to do (already moved, or gone). The row is locked, so
    an edit cannot slip between the read and the write. Files are replaced before the key id
    changes: if anything fails, the row still names the old key and the next run redoes it
    (a file already moved is simply written again)."""
    target = current_key_id()
    with transaction.atomic():
        row = entry.model._default_manager.select_for_update().filter(pk=pk).exclude(key_id=target).first()
        if row is None:
            return False
        for name in entry.files:
            stored = getattr(row, name)
            if stored:
                stored.storage.reencrypt(stored.name)
        # update(), not save(): no save() logic, no timestamp moves; the columns encrypt themselves.
        values = {name: getattr(row, name) for name in entry.columns}
        entry.model._default_manager.filter(pk=pk).update(key_id=target, **values)
    return True


def secrets_to_reencrypt() -> list[int]:
    """The second-factor authenticators holding a secret not under the first key."""
    target = current_key_id()
    rows = Authenticator.objects.filter(type__in=SECRET_TYPES).order_by("pk").values_list("pk", "data")
    return [pk for pk, data in rows if any(tag_of(value) != target for value in _secret_values(data or {}))]


def secret_reencrypt(pk: int) -> bool:
    """Write one authenticator's secrets again under the first key, with its key id."""
    target = current_key_id()
    with transaction.atomic():
        authenticator = Authenticator.objects.select_for_update().filter(pk=pk).first()
        if authenticator is None:
            return False
        data = authenticator.data
        if all(tag_of(value) == target for value in _secret_values(data)):
            return False

        def moved(value: str) -> str:
            return value if tag_of(value) == target else tagged_encrypt(tagged_decrypt(value))

        for name in ("secret", "seed"):
            if isinstance(data.get(name), str):
                data[name] = moved(data[name])
        if isinstance(data.get("migrated_codes"), list):
            data["migrated_codes"] = [moved(code) for code in data["migrated_codes"]]
        Authenticator.objects.filter(pk=pk).update(data=data)
    return True
