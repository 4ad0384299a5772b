"""Document keys that can retire (docs/deployment.md, "Document encryption keys"): every
encrypted object records its key id, `manage.py reencrypt` moves everything to the first key,
and the system check dmp.E002 refuses a configuration missing a key still in use."""

from __future__ import annotations

import importlib
import io
import zipfile
from datetime import date

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.utils import decrypt
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import ProgrammingError

from dmp import checks, keyring
from dmp.models import AuditEntry, Document, DocumentType, RecordExport
from dmp.policy import Actor
from dmp.services import document_add, record_export_request, synthesis_write
from dmp.services.export import record_export_build
from dmp.services.synthesis import Problem
from dmp.storage import MAGIC, EncryptedFileSystemStorage, EncryptedStorageMixin, key_id, tag_of
from tests import storage_backends
from tests.personas import TOTP_SECRET
from tests.sample_files import text_pdf
from tests.storage_backends import put_stored_bytes, stored_bytes

moto_endpoint = storage_backends.moto_endpoint
storage_backend = storage_backends.storage_backend

NEW_KEY = Fernet.generate_key().decode()
TITLES = ("Coronarographie", "Bilan lipidique", "Echographie")


@pytest.fixture
def old_key(settings):
    """Key A: the one everything below is stored under."""
    return settings.DOCUMENT_ENCRYPTION_KEYS[0]


@pytest.fixture
def stored(world, old_key):
    """Documents, an export, the synthesis and second-factor secrets, all under key A."""
    documents = [
        document_add(actor=Actor(world.dr_house.user), record=world.record, content=text_pdf(f"{title} normale"),
                     doc_type=DocumentType.LAB_REPORT, title=title, act_date=date(2025, 11, 4))
        for title in TITLES
    ]
    synthesis_write(actor=Actor(world.dr_house.user), record=world.record, allergies="Latex",
                    problems=[Problem("I10", "Hypertension")])
    export = record_export_request(actor=Actor(world.alice), record=world.record)
    record_export_build(export_id=export.pk)
    RecoveryCodes.activate(world.dr_house.user)
    return documents


def _rotate_to(settings, *keys: str) -> None:
    settings.DOCUMENT_ENCRYPTION_KEYS = list(keys)


def _check_ids() -> set[str]:
    return {problem.id for problem in checks.document_keys_in_use_are_configured(databases=["default"])}


