"""Appending to the audit log from concurrent requests on DIFFERENT records (bench/README.md).

1, 2, 4 and 8 threads, each with its own database connection (as each web worker has), each
appending entries about its own record through the real `dmp.audit.log_access()`, one
transaction per append (as one audited read in a request). Each thread count runs for a fixed
time; the throughput (appends per second, all threads together) and the mean and 95th-percentile
latency of one append are printed. If appends on different records never wait for each other,
the throughput grows with the threads until the machine's cores are busy; if every append queues
on one lock, it stays flat. `verify_audit` is run at the end: concurrency must not break the log.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dmp_bench .venv/bin/python bench/audit_append.py [SECONDS]

SECONDS is each thread count's duration (default 4).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from datetime import date

from _setup import commit, django_on_a_fresh_bench_database

THREADS = (1, 2, 4, 8)


def main(seconds: float) -> None:
    django_on_a_fresh_bench_database()
    from django.core.management import call_command
    from django.db import connection, connections
    from django.utils import timezone

    from dmp.audit import log_access
    from dmp.models import AuditMode, Record, User
    from dmp.policy import Action, Decision

    print(f"Audit append benchmark, commit {commit()}, {timezone.now():%Y-%m-%d %H:%M} UTC, "
          f"PostgreSQL {connection.pg_version // 10000}, {seconds:g} s per thread count")
    # One record and one professional per thread: the appends never concern the same record.
    people = []
    for i in range(max(THREADS)):
        holder = User.objects.create(username=f"bench_patient_{i}")
        record = Record.objects.create(holder=holder, family_name="Patient", given_names=f"Bench {i}",
                                       birth_date=date(1970, 1, 1))
        professional = User.objects.create(username=f"bench_gp_{i}", first_name="Bench", last_name=f"GP {i}")
        people.append((record, professional))
    # What the policy answers for a professional's read under a care authorisation.
    decision = Decision(True, "care_authorisation", AuditMode.NORMAL)

    def appender(record, professional, start: threading.Barrier, stop: list[float], latencies: list[float]):
        try:
            start.wait()
            while time.perf_counter() < stop[0]:
                began = time.perf_counter()
                log_access(actor_user=professional, actor_label=f"Bench GP {professional.pk}", role="gp",
                           ip="192.0.2.1", action=Action.VIEW_DOCUMENT, decision=decision, record_id=record.pk,
                           object_id=str(record.pk))
                latencies.append(time.perf_counter() - began)
        finally:
            connections.close_all()  # this thread's own connection

    print(f"{'threads':>7}  {'appends':>8}  {'appends/s':>9}  {'mean ms':>8}  {'p95 ms':>7}")
    for count in THREADS:
        start = threading.Barrier(count + 1)
        stop = [float("inf")]
        latencies: list[list[float]] = [[] for _ in range(count)]
        threads = [threading.Thread(target=appender, args=(*people[i], start, stop, latencies[i]))
                   for i in range(count)]
        for thread in threads:
            thread.start()
        stop[0] = time.perf_counter() + seconds
        began = time.perf_counter()
        start.wait()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
        every = sorted(x for per_thread in latencies for x in per_thread)
        p95 = every[int(len(every) * 0.95)] if every else 0.0
        print(f"{count:>7}  {len(every):>8}  {len(every) / elapsed:>9.0f}  "
              f"{statistics.mean(every) * 1000:>8.2f}  {p95 * 1000:>7.2f}")

    try:
        call_command("verify_audit")
    except Exception as error:  # said, not hidden: the figures above stand
        print(f"verify_audit: {error}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0)
