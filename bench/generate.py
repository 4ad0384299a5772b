"""A dataset at scale for the page, load and batch measurements (bench/README.md, "Scale
harness"): records with their patients' accounts, professionals, médecins traitants and care
authorisations, documents, and audit entries forming valid chains, written through the
project's models in batches (`bulk_create`), as the services would leave them.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dmp_bench_scale \\
        .venv/bin/python bench/generate.py --records 10000 --documents 200000 --audit 1000000

What is made:

- the cast the measurements log in as: a GP (`bench_clinician`, with a second factor) who is
  the médecin traitant of every probe record, and a counter agent (`bench_counter`) of a
  reception centre that onboarded the probe records and every tenth other record;
- four probe records of exactly 5, 50, 500 and 5,000 documents in their latest version (holders
  `bench_probe_5` …; plus the first versions a tenth of them replaced), each with as many audit
  entries as documents: the page measurements open these;
- `records` records in all (the probes included) with a NIR, a consent, a personal profile, a
  médecin traitant and a care authorisation granted to a second professional (one GP for
  twenty records); the documents and the audit entries are spread over the other records,
  0 to twice the mean each; a tenth of the documents have a second version, one in twenty is
  hidden from professionals, one in twelve archived, one in eight is the patient's own;
- audit entries per record as `dmp.audit.log_access()` writes them (chain, position, link,
  hash, HMAC under the first AUDIT_HMAC_KEYS key, chain head), the oldest two years ago; then
  one signed checkpoint over every chain head (`manage.py verify_audit --full` checks it all).

Files: a document's file is a tiny PDF written through the encrypted storage where something
reads it — every document of the probe records (the export reads them; their search terms are
written too) — and for every document with `--all-files`. The other documents' rows name a file
as the services would (`records/<record>/<content hash>`) that the pages never open. No
thumbnails: the lists link to them, no measured request reads one.

Resumable: each batch of records is one transaction and every row follows from the record's
number, so a run stopped part way continues where it stopped when started again with the same
arguments; a larger `--records` later adds records (the documents and entries per record
follow from the new totals). `--check` only prints what the dataset holds. `--fresh` drops
the database first. The database's name must contain "bench".
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from _setup import commit, django_on_a_bench_database, fresh_database

PROBES = (5, 50, 500, 5_000)
CLINICIAN = "bench_clinician"
COUNTER_AGENT = "bench_counter"
PROBE_HOLDER = "bench_probe_{}"
PATIENT = "bench_patient_{:07d}"
PROFESSIONAL = "bench_pro_{:05d}"
RECORDS_PER_PROFESSIONAL = 20
BATCH = 500
SEED = 16
PASSWORD = "bench-password-0123"  # noqa: S105 - the benchmark's own accounts, never a real one
HISTORY_DAYS = 730

# Professionals' documents: a spread of types over the spaces the patient screen groups.
PRO_TYPES = ("consultation_report", "lab_report", "imaging_report", "medication_prescription",
             "hospital_stay_report", "discharge_letter", "care_prescription", "screening_report",
             "certificate", "synthesis")
# What a professional does on a record, as `access_log` records it.
PRO_ACTIONS = ("view_record", "view_record", "view_document", "view_document", "view_synthesis", "add_document")


@dataclass
class Rates:
    """Rows made per table and the seconds spent making them (Python and database)."""

    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    wall: float = 0.0

    def add(self, table: str, rows: int, started: float) -> None:
        self.rows[table] += rows
        self.seconds[table] += time.perf_counter() - started

    def table(self) -> str:
        lines = ["| table | rows | seconds | rows/s |", "|---|---:|---:|---:|"]
        for name in sorted(self.rows, key=lambda n: -self.seconds[n]):
            seconds = self.seconds[name]
            rate = self.rows[name] / seconds if seconds else 0
            lines.append(f"| {name} | {self.rows[name]:,} | {seconds:.1f} | {rate:,.0f} |")
        lines.append(f"| all, wall time | | {self.wall:.1f} | |")
        return "\n".join(lines)


@dataclass(frozen=True)
class Plan:
    """What one record gets, decided from its number alone (so a resumed run makes the same)."""

    index: int
    username: str
    documents: int
    entries: int
    onboarded: bool
    files: bool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--audit", type=int, default=1_000_000)
    parser.add_argument("--all-files", action="store_true", help="write every document's file, not only the probes'")
    parser.add_argument("--fresh", action="store_true", help="drop the database and start again")
    parser.add_argument("--check", action="store_true", help="print what the dataset holds and stop")
    args = parser.parse_args()
    django_on_a_bench_database()
    if args.fresh:
        fresh_database()
    else:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    if args.check:
        print(dataset_summary())
        return
    print(f"Scale dataset, commit {commit()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    rates = generate(records=args.records, documents=args.documents, audit=args.audit,
                     all_files=args.all_files, progress=True)
    print(rates.table())
    print(dataset_summary())


def generate(*, records: int, documents: int, audit: int, all_files: bool = False, progress: bool = False,
             batch: int = BATCH, probes: tuple[int, ...] = PROBES, vacuum: bool = True) -> Rates:
    """Bring the dataset up to `records` records (the probes included) with about `documents`
    documents and `audit` audit entries in all; returns the rates. Callable from a test (smaller
    `probes`, and no VACUUM, which cannot run inside the test's transaction)."""
    from django.db import connection

    if records < len(probes) + 1:
        raise ValueError(f"--records: at least {len(probes) + 1}")
    rates = Rates()
    started = time.perf_counter()
    cast = _cast(professionals=max(2, records // RECORDS_PER_PROFESSIONAL), rates=rates)
    for size in probes:
        plan = Plan(index=-size, username=PROBE_HOLDER.format(size), documents=size, entries=size,
                    onboarded=True, files=True)
        if not _exists(plan.username):
            _make_records([plan], cast, rates)
    others = records - len(probes)
    per_record_documents = max(0, documents - sum(probes)) / others
    per_record_entries = max(0, audit - sum(probes)) / others
    done = _bench_patients()
    for first in range(done, others, batch):
        plans = [_plan(i, per_record_documents, per_record_entries, all_files)
                 for i in range(first, min(first + batch, others))]
        _make_records(plans, cast, rates)
        if progress:
            made = first + len(plans)
            elapsed = time.perf_counter() - started
            print(f"  {made:,} / {others:,} records, {elapsed:.0f} s", flush=True)
    step = time.perf_counter()
    from dmp.audit import checkpoint_create

    checkpoint = checkpoint_create()
    rates.add("signed checkpoint (chain heads)", checkpoint.body["chains"] if checkpoint else 0, step)
    step = time.perf_counter()
    with connection.cursor() as cursor:
        for table in _ANALYSED if vacuum else ():
            cursor.execute(f"VACUUM ANALYZE {table}")
    rates.add("VACUUM ANALYZE", 0, step)
    rates.wall = time.perf_counter() - started
    return rates


_ANALYSED = ("dmp_user", "dmp_professional", "dmp_record", "dmp_document", "dmp_auditentry", "dmp_auditchainhead",
             "dmp_documentsearchterm", "dmp_careauthorisation", "dmp_treatingdoctor")


def _plan(index: int, documents: float, entries: float, all_files: bool) -> Plan:
    rng = random.Random(SEED * 1_000_003 + index)  # noqa: S311 - data, not secrets
    return Plan(index=index, username=PATIENT.format(index), documents=round(rng.uniform(0, 2 * documents)),
                entries=round(rng.uniform(0, 2 * entries)), onboarded=index % 10 == 0, files=all_files)


def _exists(username: str) -> bool:
    from dmp.models import User

    return User.objects.filter(username=username).exists()


def _bench_patients() -> int:
    """How many numbered records a previous run finished (batches are all or nothing)."""
    from dmp.models import User

    return User.objects.filter(username__startswith="bench_patient_").count()


@dataclass
class Cast:
    password: str
    clinician: object
    agent: object
    professionals: list
    labels: dict


def _cast(*, professionals: int, rates: Rates) -> Cast:
    """The accounts the measurements log in as, and the professionals (created once, kept)."""
    from allauth.mfa.totp.internal.auth import TOTP
    from django.contrib.auth.hashers import make_password

    from dmp.models import CounterAgent, Organisation, Professional, User
    from dmp.models.people import rpps_with_key
    from dmp.policy import Actor

    step = time.perf_counter()
    password = make_password(PASSWORD)
    centre, _ = Organisation.objects.get_or_create(name="Bench reception centre",
                                                   kind=Organisation.Kind.RECEPTION_CENTRE)
    clinician = Professional.objects.filter(user__username=CLINICIAN).select_related("user").first()
    if clinician is None:
        user = User.objects.create(username=CLINICIAN, first_name="Claire", last_name="Bench", password=password,
                                   preferred_language="fr")
        TOTP.activate(user, "JBSWY3DPEHPK3PXP")
        clinician = Professional.objects.create(user=user, rpps=rpps_with_key("1899999999"), profession="gp")
    agent = CounterAgent.objects.filter(user__username=COUNTER_AGENT).select_related("user").first()
    if agent is None:
        user = User.objects.create(username=COUNTER_AGENT, first_name="Camille", last_name="Bench",
                                   password=password, preferred_language="fr")
        TOTP.activate(user, "JBSWY3DPEHPK3PXP")
        agent = CounterAgent.objects.create(user=user, organisation=centre)
    have = set(User.objects.filter(username__startswith="bench_pro_").values_list("username", flat=True))
    missing = [i for i in range(professionals) if PROFESSIONAL.format(i) not in have]
    users = User.objects.bulk_create(
        [User(username=PROFESSIONAL.format(i), first_name="Pro", last_name=f"Bench {i}", password=password)
         for i in missing], batch_size=2_000)
    Professional.objects.bulk_create(
        [Professional(user=u, rpps=rpps_with_key(f"18{i:08d}"), profession="gp" if i % 4 else "nurse",
                      town="Lille") for u, i in zip(users, missing, strict=True)], batch_size=2_000)
    rates.add("dmp_user + dmp_professional (professionals)", 2 * len(missing), step)
    pros = list(Professional.objects.filter(user__username__startswith="bench_pro_").select_related("user")
                .order_by("user__username"))
    labels = {p.user_id: Actor(p.user).label for p in [*pros, clinician]}
    return Cast(password=password, clinician=clinician, agent=agent, professionals=pros, labels=labels)


def _nir(index: int) -> str:
    """A valid NIR, different for each record number (up to about a million)."""
    from dmp.models.record import nir_key

    n = index + 10_000  # the probes have negative numbers
    first13 = f"{1 + n % 2}{50 + n % 40:02d}{1 + n % 12:02d}59{1 + (n // 999) % 990:03d}{1 + n % 999:03d}"
    return first13 + f"{nir_key(first13):02d}"


def pdf_content(record_id: int, n: int) -> bytes:
    """A distinct tiny PDF per document of a record (a record refuses the same file twice)."""
    return b"%PDF-1.4\n% bench document " + f"{record_id}-{n}".encode() + b"\n%%EOF\n"


def _make_records(plans: list[Plan], cast: Cast, rates: Rates) -> None:
    """One batch of records and everything that hangs on them, in one transaction."""
    from django.db import transaction

    from dmp.models import (
        CareAuthorisation,
        Consent,
        DepositRight,
        PersonalProfile,
        Record,
        TreatingDoctor,
        User,
    )

    now = datetime.now(UTC)
    with transaction.atomic():
        step = time.perf_counter()
        users = User.objects.bulk_create([
            User(username=p.username, first_name="Patient", last_name=f"Bench {p.index}", password=cast.password,
                 last_login=now - timedelta(days=p.index % 90)) for p in plans])
        rates.add("dmp_user (patients)", len(users), step)
        step = time.perf_counter()
        agent_user = cast.agent.user
        records = Record.objects.bulk_create([
            Record(holder=user, nir=_nir(p.index), family_name=f"Bench {p.index}", given_names="Patient",
                   birth_date=date(1940 + p.index % 70, 1 + p.index % 12, 1 + p.index % 28),
                   sex="F" if p.index % 2 else "M", phone="+33639980000",
                   created_at=now - timedelta(days=800 + p.index % 100),
                   created_by=agent_user if p.onboarded else None)
            for p, user in zip(plans, users, strict=True)])
        rates.add("dmp_record", len(records), step)
        step = time.perf_counter()
        Consent.objects.bulk_create([
            Consent(record=r, presented_and_consented=True, break_glass_allowed=True, samu_allowed=True,
                    channel=Consent.Channel.COUNTER if p.onboarded else Consent.Channel.PROFESSIONAL,
                    captured_by=agent_user if p.onboarded else None, captured_at=r.created_at)
            for p, r in zip(plans, records, strict=True)])
        PersonalProfile.objects.bulk_create([PersonalProfile(record=r) for r in records])
        DepositRight.objects.bulk_create([
            DepositRight(record=r, agent=cast.agent, created_at=r.created_at)
            for p, r in zip(plans, records, strict=True) if p.onboarded])
        rates.add("dmp_consent + dmp_personalprofile + dmp_depositright", 2 * len(records) + sum(
            p.onboarded for p in plans), step)
        step = time.perf_counter()
        pros = cast.professionals
        doctors, authorised = {}, {}
        for p, r in zip(plans, records, strict=True):
            doctors[r.pk] = cast.clinician if p.index < 0 else pros[p.index % len(pros)]
            authorised[r.pk] = pros[(p.index * 7 + 3) % len(pros)]
        TreatingDoctor.objects.bulk_create([
            TreatingDoctor(record=r, professional=doctors[r.pk], designated_at=r.created_at) for r in records])
        CareAuthorisation.objects.bulk_create([
            CareAuthorisation(record=r, professional=authorised[r.pk], kind=CareAuthorisation.Kind.GRANTED_BY_PATIENT,
                              created_at=r.created_at, created_by=r.holder) for r in records])
        rates.add("dmp_treatingdoctor + dmp_careauthorisation", 2 * len(records), step)
        _make_documents(plans, records, doctors, authorised, rates)
        _make_audit(plans, records, doctors, authorised, cast, rates)


def _make_documents(plans, records, doctors, authorised, rates: Rates) -> None:
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from dmp.models import SPACE_OF_TYPE, Document, DocumentSearchTerm
    from dmp.search_index import document_terms, keyed_terms

    step = time.perf_counter()
    today = date.today()  # noqa: DTZ011 - a day of the act, as typed
    rows, contents = [], []
    for p, r in zip(plans, records, strict=True):
        for n in range(p.documents):
            content = pdf_content(r.pk, n)
            digest = hashlib.sha256(content).hexdigest()
            own = n % 8 == 7
            doc_type = "patient_document" if own else PRO_TYPES[n % len(PRO_TYPES)]
            author = None if own else (doctors[r.pk] if n % 3 else authorised[r.pk])
            rows.append(Document(
                record=r, space=SPACE_OF_TYPE[doc_type], doc_type=doc_type, title=f"Bench document {n}",
                act_date=today - timedelta(days=(n * 37 + r.pk) % 3650),
                author_kind=Document.AuthorKind.PATIENT if own else Document.AuthorKind.PROFESSIONAL,
                author_professional=author, added_by=r.holder if own else author.user,
                file=f"records/{r.pk}/{digest}", mime_type="application/pdf", size=len(content),
                content_hash=digest, status=Document.Status.ARCHIVED if n % 12 == 11 else Document.Status.CURRENT,
                hidden_from_professionals=n % 20 == 19, added_at=r.created_at + timedelta(hours=n),
            ))
            contents.append(content if p.files else None)
    first = Document.objects.bulk_create(rows, batch_size=2_000)
    # A tenth replaced by a second version, in the same record, by the same author.
    replaced = [d for d in first if d.pk % 10 == 0 and d.author_kind == Document.AuthorKind.PROFESSIONAL]
    replaced_ids = {d.pk for d in replaced}
    versions, version_contents = [], []
    for old, content in ((d, contents[i]) for i, d in enumerate(first) if d.pk in replaced_ids):
        new_content = (content or pdf_content(old.record_id, -old.pk)) + b"% version 2\n"
        digest = hashlib.sha256(new_content).hexdigest()
        versions.append(Document(
            record_id=old.record_id, space=old.space, doc_type=old.doc_type, title=old.title, act_date=old.act_date,
            author_kind=old.author_kind, author_professional_id=old.author_professional_id,
            added_by_id=old.added_by_id, file=f"records/{old.record_id}/{digest}", mime_type="application/pdf",
            size=len(new_content), content_hash=digest, status=old.status,
            hidden_from_professionals=old.hidden_from_professionals, version=2, replaces=old,
            added_at=old.added_at + timedelta(days=1)))
        version_contents.append(new_content if content is not None else None)
    Document.objects.bulk_create(versions, batch_size=2_000)
    Document.objects.filter(pk__in=[d.pk for d in replaced]).update(is_latest_version=False)
    rates.add("dmp_document", len(first) + len(versions), step)
    step = time.perf_counter()
    written, terms = 0, []
    for document, content in zip([*first, *versions], [*contents, *version_contents], strict=True):
        if content is None:
            continue
        default_storage.save(document.file.name, ContentFile(content))
        written += 1
        terms.extend(DocumentSearchTerm(document=document, term=term)
                     for term in keyed_terms(document.record_id, document_terms(document.title)))
    if written:
        rates.add("document files (encrypted storage)", written, step)
        step = time.perf_counter()
        DocumentSearchTerm.objects.bulk_create(terms, batch_size=5_000)
        rates.add("dmp_documentsearchterm", len(terms), step)


def _make_audit(plans, records, doctors, authorised, cast: Cast, rates: Rates) -> None:
    """Each record's chain, as `log_access()` appends it one entry at a time: positions from 1,
    each entry linked to the previous one's hash, hashed and MACed, then the chain's head."""
    from django.conf import settings

    from dmp.audit import GENESIS_HASH, key_id
    from dmp.models import AuditChainHead, AuditEntry

    step = time.perf_counter()
    signing_key = settings.AUDIT_HMAC_KEYS[0]
    signing_id = key_id(signing_key)
    now = datetime.now(UTC)
    entries, heads = [], []
    for p, r in zip(plans, records, strict=True):
        if not p.entries:
            continue
        prev = GENESIS_HASH
        start = now - timedelta(days=HISTORY_DAYS)
        gap = timedelta(days=HISTORY_DAYS - 1) / p.entries
        chain = []
        for n in range(p.entries):
            kind = n % 10
            if kind < 2:  # the patient reading their own record
                user, role, mode, rule, action = r.holder, "holder", "patient", "holder", "view_record"
            else:
                pro = doctors[r.pk] if kind < 7 else authorised[r.pk]
                treating = pro is doctors[r.pk]
                user, role = pro.user, pro.profession
                mode = "treating_doctor" if treating else "normal"
                rule = "treating_doctor" if treating else "care_authorisation_granted"
                action = PRO_ACTIONS[n % len(PRO_ACTIONS)]
            entry = AuditEntry(
                at=start + gap * n, actor=user,
                actor_label=cast.labels.get(user.pk) or user.get_full_name() or user.username,
                role=role, mode=mode, action=action, allowed=True, rule=rule, record_id_ref=r.pk,
                object_type="record", object_id=str(r.pk), ip=None, chain=r.pk, chain_seq=n + 1, prev_hash=prev)
            entry.hash = entry.compute_hash()
            entry.key_id = signing_id
            entry.mac = hmac.new(signing_key.encode(), entry.hash.encode(), hashlib.sha256).hexdigest()
            prev = entry.hash
            chain.append(entry)
        entries.extend(chain)
        heads.append(chain)
    rates.add("audit entries: chained, hashed, MACed (Python)", len(entries), step)
    step = time.perf_counter()
    # In chain order, so each entry's `seq` (the global order) follows its chain's positions.
    AuditEntry.objects.bulk_create(entries, batch_size=5_000)
    rates.add("dmp_auditentry", len(entries), step)
    step = time.perf_counter()
    AuditChainHead.objects.bulk_create([
        AuditChainHead(chain=chain[-1].chain, last_chain_seq=chain[-1].chain_seq, last_hash=chain[-1].hash,
                       last_seq=chain[-1].seq) for chain in heads])
    rates.add("dmp_auditchainhead", len(heads), step)


def dataset_summary() -> str:
    """What the dataset holds: rows per table, the probe records and their sizes."""
    from django.db import connection

    from dmp.models import Document, Record

    lines = []
    with connection.cursor() as cursor:
        for table in ("dmp_record", "dmp_user", "dmp_professional", "dmp_document", "dmp_documentsearchterm",
                      "dmp_auditentry", "dmp_auditchainhead", "dmp_careauthorisation"):
            cursor.execute(f"SELECT reltuples::bigint, pg_size_pretty(pg_total_relation_size('{table}'))"  # noqa: S608
                           f" FROM pg_class WHERE relname = '{table}'")
            estimate, size = cursor.fetchone()
            lines.append(f"  {table}: ~{max(estimate, 0):,} rows, {size}")
    for size in PROBES:
        record = Record.objects.filter(holder__username=PROBE_HOLDER.format(size)).first()
        if record is None:
            lines.append(f"  probe {size}: missing")
            continue
        count = Document.objects.filter(record=record, is_latest_version=True).count()
        lines.append(f"  probe {size}: record {record.pk}, {count} latest documents")
    return "Dataset:\n" + "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
