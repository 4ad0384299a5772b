"""The access history page at 10 thousand and at 1 million audit entries (bench/README.md).

One patient's record holds 500 entries, the oldest of the log; the rest of the log is other
records' (about 50 entries each). For each way the page is asked (the whole history, one
person, one day, a later page, the FHIR page), the real selector `access_history()` is timed
as the patient, and each of its queries on the audit log is explained with EXPLAIN (ANALYZE).
Then the same at 1 million without the history indexes (migration 0010), for comparison, and
last, in a new log of 1 million, a record holding 50,000 entries (5 %), the oldest.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dmp_bench .venv/bin/python bench/history.py [--plans]

--plans prints every plan in full; by default the first variant's plans are printed in full
and the others summed up in one line per query.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import date

from _setup import commit, django_on_a_fresh_bench_database, fresh_database, timed

TARGET_ENTRIES = 500
HEAVY_ENTRIES = 50_000
ENTRIES_PER_OTHER_RECORD = 50
OTHER_RECORDS_FIRST_ID = 10**9
RUNS = 15
HISTORY_INDEXES = ("audit_record_at_seq", "audit_record_actor_at_seq")


def main(full_plans: bool) -> None:
    django_on_a_fresh_bench_database()
    from django.db import connection
    from django.utils import timezone

    from bench.fill import fill_audit

    print(f"Access history benchmark, commit {commit()}, {timezone.now():%Y-%m-%d %H:%M} UTC")
    holder, record = _patient()
    with connection.cursor() as cursor:
        fill_audit(cursor, entries=TARGET_ENTRIES, records=1, first_record_id=record.pk, actors=20)
    filled = TARGET_ENTRIES
    for total in (10_000, 1_000_000):
        started = time.perf_counter()
        while filled < total:
            batch = min(total - filled, 200_000)
            _fill_others(batch, records=max(1, total // ENTRIES_PER_OTHER_RECORD))
            filled += batch
        print(f"\n=== {total:,} entries in the audit log, the record's {TARGET_ENTRIES} the oldest (filled and "
              f"analysed in {time.perf_counter() - started:.1f} s; {_sizes()}) ===")
        measure(record, holder, full_plans)

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname = ANY(%s)", [list(HISTORY_INDEXES)])
        present = [row[0] for row in cursor.fetchall()]
        for index in present:
            started = time.perf_counter()
            cursor.execute(f"REINDEX INDEX {index}")
            print(f"Building {index} on 1,000,000 entries: {time.perf_counter() - started:.1f} s")
        for index in present:
            cursor.execute(f"DROP INDEX {index}")
        cursor.execute("ANALYZE dmp_auditentry")
    if present:
        print("\n=== 1,000,000 entries, WITHOUT the history indexes of migration 0010 ===")
        measure(record, holder, full_plans)

    # A record that holds a large share of the log, in its oldest part: where PostgreSQL may
    # believe that walking the whole log backwards finds the record's entries soon.
    fresh_database()
    holder, record = _patient()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        fill_audit(cursor, entries=HEAVY_ENTRIES, records=1, first_record_id=record.pk, actors=200)
    _fill_others(1_000_000 - HEAVY_ENTRIES, records=(1_000_000 - HEAVY_ENTRIES) // ENTRIES_PER_OTHER_RECORD)
    print(f"\n=== 1,000,000 entries, the record's {HEAVY_ENTRIES:,} (5 %) the oldest (filled and analysed in "
          f"{time.perf_counter() - started:.1f} s; {_sizes()}) ===")
    measure(record, holder, full_plans)


def _patient():
    from dmp.models import Record, User

    holder = User.objects.create(username="bench_patient", first_name="Bench", last_name="Patient")
    return holder, Record.objects.create(holder=holder, family_name="Patient", given_names="Bench",
                                         birth_date=date(1970, 1, 1))


def _fill_others(entries: int, *, records: int) -> None:
    from django.db import connection

    from bench.fill import fill_audit

    with connection.cursor() as cursor:
        for done in range(0, entries, 200_000):
            fill_audit(cursor, entries=min(200_000, entries - done), records=records,
                       first_record_id=OTHER_RECORDS_FIRST_ID)
        cursor.execute("VACUUM ANALYZE dmp_auditentry")


def _sizes() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('dmp_auditentry')),"
                       " pg_size_pretty(pg_indexes_size('dmp_auditentry'))")
        table, indexes = cursor.fetchone()
    return f"table {table}, its indexes {indexes}"


def measure(record, holder, full_plans: bool) -> None:
    from django.utils import timezone

    from dmp.policy import Actor
    from dmp.selectors import HistoryFilters, access_history, access_history_for

    actor = Actor(holder)
    day = timezone.localdate()  # the record's entries are the last 500 minutes of the first fill

    def fhir_page():
        entries = access_history_for(actor, record)
        return entries.count(), list(entries[100:120])

    variants = {
        "whole history, first page": lambda: access_history(actor, record),
        "one person": lambda: access_history(actor, record, filters=HistoryFilters(actor_id=1_000_003)),
        "one day": lambda: access_history(actor, record, filters=HistoryFilters(date_from=day, date_to=day)),
        "page 5 of the detail": lambda: access_history(actor, record, page=5),
        "FHIR AuditEvent, _offset=100&_count=20": fhir_page,
    }
    first = True
    for name, run in variants.items():
        for _ in range(3):
            run()
        times, captured = timed(run, RUNS)
        audit_queries = [q["sql"] for q in captured
                         if q["sql"].lstrip().upper().startswith("SELECT") and '"dmp_auditentry"' in q["sql"]]
        print(f"\n-- {name}: median {statistics.median(times):.2f} ms, max {max(times):.2f} ms over {RUNS} runs "
              f"({len(captured)} queries, {len(audit_queries)} on the audit log)")
        in_database, thrown_away = 0.0, 0
        for query in audit_queries:
            plan = _explain(query)
            in_database += sum(float(line.split(":")[1].split()[0])
                               for line in plan if line.startswith("Execution Time"))
            thrown_away += sum(int(line.split(":")[1]) for line in plan if "Rows Removed by Filter" in line)
            if full_plans or first:
                print("   " + query[:200] + (" …" if len(query) > 200 else ""))
                print("\n".join("     " + line for line in plan))
            else:
                print("   " + _summary(plan))
        print(f"   in PostgreSQL: {in_database:.2f} ms for these queries (EXPLAIN ANALYZE), "
              f"{thrown_away:,} rows read and thrown away")
        first = False


def _explain(query: str) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query}")
        return [row[0] for row in cursor.fetchall()]


def _summary(plan: list[str]) -> str:
    """One line: how the audit log was read, rows thrown away, time."""
    scans = sorted({line.strip().split(" on ")[0].lstrip("-> ").strip() + " on "
                    + line.strip().split(" on ")[1].split(" ")[0]
                    for line in plan if " on dmp_auditentry" in line or " on audit_" in line})
    removed = sum(int(line.split(":")[1]) for line in plan if "Rows Removed by Filter" in line)
    seq_scan = "SEQ SCAN ON THE AUDIT LOG, " if any("Seq Scan on dmp_auditentry" in line for line in plan) else ""
    took = next((line.split(":")[1].strip() for line in plan if line.startswith("Execution Time")), "?")
    return f"{seq_scan}{'; '.join(scans)}; rows removed by filter {removed}; execution {took}"


if __name__ == "__main__":
    main(full_plans="--plans" in sys.argv)
