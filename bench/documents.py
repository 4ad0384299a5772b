"""The document lists at 200 thousand (or more) documents: which way of keeping to the latest
versions PostgreSQL answers from the record's own rows (bench/README.md, "documents.py").

10,000 records; one patient's record holds 5,000 documents, another 500, the rest of the
table is spread over the other records; a tenth of every record's documents are replaced by a
second version. For the
5,000-document record, the list's first page (50, newest first) and its counts per space are
explained with EXPLAIN (ANALYZE, BUFFERS) in four forms of "latest versions only":

- the LEFT JOIN on the reverse relation (`replaced_by__isnull=True`, the code before),
- NOT EXISTS on the newer version, unbounded,
- NOT EXISTS on the newer version of the same record,
- the stored `is_latest_version` flag and its partial index (record, act date, id) WHERE
  latest (the code after, migration 0017).

Then the real selectors (`documents_listing`, the clinician's ranking is the same base query)
are run as the patient, timed, and each of their queries on the documents explained.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dmp_bench .venv/bin/python bench/documents.py [--documents N]
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import date

from _setup import commit, django_on_a_fresh_bench_database, timed

RECORDS = 10_000
BIG_RECORD = 5_000
RUNS = 15

# The documents made by PostgreSQL itself, spread over record ids [first, first + records);
# titles are placeholders (never decrypted: only the plans and the counts read them).
_FILL = """
INSERT INTO dmp_document (record_id, space, doc_type, title, act_date, author_kind, system_source, file,
    mime_type, size, content_hash, status, hidden_from_professionals, hidden_from_representatives, version,
    added_at, extracted_text, thumbnail, key_id, is_latest_version)
SELECT %(first)s + i %% %(records)s, (%(spaces)s::text[])[1 + i %% 9], 'lab_report', 'x',
    date '2000-01-01' + (i %% 9000), 'system', 'bench', 'records/bench/' || i, 'application/pdf', 100,
    md5(%(salt)s || i::text) || md5(%(salt)s || 'h' || i::text),
    CASE WHEN i %% 9 = 0 THEN 'archived' ELSE 'current' END, i %% 7 = 0, false, 1, now(), '', '', '', true
