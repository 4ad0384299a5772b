"""The pages that matter, on the scale dataset: SQL queries and server time per request, for
each probe record (bench/README.md, "Scale harness").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dmp_bench_scale \\
        .venv/bin/python bench/pages.py [--runs 20] [--sizes 5,500,5000]

Each page is asked through Django's test Client as the person who reads it (a logged-in
session, `force_login`; the FHIR API with a Bearer token made for the run and revoked after):
one request first (its status is printed), then one under `CaptureQueriesContext` (the query
count), then `--runs` timed requests (median and 95th percentile, in milliseconds, the whole
request through the middleware, the view and the template). The database is only read, apart
from what the requests themselves write (the audit entries of the reads, the sessions) and the
run's API token. It needs the dataset of bench/generate.py (it stops if the probes are missing).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from _setup import commit, django_on_a_bench_database, require_migrated

DEFAULT_SIZES = (5, 500, 5_000)


@dataclass(frozen=True)
class Measurement:
    status: int
    queries: int
    median_ms: float
    p95_ms: float
    scans: tuple[str, ...] = ()  # reads of a whole large table in the plans of its queries


# A table past this many rows (PostgreSQL's estimate) is "large": reading it whole is a full scan.
LARGE_TABLE_ROWS = 10_000


def full_scans(queries: list[str]) -> tuple[str, ...]:
    """What the plans of `queries` (EXPLAIN, not run) read whole among the large tables: a Seq
    Scan, or an index walked with no condition."""
    import json

    from django.db import connection

    if connection.vendor != "postgresql":
        return ()
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relkind = 'r' AND reltuples > %s", [LARGE_TABLE_ROWS])
        large = {name for (name,) in cursor.fetchall()}
        found = []
        for sql in queries:
            if not sql.lstrip("( ").upper().startswith(("SELECT", "WITH")):
                continue
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            plan = cursor.fetchone()[0]
            nodes = [(plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]]
            while nodes:
                node = nodes.pop()
                nodes.extend(node.get("Plans", []))
                table, kind = node.get("Relation Name"), node["Node Type"]
                whole = kind == "Seq Scan" or (kind in ("Index Scan", "Index Only Scan") and not node.get("Index Cond")
                                               and not node.get("Filter"))
                if table in large and whole:
                    found.append(f"{kind} on {table}")
    return tuple(sorted(set(found)))


def measure(client, url: str, *, runs: int = 20, **headers) -> Measurement:
    """One page asked `runs` times by `client`: its status, its SQL query count (one request
    under CaptureQueriesContext, after a first one that warms the caches) and its server times."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first = client.get(url, **headers)
    with CaptureQueriesContext(connection) as captured:
        client.get(url, **headers)
    # Counted now: the next request empties the connection's log that `captured` reads from.
    queries = len(captured.captured_queries)
    scans = full_scans([q["sql"] for q in captured.captured_queries])
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        client.get(url, **headers)
        times.append((time.perf_counter() - started) * 1000)
    p95 = statistics.quantiles(times, n=20, method="inclusive")[18] if len(times) > 1 else times[0]
    return Measurement(first.status_code, queries, statistics.median(times), p95, scans)


@dataclass(frozen=True)
class Page:
    name: str
    who: str  # "clinician", "patient", "counter", "api", "anonymous"
    url: Callable[[object], str]  # from the probe record
    per_record: bool = True


MIDDLEWARE_FLOOR = "/ logged in (middleware and a redirect)"

PAGES = (
    Page("clinician patient screen", "clinician", lambda r: f"/pro/records/{r.pk}/"),
    Page("professional documents list", "clinician", lambda r: f"/pro/records/{r.pk}/documents/"),
    Page("patient home", "patient", lambda r: f"/patient/records/{r.pk}/"),
    Page("patient documents list", "patient", lambda r: f"/patient/records/{r.pk}/documents/"),
    Page("patient access history", "patient", lambda r: f"/patient/records/{r.pk}/history/"),
    Page("FHIR DocumentReference?patient=", "api", lambda r: f"/fhir/DocumentReference?patient={r.pk}"),
    Page("FHIR Patient read", "api", lambda r: f"/fhir/Patient/{r.pk}"),
    Page("counter dashboard", "counter", lambda r: "/counter/dashboard/", per_record=False),
    Page("/healthz", "anonymous", lambda r: "/healthz", per_record=False),
    # The floor of a logged-in page: the whole middleware (session, account, headers) and a view
    # that only redirects (the patient's `/`), as the issue's "trivial view behind the same
    # middleware" was measured.
    Page(MIDDLEWARE_FLOOR, "patient", lambda r: "/", per_record=False),
)


