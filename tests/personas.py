"""Named people and one patient's record, so tests read like sentences (healthchecks'
alice/bob/charlie). Everything is built through the models directly — the services have
their own tests — with the facts the policy reads."""

from __future__ import annotations

import hashlib
import itertools
import pickle
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.core.files.base import ContentFile
from django.utils import timezone

from dmp.models import (
    Block,
    CareAuthorisation,
    CounterAgent,
    DepositRight,
    Document,
    DocumentType,
    LegalRepresentative,
    Organisation,
    Professional,
    Record,
    TreatingDoctor,
    User,
)
from dmp.models.people import rpps_with_key
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


def make_document(record: Record, label: str, doc_type: str = DocumentType.CONSULTATION_REPORT,
                  author: Professional | None = None, **extra) -> Document:
    content = pdf_bytes(f"{record.pk}-{label}")
    digest = hashlib.sha256(content).hexdigest()
    doc = Document(
        record=record, doc_type=doc_type, title=label, act_date=date(2026, 1, 10),
        author_kind=Document.AuthorKind.PROFESSIONAL if author else Document.AuthorKind.PATIENT,
        author_professional=author, mime_type="application/pdf", size=len(content), content_hash=digest, **extra,
    )
    doc.file.save(digest, ContentFile(content), save=False)
    doc.save()
    document_search_index_build(doc)  # found by its title, like a document stored by the services
    return doc


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
# more time than many of the tests themselves. As Django's TestCase.setUpTestData does, it is
# built for real once, by the first test that asks for it; its rows are then copied by
# PostgreSQL itself into every later test's transaction (one INSERT … SELECT per table, the
# same primary keys, every timestamp moved forward by the time elapsed since the build, as if
# built at that test's start), its files written into that test's MEDIA_ROOT, and each test
# receives its own copy of the objects (a test may change them freely).


@dataclass
class _Table:
    name: str
    rows: str  # the new rows as a JSON array, as PostgreSQL's json_agg wrote them
    insert: str  # INSERT … SELECT from json_populate_recordset, timestamps shifted


@dataclass
class _Snapshot:
    built_at: datetime
    world: bytes  # the objects, pickled: each test unpickles its own copy (faster than deepcopy)
    tables: list[_Table]
    files: dict[str, bytes]  # path under MEDIA_ROOT: content


_snapshots: dict[str, _Snapshot] = {}


def _tables() -> list[tuple[str, str | None]]:
    """(table, primary key column) of every model, the column None where the key is not a
    single integer (the search terms' composite key)."""
    from django.apps import apps
    from django.db import models

    tables = set()
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        integer = isinstance(meta.pk, models.AutoField | models.BigAutoField | models.SmallAutoField)
        tables.add((meta.db_table, meta.pk.column if integer else None))
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
        for table, pk in tables:
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
        for table, pk in tables:
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
            captured.append(_Table(table, rows, insert))
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


def _restore(snapshot: _Snapshot) -> World:
    """The snapshot's rows and files in this test's database and MEDIA_ROOT, and a fresh copy
    of its objects."""
    from pathlib import Path

    from django.conf import settings
    from django.db import connection, transaction

    shift = timezone.now() - snapshot.built_at
    # One transaction even for transactional tests: the foreign keys are checked at its end,
    # once every table is filled.
    with transaction.atomic(), connection.cursor() as cursor:
        for table in snapshot.tables:
            cursor.execute(table.insert, {"shift": shift, "rows": table.rows})
    root = Path(settings.MEDIA_ROOT)
    for name, content in snapshot.files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    world = pickle.loads(snapshot.world)  # noqa: S301 - our own objects, pickled by this process
    _shift_instances(world, shift)
    return world


def world_for_test() -> World:
    """The world of tests/conftest.py's `world` fixture: built for real by the first test of
    the process (per persona language), copied from that build afterwards."""
    from django.db import connection

    if connection.vendor != "postgresql":  # the copy is PostgreSQL's (json_populate_recordset)
        return build_world()
    language = PERSONA_LANGUAGE["code"]
    snapshot = _snapshots.get(language)
    if snapshot is None:
        world, _snapshots[language] = _snapshot(build_world)
        return world
    return _restore(snapshot)