FROM generate_series(1, %(n)s) AS i
"""


def main(documents: int) -> None:
    django_on_a_fresh_bench_database()
    from django.db import connection
    from django.utils import timezone

    from dmp.models import Record, Space, User

    print(f"Document lists benchmark, commit {commit()}, {timezone.now():%Y-%m-%d %H:%M} UTC")
    started = time.perf_counter()
    holder = User.objects.create(username="bench_patient", first_name="Bench", last_name="Patient")
    big = Record.objects.create(holder=holder, family_name="Patient", given_names="Bench",
                                birth_date=date(1970, 1, 1))
    medium = Record.objects.create(family_name="Patient", given_names="Medium", birth_date=date(1970, 1, 1))
    others = Record.objects.bulk_create(
        (Record(family_name="Autre", given_names=str(n), birth_date=date(1960, 1, 1)) for n in range(RECORDS - 2)),
        batch_size=2_000,
    )
    spaces = list(Space.values)
    with connection.cursor() as cursor:
        for record, n, salt in ((big, BIG_RECORD, "a"), (medium, 500, "b")):
            cursor.execute(_FILL, {"first": record.pk, "records": 1, "spaces": spaces, "n": n, "salt": salt})
        rest = documents - BIG_RECORD - 500
        for done in range(0, rest, 500_000):
            cursor.execute(_FILL, {"first": others[0].pk, "records": len(others), "spaces": spaces,
                                   "n": min(500_000, rest - done), "salt": f"o{done}"})
        # A tenth of every record's documents replaced by a second version.
        cursor.execute(
            "INSERT INTO dmp_document (record_id, space, doc_type, title, act_date, author_kind, system_source,"
            " file, mime_type, size, content_hash, status, hidden_from_professionals,"
            " hidden_from_representatives, version, replaces_id, added_at, extracted_text, thumbnail, key_id,"
            " is_latest_version)"
            " SELECT record_id, space, doc_type, title, act_date, author_kind, system_source, file || 'v2',"
            " mime_type, size, md5(content_hash), status, hidden_from_professionals, hidden_from_representatives,"
            " 2, id, now(), '', '', '', true FROM dmp_document WHERE id % 10 = 0")
        cursor.execute("UPDATE dmp_document SET is_latest_version = false"
                       " WHERE id IN (SELECT replaces_id FROM dmp_document WHERE replaces_id IS NOT NULL)")
        cursor.execute("VACUUM ANALYZE dmp_document")
        cursor.execute("SELECT count(*), pg_size_pretty(pg_relation_size('dmp_document')) FROM dmp_document")
        count, size = cursor.fetchone()
    print(f"{count:,} documents in {RECORDS:,} records (table {size}), filled and analysed in "
          f"{time.perf_counter() - started:.1f} s")
    compare_forms(big.pk)
    measure_selectors(holder, big)


def compare_forms(record_id: int) -> None:
    """The first page and the counts per space, in each form of "latest versions only"."""
    from django.db import connection

    visible = ("d.record_id = %(r)s AND d.status = 'current'"
               " AND (d.withheld_from_patient_until IS NULL OR d.withheld_from_patient_until <= now())")
    forms = {
        "LEFT JOIN (before)": ("FROM dmp_document d LEFT JOIN dmp_document n ON n.replaces_id = d.id",
                               "AND n.id IS NULL"),
        "NOT EXISTS, unbounded": ("FROM dmp_document d",
                                  "AND NOT EXISTS (SELECT 1 FROM dmp_document n WHERE n.replaces_id = d.id)"),
        "NOT EXISTS, same record": (
            "FROM dmp_document d",
            "AND NOT EXISTS (SELECT 1 FROM dmp_document n WHERE n.record_id = %(r)s AND n.replaces_id = d.id)"),
        "latest-version flag (after)": ("FROM dmp_document d", "AND d.is_latest_version"),
    }
    with connection.cursor() as cursor:
        for name, (source, latest) in forms.items():
            for label, select, tail in (
                ("first page", "SELECT d.id", "ORDER BY d.act_date DESC, d.id DESC LIMIT 50"),
                ("counts per space", "SELECT d.space, count(*)", "GROUP BY d.space"),
            ):
                query = f"{select} {source} WHERE {visible} {latest} {tail}"
                plan = _explain(cursor, query, {"r": record_id})
                print(f"\n-- {name}, {label}: {_summary(plan)}")
                print("\n".join("     " + line for line in plan if "->" in line or "Execution" in line))


def measure_selectors(holder, record) -> None:
    from django.db import connection

    from dmp.policy import Actor
    from dmp.selectors import DocumentFilters, documents_listing

    actor = Actor(holder)

    def page(**filters):
        def run():
            listing = documents_listing(actor, record, DocumentFilters(**filters))
            return list(listing.documents.values_list("pk", flat=True)[:50])
        return run

    variants = {"the list, first page": page(), "one space": page(space="imaging"),
                "archived too": page(status="all")}
    print("\n=== The real selector, as the patient, record of 5,500 documents, 5,000 of them the latest versions ===")
    for name, run in variants.items():
        run()
        times, captured = timed(run, RUNS)
        queries = [q["sql"] for q in captured if '"dmp_document"' in q["sql"]]
        print(f"\n-- {name}: median {statistics.median(times):.1f} ms over {RUNS} runs ({len(queries)} queries)")
        with connection.cursor() as cursor:
            for query in queries:
                print("   " + _summary(_explain(cursor, query)))


def _explain(cursor, query: str, params=None) -> list[str]:
    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query}", params)
    return [row[0] for row in cursor.fetchall()]


def _summary(plan: list[str]) -> str:
    seq = "SEQ SCAN ON dmp_document, " if any("Seq Scan on dmp_document" in line for line in plan) else ""
    took = next((line.split(":")[1].strip() for line in plan if line.startswith("Execution Time")), "?")
    return f"{seq}execution {took}"


if __name__ == "__main__":
    count = int(sys.argv[sys.argv.index("--documents") + 1]) if "--documents" in sys.argv else 200_000
    main(count)
