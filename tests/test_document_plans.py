"""The document lists cost what the record holds, not what the whole table holds: each query on
the documents behind the portals' lists (every view of the patient's and the professional's
documents screen, the clinician's patient screen, the patient's home) and the FHIR
`DocumentReference` search reads `dmp_document` through an index with a condition, never by a
Seq Scan nor by walking a whole index. Checked
on PostgreSQL's own query plans over 10,400 analysed documents in 401 records, where Alice's
record holds 400 of them (300 documents, some in two or three versions); a query that reads the whole table fails here.
Timings are in bench/ (bench/README.md, "documents.py")."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from dmp.models import Document, DocumentType, Record
from dmp.models.documents import SPACE_OF_TYPE
from dmp.policy import Actor
from dmp.selectors import DocumentFilters, documents_listing
from dmp.services import api_token_create
from dmp.services.documents import documents_release_due
from tests.personas import world_for_module
from tests.plans import plan_nodes, selects_on

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's query plans"),
]

OTHER_RECORDS = 400
DOCUMENTS_PER_OTHER_RECORD = 25
ALICE_DOCUMENTS = 300
TYPES = [t for t in DocumentType.values if t != DocumentType.RECORD_SYNTHESIS]


def _documents(record: Record, author, count: int, *, start: int = 0) -> list[Document]:
    """`count` documents of `record` over every space (no files: lists do not open them)."""
    return [
        Document(
            record=record, doc_type=TYPES[n % len(TYPES)], space=SPACE_OF_TYPE[TYPES[n % len(TYPES)]],
            title=f"compte rendu {n}", act_date=date(2015, 1, 1) + timedelta(days=n % 3000),
            author_kind=Document.AuthorKind.PROFESSIONAL, author_professional=author,
            file=f"records/{record.pk}/bench-{n}", mime_type="application/pdf", size=100,
            content_hash=hashlib.sha256(f"{record.pk}-{n}".encode()).hexdigest(),
            status=Document.Status.ARCHIVED if n % 9 == 0 else Document.Status.CURRENT,
            # Some results were withheld from the patient, and told when their date came.
            withheld_from_patient_until=timezone.now() - timedelta(days=n % 50) if n % 5 == 0 else None,
            patient_notified_at=timezone.now() if n % 5 == 0 else None,
        )
        for n in range(start, start + count)
    ]


def _fill_busy_table(world) -> None:
    """Alice's record with 300 more documents, a third of them replaced by a second version
    and a third of those by a third, and 400 other records of 25 documents each: 10,400
    documents analysed, so the planner chooses as with a large table, where one record is a
    small share of it."""
    others = Record.objects.bulk_create(
        Record(family_name=f"Autre{n}", given_names="Patient", birth_date=date(1960, 1, 1) + timedelta(days=n))
        for n in range(OTHER_RECORDS)
    )
    filler = []
    for record in others:
        filler += _documents(record, world.dr_grant, DOCUMENTS_PER_OTHER_RECORD)
    filler = Document.objects.bulk_create(filler, batch_size=2_000)
    olders = filler[::10]  # a tenth of every record's documents in a second version
    versions = _new_versions(olders, [_documents(older.record, world.dr_grant, 1, start=10_000 + n)[0]
                                      for n, older in enumerate(olders)])
    Document.objects.bulk_create(versions, batch_size=2_000)
    first = Document.objects.bulk_create(_documents(world.record, world.dr_grant, ALICE_DOCUMENTS))
    second = Document.objects.bulk_create(_new_versions(
        first, _documents(world.record, world.dr_grant, ALICE_DOCUMENTS // 3, start=ALICE_DOCUMENTS)))
    Document.objects.bulk_create(_new_versions(
        second, _documents(world.record, world.dr_grant, len(second) // 3, start=2 * ALICE_DOCUMENTS)))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE dmp_document")
        cursor.execute("ANALYZE dmp_record")


# Filled once for the module (filling it is most of this file's time), each test in its own
# savepoint.
busy_table = world_for_module(_fill_busy_table, "busy_table")


def _new_versions(olders: list[Document], newers: list[Document]) -> list[Document]:
    """`newers` as the next versions of the first `olders`, which are no longer the latest (as
    `_store` marks them)."""
    for older, newer in zip(olders, newers, strict=False):
        newer.replaces, newer.version = older, older.version + 1
        newer.doc_type, newer.space = older.doc_type, older.space
    Document.objects.filter(pk__in=[older.pk for older in olders[:len(newers)]]).update(is_latest_version=False)
    return newers


def _bearer(pro) -> dict[str, str]:
    _token, raw = api_token_create(actor=Actor(pro.user), label="Logiciel de cabinet")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _document_reads(run) -> list[tuple[str, tuple]]:
    """The SELECTs on the documents that `run()` makes, with their parameters."""
    return [(sql, ()) for sql in selects_on("dmp_document", run)[0]]


def _full_scans(query: str, params: tuple = ()) -> list[str]:
    """Every read of the whole documents table in this query's plan: a Seq Scan, or an index
    walked from end to end (no condition: a merge join's side, the old LEFT JOIN's way of
    reading every newer version of every record)."""
    bad = []
    for node in plan_nodes(query, lambda node: node.get("Relation Name") == "dmp_document", params):
        kind = node["Node Type"]
        if kind == "Seq Scan" or (kind in ("Index Scan", "Index Only Scan") and not node.get("Index Cond")):
            index = f" using {node['Index Name']}" if node.get("Index Name") else ""
            bad.append(f"{kind}{index} on dmp_document {node.get('Filter', '')}".strip())
    return bad


def _requests(client, world):
    record = world.record
    patient_documents = reverse("portal_patient:documents", args=[record.pk])
    pro_documents = reverse("portal_pro:documents", args=[record.pk])

    def as_(persona, url, params=None, **extra):
        def run():
            client.force_login(persona)
            response = client.get(url, params or {}, **extra)
            assert response.status_code == 200, url
        return run

    def listing(persona, **filters):
        def run():
            list(documents_listing(Actor(persona), record, DocumentFilters(**filters)).documents[:50])
        return run

    return {
        "patient's documents": as_(world.alice, patient_documents),
        "patient's documents, one space": as_(world.alice, patient_documents, {"space": "reports"}),
        "patient's documents, archived too": as_(world.alice, patient_documents, {"status": "all"}),
        "patient's timeline": as_(world.alice, patient_documents, {"view": "timeline"}),
        "patient's thumbnails": as_(world.alice, patient_documents, {"view": "thumbnails"}),
        "patient's home": as_(world.alice, reverse("portal_patient:record", args=[record.pk])),
        "professional's documents": as_(world.dr_house.user, pro_documents),
        "professional's documents, one space": as_(world.dr_house.user, pro_documents, {"space": "imaging"}),
        "clinician's patient screen": as_(world.dr_house.user, reverse("portal_pro:record", args=[record.pk])),
        "listing, searched": listing(world.alice, text="compte rendu"),
        "listing, a period and an author": listing(
            world.dr_house.user, date_from=date(2016, 1, 1), date_to=date(2017, 1, 1),
            author=f"pro:{world.dr_grant.pk}"),
        "FHIR DocumentReference search": as_(world.dr_house.user, "/fhir/DocumentReference",
                                             {"patient": record.pk}, **_bearer(world.dr_house)),
        "FHIR search, a type and a date": as_(world.dr_house.user, "/fhir/DocumentReference",
                                              {"patient": record.pk, "date": "ge2016-01-01",
                                               "type": "http://loinc.org|11488-4"},
                                              **_bearer(world.dr_house)),
    }


REQUESTS = [
    "patient's documents", "patient's documents, one space", "patient's documents, archived too",
    "patient's timeline", "patient's thumbnails", "patient's home", "professional's documents",
    "professional's documents, one space", "clinician's patient screen", "listing, searched",
    "listing, a period and an author", "FHIR DocumentReference search", "FHIR search, a type and a date",
]


def test_no_document_list_reads_the_whole_table(client, busy_table):
    # Every request on one filled table: a failure names each request and each plan that read
    # the whole table.
    requests = {**_requests(client, busy_table),
                # `documents_release_due()` runs every few minutes over the whole table: it reads
                # the partial index of the results withheld and not told yet, never the table.
                "periodic release of withheld results": documents_release_due}
    assert list(requests) == [*REQUESTS, "periodic release of withheld results"]
    unread, scans = [], {}
    for name, run in requests.items():
        queries = _document_reads(run)
        if not queries:
            unread.append(name)
        for query, params in queries:
            if bad := _full_scans(query, params):
                scans.setdefault(name, []).append((bad, query))
    assert unread == [], "these requests read no document"
    assert scans == {}


def test_the_check_catches_a_query_that_reads_the_whole_table(busy_table):
    # The same check on lists that forgot their record, or filter on the reverse relation: it
    # must fail, or it proves nothing.
    everyone = Document.objects.filter(status=Document.Status.CURRENT).order_by("-act_date")
    assert _full_scans(*everyone[:20].query.sql_with_params())
    by_type = Document.objects.filter(doc_type=DocumentType.LAB_REPORT).values("record_id")
    assert _full_scans(*by_type.query.sql_with_params())
    # The old filter of the latest versions: a LEFT JOIN the planner answers by reading every
    # document of every record.
    left_join = busy_table.record.documents.filter(replaced_by__isnull=True).order_by("-act_date")
    assert _full_scans(*left_join.query.sql_with_params())