def _reencrypt(*args: str) -> str:
    out = io.StringIO()
    call_command("reencrypt", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _stored_files() -> dict[str, bytes]:
    root = django_settings.MEDIA_ROOT
    return {str(path): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def _key_ids() -> set[str]:
    in_use, unknown = keyring.key_ids_in_use()
    assert unknown == 0
    return in_use


def _everything_opens(world) -> None:
    """Every document (file, thumbnail, title), the export, the synthesis and the second factor
    read with the keys configured now."""
    documents = Document.objects.all()  # the world's own documents too, on every record
    assert set(TITLES) <= {document.title for document in documents}
    for document in documents:
        with document.file.open("rb") as stored:
            assert stored.read()
        if document.thumbnail:
            with document.thumbnail.open("rb") as thumbnail:
                assert thumbnail.read()
    export = RecordExport.objects.get(record=world.record, status=RecordExport.Status.READY)
    with export.file.open("rb") as stored:
        assert zipfile.ZipFile(io.BytesIO(stored.read())).namelist()
    synthesis = world.record.syntheses.get()
    assert synthesis.allergies == "Latex" and synthesis.problems.get().label == "Hypertension"
    totp = Authenticator.objects.get(user=world.dr_house.user, type=Authenticator.Type.TOTP)
    assert decrypt(totp.data["secret"]) == TOTP_SECRET
    codes = Authenticator.objects.get(user=world.dr_house.user, type=Authenticator.Type.RECOVERY_CODES)
    assert len(RecoveryCodes(codes).get_unused_codes()) == 10


@pytest.mark.django_db
def test_every_encrypted_object_records_the_key_that_encrypted_it(world, stored, old_key):
    assert _key_ids() == {key_id(old_key)}
    totp = Authenticator.objects.get(user=world.dr_house.user, type=Authenticator.Type.TOTP)
    assert tag_of(totp.data["secret"]) == key_id(old_key)
    # The id is public and short: it is not the key, nor any part of it.
    assert len(key_id(old_key)) == 8 and key_id(old_key) not in old_key


@pytest.mark.django_db
def test_reencrypt_moves_everything_so_the_old_key_can_be_removed(world, stored, old_key, settings):
    _rotate_to(settings, NEW_KEY, old_key)
    assert "dmp.E002" not in _check_ids()  # both keys configured: fine

    output = _reencrypt()

    assert _key_ids() == {key_id(NEW_KEY)}
    _rotate_to(settings, NEW_KEY)  # key A removed
    assert _check_ids() == set()
    _everything_opens(world)
    # What is stored no longer opens with key A.
    for content in _stored_files().values():
        with pytest.raises(InvalidToken):
            Fernet(old_key.encode()).decrypt(content)
    # Counts and ids only: nothing medical in what the operator sees.
    assert "re-encrypted" in output and not any(title in output for title in TITLES)
    assert "Latex" not in output and "Hypertension" not in output


@pytest.mark.django_db
def test_removing_a_key_still_in_use_fails_the_system_check_until_reencrypt_ran(world, stored, old_key, settings):
    _rotate_to(settings, NEW_KEY)
    problems = checks.document_keys_in_use_are_configured(databases=["default"])
    assert [problem.id for problem in problems] == ["dmp.E002"]
    assert key_id(old_key) in problems[0].msg and old_key not in problems[0].msg
    # `manage.py check` stops with the error: the release step, the services' ExecStartPre.
    for options in (["--database", "default", "--tag", checks.KEYS_TAG], ["--deploy", "--database", "default"]):
        with pytest.raises(CommandError, match="dmp.E002"):
            call_command("check", *options, stdout=io.StringIO(), stderr=io.StringIO())

    _rotate_to(settings, NEW_KEY, old_key)
    _reencrypt()
    _rotate_to(settings, NEW_KEY)
    assert _check_ids() == set()
    call_command("check", "--database", "default", "--tag", checks.KEYS_TAG, stdout=io.StringIO(),
                 stderr=io.StringIO())


@pytest.mark.django_db
def test_a_dry_run_counts_and_changes_nothing(world, stored, old_key, settings):
    before = _stored_files()
    _rotate_to(settings, NEW_KEY, old_key)

    output = _reencrypt("--dry-run")

    assert "Dry run" in output
    secrets = Authenticator.objects.filter(type__in=keyring.SECRET_TYPES).count()
    assert f"dmp.Document: {Document.objects.count()} to re-encrypt." in output
    assert f"second-factor secrets: {secrets} to re-encrypt." in output
    assert _stored_files() == before
    assert _key_ids() == {key_id(old_key)}
    assert not AuditEntry.objects.filter(action="keys_reencrypt").exists()


@pytest.mark.django_db
def test_a_second_run_is_a_no_op(world, stored, old_key, settings):
    _rotate_to(settings, NEW_KEY, old_key)
    _reencrypt()
    after_first = _stored_files()
    totp_after_first = Authenticator.objects.get(user=world.dr_house.user, type=Authenticator.Type.TOTP).data

    output = _reencrypt()

    assert "Done: 0 re-encrypted" in output
    assert _stored_files() == after_first
    assert Authenticator.objects.get(user=world.dr_house.user, type=Authenticator.Type.TOTP).data == totp_after_first
    # The operator's run is in the access log once: the second one changed nothing.
    [entry] = AuditEntry.objects.filter(action="keys_reencrypt")
    assert entry.object_id == key_id(NEW_KEY)


@pytest.mark.django_db
def test_an_interrupted_run_continues_where_it_stopped(world, stored, old_key, settings, monkeypatch):
    _rotate_to(settings, NEW_KEY, old_key)
    original = EncryptedFileSystemStorage.reencrypt
    calls = []

    def stopped_after_two_files(self, name):
        if len(calls) == 2:
            raise KeyboardInterrupt  # the operator's Ctrl-C, or the process killed
        calls.append(name)
        original(self, name)

    monkeypatch.setattr(EncryptedFileSystemStorage, "reencrypt", stopped_after_two_files)
    with pytest.raises(KeyboardInterrupt):
        _reencrypt()
    monkeypatch.setattr(EncryptedFileSystemStorage, "reencrypt", original)
    # Part moved, part not: the rows say which (a row moves with all its files, or not at all).
    left = Document.objects.filter(key_id=key_id(old_key)).count()
    assert 0 < left < Document.objects.count()
    assert Document.objects.filter(key_id=key_id(NEW_KEY)).count() == Document.objects.count() - left
    assert _check_ids() == set()

    output = _reencrypt("--batch-size", "2")

    # Only what was left, with a progress line every two objects.
    assert f"dmp.Document: 2/{left} (2 re-encrypted, 0 failed)." in output
    assert f"dmp.Document: {left}/{left} ({left} re-encrypted, 0 failed)." in output
    _rotate_to(settings, NEW_KEY)
    assert _check_ids() == set()
    _everything_opens(world)


@pytest.mark.django_db
def test_an_unreadable_object_is_reported_and_keeps_its_key(world, stored, old_key, settings):
    [first, *_] = stored
    path = first.file.path
    with open(path, "wb") as damaged:
        damaged.write(b"not a token")
    _rotate_to(settings, NEW_KEY, old_key)

    err = io.StringIO()
    with pytest.raises(CommandError, match="1 failed"):
        call_command("reencrypt", stdout=io.StringIO(), stderr=err)

    assert f"dmp.Document #{first.pk}: not re-encrypted (InvalidToken)." in err.getvalue()
    first.refresh_from_db()
    assert first.key_id == key_id(old_key)
    assert Document.objects.exclude(pk=first.pk).filter(key_id=key_id(old_key)).count() == 0
    # So the old key cannot be removed unnoticed.
    _rotate_to(settings, NEW_KEY)
    assert _check_ids() == {"dmp.E002"}


@pytest.mark.django_db
def test_objects_of_unknown_key_are_warned_about_and_settled_by_reencrypt(world, stored, old_key, settings):
    # As the migration leaves rows written before key ids existed, when several keys were set.
    Document.objects.update(key_id="")
    totp = Authenticator.objects.get(user=world.dr_house.user, type=Authenticator.Type.TOTP)
    totp.data["secret"] = totp.data["secret"].partition(":")[2]  # a bare token
    totp.save(update_fields=["data"])
    assert _check_ids() == {"dmp.W002"}
    assert decrypt(totp.data["secret"]) == TOTP_SECRET  # still readable meanwhile

    _rotate_to(settings, NEW_KEY, old_key)
    _reencrypt()
    _rotate_to(settings, NEW_KEY)
    assert _check_ids() == set()
    _everything_opens(world)


def test_the_check_says_nothing_before_the_database_is_migrated(monkeypatch):
    def not_migrated():
        raise ProgrammingError('relation "dmp_document" does not exist')

    monkeypatch.setattr(keyring, "key_ids_in_use", not_migrated)
    assert checks.document_keys_in_use_are_configured(databases=["default"]) == []


@pytest.mark.django_db
def test_the_check_leaves_the_database_alone_unless_asked(world, stored, old_key, settings):
    """A bare `check`, `runserver` and Celery's start-up run the checks without a database."""
    _rotate_to(settings, NEW_KEY)
    assert checks.document_keys_in_use_are_configured() == []
    assert checks.document_keys_in_use_are_configured(databases=["default"])[0].id == "dmp.E002"


def test_every_model_holding_encrypted_data_records_its_key():
    """A new encrypted column or file must come with a key id, or `reencrypt` would skip it."""
    from django.apps import apps
    from django.db.models import FileField

    from dmp.models.fields import EncryptedTextField, KeyIdField

    for model in apps.get_models():
        fields = model._meta.concrete_fields
        encrypted = any(isinstance(field, EncryptedTextField) for field in fields) or any(
            isinstance(field, FileField) and isinstance(field.storage, EncryptedStorageMixin) for field in fields
        )
        assert not encrypted or any(isinstance(field, KeyIdField) for field in fields), model._meta.label


@pytest.mark.django_db
def test_the_migration_names_the_single_key_and_leaves_the_key_unknown_when_there_were_several(
        world, stored, old_key, settings):
    from django.apps import apps

    migration = importlib.import_module("dmp.migrations.0012_key_ids")
    totp = Authenticator.objects.get(user=world.dr_house.user, type=Authenticator.Type.TOTP)
    bare = totp.data["secret"].partition(":")[2]
    Authenticator.objects.filter(pk=totp.pk).update(data={"secret": bare})  # as stored before the migration

    migration.record_known_keys(apps, None)  # one key: every readable object is under it
    totp.refresh_from_db()
    assert totp.data["secret"] == f"{key_id(old_key)}:{bare}" and decrypt(totp.data["secret"]) == TOTP_SECRET
    assert _key_ids() == {key_id(old_key)}

    _rotate_to(settings, NEW_KEY, old_key)
    migration.record_known_keys(apps, None)  # several: which one is unknown
    assert set(Document.objects.values_list("key_id", flat=True)) == {""}
    assert _check_ids() == {"dmp.W002"}


@pytest.mark.django_db
def test_files_stored_as_whole_fernet_tokens_move_to_the_chunked_format(world, stored, old_key, settings):
    """Files written before the chunked format (docs/storage.md) are read, and reencrypt writes
    them again in it, under the new key."""
    [first, *_] = stored
    with first.file.open("rb") as opened:
        content = opened.read()
    put_stored_bytes(first.file.name, Fernet(old_key.encode()).encrypt(content))
    with Document.objects.get(pk=first.pk).file.open("rb") as opened:
        assert opened.read() == content  # still read meanwhile

    _rotate_to(settings, NEW_KEY, old_key)
    _reencrypt()
    _rotate_to(settings, NEW_KEY)

    assert _stored_key_id(first.file.name) == key_id(NEW_KEY)
    _everything_opens(world)


@pytest.mark.django_db
def test_reencrypt_works_on_every_backend(world, storage_backend, stored, old_key, settings):
    """On the file system and on the object store alike, through the storage's own API."""
    names = [name for document in stored for name in (document.file.name, document.thumbnail.name) if name]
    names.append(RecordExport.objects.get(record=world.record).file.name)
    assert {_stored_key_id(name) for name in names} == {key_id(old_key)}

    _rotate_to(settings, NEW_KEY, old_key)
    _reencrypt()
    _rotate_to(settings, NEW_KEY)

    assert {_stored_key_id(name) for name in names} == {key_id(NEW_KEY)}
    assert _key_ids() == {key_id(NEW_KEY)}
    _everything_opens(world)


def _stored_key_id(name: str) -> str:
    """The key id in the header of a stored file of the chunked format."""
    stored = stored_bytes(name)
    assert stored.startswith(MAGIC)
    return stored[len(MAGIC) + 1:len(MAGIC) + 9].decode()
