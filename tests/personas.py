"""Named people and one patient's record, so tests read like sentences (healthchecks'
alice/bob/charlie). Everything is built through the models directly — the services have
their own tests — with the facts the policy reads."""

from __future__ import annotations

import hashlib
import itertools
import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from dmp.models import (
    Block,
    CareAuthorisation,
    CounterAgent,
    DepositRight,
    Document,
    DocumentSearchTerm,
    DocumentType,
    LegalRepresentative,
    Organisation,
    Professional,
    Record,
    TreatingDoctor,
    User,
)
from dmp.models.documents import SPACE_OF_TYPE
from dmp.models.people import rpps_with_key
from dmp.search_index import document_terms, keyed_terms
from dmp.services import document_search_index_build

_counter = itertools.count(1)

PASSWORD = "correct-horse-battery"  # noqa: S105 - every persona's password
# Every persona with a second factor shares this authenticator-app secret (base32).
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105


# The language the personas' accounts store, which their pages follow once logged in (the
# account's language wins over the browser's): set per test by tests/conftest.py to the
# language of the test's browser — English for the test client, whose assertions are written in
# the source language; French for the browser tests, which read the French screens.
PERSONA_LANGUAGE = {"code": "en"}


def make_user(username: str, **extra) -> User:
    first, _, last = username.partition("_")
    extra.setdefault("preferred_language", PERSONA_LANGUAGE["code"])
    user = User(username=username, first_name=first.title(), last_name=(last or "Test").title(), **extra)
    user.set_password(PASSWORD)
    user.save()
    return user


def enrol_totp(user: User) -> User:
    """Give the account an authenticator app, as its owner would at first login."""
    from allauth.mfa.totp.internal.auth import TOTP

    TOTP.activate(user, TOTP_SECRET)
    return user