@dataclass
class Sessions:
    """The logged-in clients of a run, and the API token's header."""

    clinician: object
    counter: object
    anonymous: object
    api_headers: dict
    token: object
    patients: dict  # probe size -> client

    def client_for(self, who: str, size: int):
        return {"clinician": self.clinician, "counter": self.counter, "anonymous": self.anonymous,
                "api": self.anonymous,
                # a page about no record (the floor): any probe's holder
                "patient": self.patients.get(size) or next(iter(self.patients.values()))}[who]

    def headers_for(self, who: str) -> dict:
        return self.api_headers if who == "api" else {}


def probe_records(sizes) -> dict:
    """The probe records of the dataset, by size; exits if one is missing."""
    from generate import PROBE_HOLDER

    from dmp.models import Record

    found = {size: Record.objects.filter(holder__username=PROBE_HOLDER.format(size)).select_related("holder").first()
             for size in sizes}
    missing = [size for size, record in found.items() if record is None]
    if missing:
        sys.exit(f"No probe record of {missing} documents here: run bench/generate.py on this database first.")
    return found


def open_sessions(records: dict) -> Sessions:
    """Log the cast in (test Client, `force_login`) and make the run's API token."""
    from django.test import Client
    from generate import CLINICIAN, COUNTER_AGENT

    from dmp.models import User
    from dmp.policy import Actor
    from dmp.services.credentials import api_token_create

    clinician_user = User.objects.get(username=CLINICIAN)
    clinician, counter = Client(), Client()
    clinician.force_login(clinician_user)
    counter.force_login(User.objects.get(username=COUNTER_AGENT))
    patients = {}
    for size, record in records.items():
        patients[size] = Client()
        patients[size].force_login(record.holder)
    token, raw = api_token_create(actor=Actor(clinician_user), label=f"bench {datetime.now(UTC):%Y-%m-%d %H:%M}")
    return Sessions(clinician=clinician, counter=counter, anonymous=Client(), patients=patients, token=token,
                    api_headers={"HTTP_AUTHORIZATION": f"Bearer {raw}", "HTTP_ACCEPT": "application/fhir+json"})


def close_sessions(sessions: Sessions) -> None:
    from generate import CLINICIAN

    from dmp.models import User
    from dmp.policy import Actor
    from dmp.services.credentials import api_token_revoke

    api_token_revoke(actor=Actor(User.objects.get(username=CLINICIAN)), token=sessions.token)


def measure_pages(sizes, *, runs: int) -> list[tuple[Page, int | None, Measurement]]:
    """Every page for every probe size (the pages about no record once)."""
    records = probe_records(sizes)
    sessions = open_sessions(records)
    results = []
    try:
        for page in PAGES:
            for size in sizes if page.per_record else (None,):
                record = records[size] if size is not None else None
                client = sessions.client_for(page.who, size)
                results.append((page, size, measure(client, page.url(record), runs=runs,
                                                    **sessions.headers_for(page.who))))
    finally:
        close_sessions(sessions)
    return results


def markdown(results) -> str:
    lines = ["| page | probe record | status | SQL queries | median ms | p95 ms | large tables read whole |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for page, size, m in results:
        probe = f"{size:,} documents" if size is not None else "—"
        lines.append(f"| {page.name} | {probe} | {m.status} | {m.queries} | {m.median_ms:.1f} | {m.p95_ms:.1f} "
                     f"| {', '.join(m.scans) or 'none'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
                        help="probe records to measure, among 5, 50, 500, 5000")
    args = parser.parse_args()
    django_on_a_bench_database()
    require_migrated()
    import os

    sizes = tuple(int(s) for s in args.sizes.split(","))
    load = os.getloadavg()
    print(f"Pages on the scale dataset, commit {commit()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{args.runs} requests each, load average {load[0]:.1f}")
    results = measure_pages(sizes, runs=args.runs)
    print(markdown(results))
    load = os.getloadavg()
    print(f"\nLoad average at the end: {load[0]:.1f}")


if __name__ == "__main__":
    main()