def totp_code(offset: int = 0) -> str:
    """The authenticator app's current code (offset in 30-second steps). Near the end of a step
    it waits for the next one, as a person would: the server accepts the current step only, and
    a slow browser test could otherwise send a code that expired on the way."""
    import time

    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    if offset == 0 and time.time() % 30 > 25:
        time.sleep(30 - time.time() % 30 + 0.1)
    return format_hotp_value(hotp_value(TOTP_SECRET, int(time.time()) // 30 + offset))


def make_professional(username: str, profession: str = "gp", *, second_factor: bool = True,
                      **extra) -> Professional:
    user = make_user(username)
    if second_factor:
        enrol_totp(user)
    return Professional.objects.create(
        user=user, rpps=rpps_with_key(f"10{next(_counter):08d}"), profession=profession, **extra
    )


def make_record(holder: User | None, **extra) -> Record:
    values = {"family_name": "Martin", "given_names": "Alice", "birth_date": date(1970, 5, 17)} | extra
    return Record.objects.create(holder=holder, **values)


def pdf_bytes(label: str) -> bytes:
    """A distinct minimal PDF per label (the record refuses the same file twice)."""
    return b"%PDF-1.4\n% " + label.encode() + b"\n%%EOF\n"


def _unsaved_document(record: Record, label: str, doc_type: str, author: Professional | None,
                      **extra) -> Document:
    """A document of `label`'s own file (stored, encrypted), its row not saved yet."""
    content = pdf_bytes(f"{record.pk}-{label}")
    digest = hashlib.sha256(content).hexdigest()
    extra.setdefault("act_date", date(2026, 1, 10))
    doc = Document(
        record=record, doc_type=doc_type, title=label,
        author_kind=Document.AuthorKind.PROFESSIONAL if author else Document.AuthorKind.PATIENT,
        author_professional=author, mime_type="application/pdf", size=len(content), content_hash=digest, **extra,
    )
    doc.file.save(digest, ContentFile(content), save=False)
    return doc


def make_document(record: Record, label: str, doc_type: str = DocumentType.CONSULTATION_REPORT,
                  author: Professional | None = None, **extra) -> Document:
    doc = _unsaved_document(record, label, doc_type, author, **extra)
    doc.save()
    document_search_index_build(doc)  # found by its title, like a document stored by the services
    return doc


def make_documents(record: Record, labels: Sequence[str], *, author: Professional,
                   act_dates: Sequence[date] | None = None,
                   doc_type: str = DocumentType.CONSULTATION_REPORT) -> list[Document]:
    """One document per label by `author`, as `make_document` makes it (the same file per
    label, found by its title), on `act_dates` (one per label) or `make_document`'s date: its
    rows, files and search index in three queries instead of five per document, for the tests
    of paging and query ceilings (200 documents took a second and a half one by one)."""
    documents = [
        # bulk_create does not call save(), which fills the space from the type.
        _unsaved_document(record, label, doc_type, author, space=SPACE_OF_TYPE[doc_type],
                          **({"act_date": act_dates[n]} if act_dates is not None else {}))
        for n, label in enumerate(labels)
    ]
    Document.objects.bulk_create(documents)
    DocumentSearchTerm.objects.bulk_create([
        DocumentSearchTerm(document=document, term=term)
        for document in documents
        for term in sorted(keyed_terms(record.pk, document_terms(document.title, document.extracted_text)))
    ], batch_size=1000)
    return documents


def titled(documents, *titles: str) -> list[Document]:
    """The documents among `documents` whose title is one of `titles`. Titles are encrypted
    at rest (dmp/models/fields.py): the database cannot compare them, Python does."""
    return [document for document in documents if document.title in titles]


@dataclass
class World:
    """Alice's record and everyone around it; Léo, a minor, and his mother."""

    alice: User
    record: Record
    dr_house: Professional  # Alice's médecin traitant
    dr_grant: Professional  # GP with a care authorisation granted by Alice
    kine: Professional  # physiotherapist, care declared at a consultation
    blocked_kine: Professional  # physiotherapist Alice blocked (he also had an authorisation)
    stranger: Professional  # GP with no relation to Alice
    urgentist: Professional  # emergency physician with an active break-glass
    late_urgentist: Professional  # emergency physician whose break-glass expired
    regulator: Professional  # SAMU regulator
    blocked_regulator: Professional  # SAMU regulator Alice blocked
    agent: CounterAgent  # CADA social worker who onboarded Alice
    other_agent: CounterAgent  # counter agent who did not
    admin: User
    nobody: User  # an account with no role at all
    leo: User
    leo_record: Record
    mother: User  # Léo's legal representative
    docs: dict[str, Document] = field(default_factory=dict)


def build_world() -> World:
    now = timezone.now()
    cada = Organisation.objects.create(name="CADA Lille", kind=Organisation.Kind.RECEPTION_CENTRE)
    cpam = Organisation.objects.create(name="CPAM Roubaix", kind=Organisation.Kind.CPAM_COUNTER)
    agent = CounterAgent.objects.create(user=enrol_totp(make_user("sonia_agent")), organisation=cada)
    other_agent = CounterAgent.objects.create(user=enrol_totp(make_user("paul_guichet")), organisation=cpam)
    alice = make_user("alice_martin", phone="+33612345678")
    record = make_record(alice, created_by=agent.user)
    DepositRight.objects.create(record=record, agent=agent)

    dr_house = make_professional("gregory_house", town="Lille")
    dr_grant = make_professional("anna_grant", town="Lille")
    kine = make_professional("kim_kine", "physiotherapist")
    blocked_kine = make_professional("bob_kine", "physiotherapist")
    stranger = make_professional("sam_stranger", town="Roubaix")
    urgentist = make_professional("ursula_urgences", "specialist", specialty="Médecine d'urgence")
    late_urgentist = make_professional("lars_late", "specialist", specialty="Médecine d'urgence")
    regulator = make_professional("regis_samu", is_samu_regulator=True)
    blocked_regulator = make_professional("rita_samu", is_samu_regulator=True)

    TreatingDoctor.objects.create(record=record, professional=dr_house)
    CA = CareAuthorisation
    CA.objects.create(record=record, professional=dr_grant, kind=CA.Kind.GRANTED_BY_PATIENT)
    CA.objects.create(record=record, professional=kine, kind=CA.Kind.DECLARED_BY_PROFESSIONAL)
    CA.objects.create(record=record, professional=blocked_kine, kind=CA.Kind.GRANTED_BY_PATIENT)
    Block.objects.create(record=record, professional=blocked_kine)
    Block.objects.create(record=record, professional=blocked_regulator)
    CA.objects.create(record=record, professional=urgentist, kind=CA.Kind.BREAK_GLASS,
                      justification="Unconscious, brought by firemen", expires_at=now + timedelta(hours=4))
    CA.objects.create(record=record, professional=late_urgentist, kind=CA.Kind.BREAK_GLASS,
                      justification="Fall", created_at=now - timedelta(hours=6), expires_at=now - timedelta(hours=2))

    docs = {
        # Written by Dr Grant; a GP reads consultation reports, a physiotherapist does not.
        "consultation": make_document(record, "consultation", author=dr_grant),
        "imaging": make_document(record, "imaging", DocumentType.IMAGING_REPORT, author=dr_grant),
        # Alice hid Dr Grant's psychiatric letter from professionals.
        "hidden": make_document(record, "hidden", author=dr_grant, hidden_from_professionals=True),
        # Hidden imaging: the physiotherapist could read the type, but not hidden.
        "hidden_imaging": make_document(record, "hidden imaging", DocumentType.IMAGING_REPORT, author=dr_grant,
                                        hidden_from_professionals=True),
        # A result Dr Grant announces in consultation first.
        "withheld": make_document(record, "withheld", DocumentType.LAB_REPORT, author=dr_grant,
                                  withheld_from_patient_until=now + timedelta(days=7)),
        "released": make_document(record, "released", DocumentType.LAB_REPORT, author=dr_grant,
                                  withheld_from_patient_until=now - timedelta(days=1)),
        "archived": make_document(record, "archived", author=dr_grant, status=Document.Status.ARCHIVED),
        "own": make_document(record, "own", DocumentType.PATIENT_DOCUMENT),
    }

    mother = make_user("marie_parent", email="marie.parent@example.org")
    leo = make_user("leo_martin", email="leo.martin@example.org")
    leo_record = make_record(leo, given_names="Léo", birth_date=date(2011, 3, 2))
    LegalRepresentative.objects.create(record=leo_record, user=mother, relationship="parent")
    TreatingDoctor.objects.create(record=leo_record, professional=dr_house)
    docs["leo_visit"] = make_document(leo_record, "leo visit", author=dr_house)
    docs["leo_confidential"] = make_document(leo_record, "leo confidential", author=dr_house,
                                             hidden_from_representatives=True)
    docs["leo_withheld"] = make_document(leo_record, "leo withheld", DocumentType.LAB_REPORT, author=dr_house,
                                         withheld_from_patient_until=now + timedelta(days=7))

    return World(
        alice=alice, record=record, dr_house=dr_house, dr_grant=dr_grant, kine=kine, blocked_kine=blocked_kine,
        stranger=stranger, urgentist=urgentist, late_urgentist=late_urgentist, regulator=regulator,
        blocked_regulator=blocked_regulator, agent=agent, other_agent=other_agent,
        admin=enrol_totp(make_user("ada_admin", is_staff=True, is_superuser=True)), nobody=make_user("nora_nobody"),
        leo=leo, leo_record=leo_record, mother=mother, docs=docs,
    )


def user_of(world: World, persona: str) -> User:
    value = getattr(world, persona)
    return value if isinstance(value, User) else value.user


# --- the world, built once per test process -------------------------------------------------
#
# Most tests start from the same world, and building it (about 250 inserts, eleven files) took
# more time than many of the tests themselves; copying its rows into every test's transaction
# still cost 10 to 30 ms a test. So, as Django's TestCase.setUpTestData does, it is built for
# real once per test process, by the first test that asks for it (in that test's transaction);
# from the second on it is committed, once, by a connection of its own (`_side_connection`),
# and every test that asks for it sees it and rolls back what it changed. Its files are written
# into each test's MEDIA_ROOT, and each test receives its own copy of the objects (a test may
# change them freely).
#
# - A test without the world does not see it: its rows are deleted inside that test's
#   transaction (`hide_committed_world`), which its rollback undoes.
# - Its timestamps are moved forward, committed, whenever it is more than WORLD_MAX_AGE old:
#   a test finds it as if built a moment before it started.
# - A transactional test (live server, threads) empties every table when it ends: the world is
#   committed again for the next test that asks for it. One that runs without the world, or
#   with the French one of the browser tests, has it deleted first; the French world is copied
#   from its build into each test (one INSERT … SELECT per table, the same primary keys, every
#   timestamp moved forward by the time elapsed since the build).

WORLD_MAX_AGE = timedelta(seconds=30)


@dataclass
class _Table:
    name: str
    rows: str  # the new rows as a JSON array, as PostgreSQL's json_agg wrote them
    insert: str  # INSERT … SELECT from json_populate_recordset, timestamps shifted
    delete: str  # DELETE of these rows, found by their key
    shift: str | None  # UPDATE moving these rows' timestamps, None without a timestamp column


@dataclass
class _Snapshot:
    built_at: datetime
    world: bytes  # the objects, pickled: each test unpickles its own copy (faster than deepcopy)
    tables: list[_Table]
    files: dict[str, bytes]  # path under MEDIA_ROOT: content


_snapshots: dict[str, _Snapshot] = {}


@dataclass
class _Committed:
    """The English world as committed in this process's test database, if it is."""

    present: bool = False
    shift: timedelta = timedelta(0)  # how far its timestamps were moved since the build


_committed = _Committed()


def _tables() -> list[tuple[str, str | None, tuple[str, ...]]]:
    """(table, primary key column, key columns) of every model, the primary key column None
    where the key is not a single integer (the search terms' composite key)."""
    from django.apps import apps
    from django.db import models

    tables = set()
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        integer = isinstance(meta.pk, models.AutoField | models.BigAutoField | models.SmallAutoField)
        key = tuple(field.column for field in meta.pk_fields)
        tables.add((meta.db_table, meta.pk.column if integer else None, key))
    return sorted(tables, key=lambda table: table[0])


def _media_files(root) -> dict[str, bytes]:
    from pathlib import Path

    root = Path(root)
    if not root.exists():
        return {}
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def _snapshot(build) -> tuple[World, _Snapshot]:
    """Build the world for real and keep what it wrote: its rows (those whose key is past the
    highest key each table held before) and its files."""
    from django.conf import settings
    from django.db import connection

    tables = _tables()
    with connection.cursor() as cursor:
        before = {}
        for table, pk, _key in tables:
            if pk is None:  # a copy of the rows, to tell the new ones by difference
                cursor.execute(f'CREATE TEMPORARY TABLE "before_{table}" AS SELECT * FROM "{table}"')
            else:
                cursor.execute(f'SELECT max("{pk}") FROM "{table}"')  # noqa: S608 - our table names
                before[table] = cursor.fetchone()[0] or 0
    files_before = _media_files(settings.MEDIA_ROOT)
    world = build()
    # Taken once the build is over: moved by (restore time - built_at), every timestamp the
    # build wrote stays before the test's start, as when the world was built for the test (a
    # document the test adds is the newest).
    built_at = timezone.now()
    captured = []
    with connection.cursor() as cursor:
        for table, pk, key in tables:
            if pk is None:
                cursor.execute(f'SELECT json_agg(t)::text FROM (SELECT * FROM "{table}"'  # noqa: S608
                               f' EXCEPT SELECT * FROM "before_{table}") t')
                rows = cursor.fetchone()[0]
                cursor.execute(f'DROP TABLE "before_{table}"')
            else:
                cursor.execute(
                    f'SELECT json_agg(t ORDER BY "{pk}")::text FROM "{table}" t WHERE "{pk}" > %s',  # noqa: S608
                    [before[table]],
                )
                rows = cursor.fetchone()[0]
            if rows is None:
                continue
            cursor.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
                [table],
            )
            columns = cursor.fetchall()
            names = ", ".join(f'"{name}"' for name, _ in columns)
            values = ", ".join(
                f'"{name}" + %(shift)s' if kind == "timestamp with time zone" else f'"{name}"' for name, kind in columns
            )
            insert = (f'INSERT INTO "{table}" ({names}) SELECT {values}'  # noqa: S608 - our table names
                      f' FROM json_populate_recordset(NULL::"{table}", %(rows)s)')
            keys = ", ".join(f'"{column}"' for column in key)
            these = f'({keys}) IN (SELECT {keys} FROM json_populate_recordset(NULL::"{table}", %(rows)s))'
            delete = f'DELETE FROM "{table}" WHERE {these}'  # noqa: S608 - our table names
            moved = ", ".join(f'"{name}" = "{name}" + %(shift)s' for name, kind in columns
                              if kind == "timestamp with time zone")
            shift = f'UPDATE "{table}" SET {moved} WHERE {these}' if moved else None  # noqa: S608
            captured.append(_Table(table, rows, insert, delete, shift))
    files = {name: content for name, content in _media_files(settings.MEDIA_ROOT).items() if name not in files_before}
    return world, _Snapshot(built_at, pickle.dumps(world), captured, files)


def _shift_instances(world: World, shift: timedelta) -> None:
    """Move every timestamp of the world's objects (and the objects they hold) by `shift`,
    as the rows were moved."""
    from django.db import models

    seen: set[int] = set()

    def visit(instance):
        if not isinstance(instance, models.Model) or id(instance) in seen:
            return
        seen.add(id(instance))
        for model_field in instance._meta.concrete_fields:
            if isinstance(model_field, models.DateTimeField):
                value = getattr(instance, model_field.attname, None)
                if value is not None:
                    setattr(instance, model_field.attname, value + shift)
        for related in instance._state.fields_cache.values():
            visit(related)

    for name in World.__dataclass_fields__:
        value = getattr(world, name)
        for item in value.values() if isinstance(value, dict) else [value]:
            visit(item)


def _write_files(snapshot: _Snapshot) -> None:
    from pathlib import Path

    from django.conf import settings

    root = Path(settings.MEDIA_ROOT)
    for name, content in snapshot.files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def _copy_of_objects(snapshot: _Snapshot, shift: timedelta) -> World:
    world = pickle.loads(snapshot.world)  # noqa: S301 - our own objects, pickled by this process
    _shift_instances(world, shift)
    return world


def _restore(snapshot: _Snapshot) -> World:
    """The snapshot's rows and files in this test's database and MEDIA_ROOT, and a fresh copy
    of its objects."""
    shift = timezone.now() - snapshot.built_at
    # One transaction even for transactional tests: the foreign keys are checked at its end,
    # once every table is filled.
    _run_each(lambda table: table.insert, snapshot, shift, committed=False)
    _write_files(snapshot)
    return _copy_of_objects(snapshot, shift)


_side: dict = {}


def _side_connection():
    """A connection of this process's own to its test database, beside Django's: what it
    commits, a test's transaction already open sees from its next statement on (PostgreSQL's
    READ COMMITTED), so the world is committed while the test's transaction stays as it is."""
    import psycopg
    from django.db import connection

    side = _side.get("connection")
    if side is None or side.closed:
        params = connection.settings_dict
        side = psycopg.connect(
            dbname=params["NAME"], user=params["USER"] or None, password=params["PASSWORD"] or None,
            host=params["HOST"] or None, port=params["PORT"] or None, autocommit=True,
            cursor_factory=psycopg.ClientCursor,
            # Waiting on a row a test's transaction holds would wait for ever: fail instead.
            options="-c lock_timeout=10s",
        )
        _side["connection"] = side
    return side


def close_side_connection() -> None:
    """Before the test database is dropped, which refuses while a connection is open."""
    side = _side.pop("connection", None)
    if side is not None:
        side.close()


def _run_each(statement_of, snapshot: _Snapshot, shift: timedelta = timedelta(0), *, committed: bool) -> None:
    """One statement per table of the snapshot, in one transaction (the foreign keys are checked
    at its end): committed by the side connection, or inside the test's own transaction."""
    from django.db import connection, transaction

    params = {"shift": shift}
    if committed:
        side = _side_connection()
        context = side.transaction()
        cursor = side.cursor()
    else:
        context = transaction.atomic()
        cursor = connection.cursor()
    with context, cursor:
        for table in snapshot.tables:
            statement = statement_of(table)
            if statement is not None:
                cursor.execute(statement, params | {"rows": table.rows})


def _commit_world(snapshot: _Snapshot) -> None:
    _committed.shift = timezone.now() - snapshot.built_at
    _run_each(lambda table: table.insert, snapshot, _committed.shift, committed=True)
    _committed.present = True


def _refresh_committed_world(snapshot: _Snapshot) -> None:
    """Move the committed world's timestamps to now when it is older than WORLD_MAX_AGE."""
    late = timezone.now() - (snapshot.built_at + _committed.shift)
    if late > WORLD_MAX_AGE:
        _run_each(lambda table: table.shift, snapshot, late, committed=True)
        _committed.shift += late


def committed_world_present() -> bool:
    return _committed.present


def hide_committed_world() -> None:
    """Delete the committed world's rows inside the current test's transaction: its rollback
    brings them back."""
    if _committed.present:
        _run_each(lambda table: table.delete, _snapshots["en"], committed=False)


def remove_committed_world() -> None:
    """Delete the committed world's rows for good: before a transactional test that runs
    without it, and when the session ends (a kept database starts the next run empty)."""
    if _committed.present:
        _run_each(lambda table: table.delete, _snapshots["en"], committed=True)
        _committed.present = False


def forget_committed_world() -> None:
    """A transactional test emptied every table, the committed world's rows with them."""
    _committed.present = False


def world_for_test() -> World:
    """The world of tests/conftest.py's `world` fixture: built for real by the first test of the
    process that asks for it (per persona language); afterwards the English one is committed
    (once, and again after a transactional test emptied the tables) and the French one of the
    browser tests copied from its build into each test."""
    from django.db import connection

    if connection.vendor != "postgresql":  # the copy is PostgreSQL's (json_populate_recordset)
        return build_world()
    language = PERSONA_LANGUAGE["code"]
    snapshot = _snapshots.get(language)
    if language == "en" and snapshot is not None:
        if _committed.present:
            _refresh_committed_world(snapshot)
        else:
            _commit_world(snapshot)
        _write_files(snapshot)
        return _copy_of_objects(snapshot, _committed.shift)
    if snapshot is None:
        world, _snapshots[language] = _snapshot(build_world)
        return world
    return _restore(snapshot)


def _committed_world() -> World:
    """The committed English world's objects, outside any test's transaction: built the first
    time in a transaction rolled back once its snapshot is taken, then committed."""
    language, PERSONA_LANGUAGE["code"] = PERSONA_LANGUAGE["code"], "en"
    try:
        if "en" not in _snapshots:
            with transaction.atomic():
                _world, _snapshots["en"] = _snapshot(build_world)
                transaction.set_rollback(True)
        return world_for_test()
    finally:
        PERSONA_LANGUAGE["code"] = language


# The module fixtures of world_for_module: their tests see the committed world, as a test with
# the `world` fixture does (tests/conftest.py does not delete it for them).
MODULE_WORLDS: set[str] = set()


def world_for_module(fill: Callable[[World], None], name: str) -> Callable[..., Iterator[World]]:
    """A module fixture `name` yielding the world after `fill(world)`, as Django's
    TestCase.setUpClass does: what `fill` adds (thousands of rows for the query-plan tests) is
    written once for the module, in a transaction rolled back after its last test; each test
    runs in a savepoint inside it (pytest-django's own transaction, nested). Its tests use it
    instead of the `world` fixture."""
    MODULE_WORLDS.add(name)

    @pytest.fixture(scope="module", name=name)
    def fixture(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[World]:
        files = tmp_path_factory.mktemp("module-world")
        # The files and audit checkpoints written meanwhile stay out of the repository's
        # folders; each test still writes its own in its own folder (tests/conftest.py).
        with (django_db_blocker.unblock(),
              override_settings(MEDIA_ROOT=files / "documents", AUDIT_CHECKPOINT_DIR=files / "audit-checkpoints")):
            world = _committed_world()
            with transaction.atomic():
                fill(world)
                yield world
                transaction.set_rollback(True)

    return fixture
