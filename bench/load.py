"""Requests per second under load, each page against /healthz, on the scale dataset
(bench/README.md, "Scale harness").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dmp_bench_scale \\
        .venv/bin/python bench/load.py [--size 500] [--seconds 10] [--concurrency 4] [--port 18300]

Starts gunicorn (`dmp.wsgi`, 2 workers, as in docs/deployment.md, DEBUG off) on the bench
database, logs the cast in through Django's test Client (`force_login`: the session is in the
database, so gunicorn reads it from the cookie) and makes an API token for the FHIR pages, then
runs ApacheBench (`ab`, Debian's apache2-utils) for `--seconds` on each page of bench/pages.py
for the probe record of `--size` documents, with the same concurrency for each, /healthz first
and last (the reference: the server answering without touching the database). Prints requests
per second, the median and 95th-percentile time per request, the non-2xx answers, and each
page's throughput as a fraction of /healthz's. Reads the dataset only (plus what the requests
write: audit entries, sessions, the run's token, revoked at the end).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from _setup import ROOT, commit, django_on_a_bench_database, require_migrated
from pages import MIDDLEWARE_FLOOR, PAGES, close_sessions, open_sessions, probe_records


@dataclass(frozen=True)
class LoadResult:
    name: str
    requests: int
    per_second: float
    median_ms: float
    p95_ms: float
    not_2xx: int


def start_gunicorn(port: int, workers: int) -> subprocess.Popen:
    """gunicorn on the loopback, with this process's environment (the bench database and files)."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    log = open(ROOT / "var" / f"bench-gunicorn-{port}.log", "w")  # noqa: SIM115 - kept open for the server's life
    server = subprocess.Popen(  # noqa: S603
        [str(gunicorn), "dmp.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "120"],
        cwd=ROOT, env={"DATABASE_CONN_MAX_AGE": "60", **os.environ, "DEBUG": "false"},  # as docs/deployment.md advises
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
        if server.poll() is not None:
            break
    server.terminate()
    sys.exit(f"gunicorn did not answer on port {port}: see {log.name}")


def run_ab(url: str, *, seconds: int, concurrency: int, headers: dict[str, str]) -> LoadResult | str:
    """ApacheBench for `seconds` at `concurrency`; the parsed summary, or ab's error text."""
    command = ["ab", "-q", "-l", "-t", str(seconds), "-n", "1000000", "-c", str(concurrency)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run([*command, url], capture_output=True, text=True, check=False)  # noqa: S603
    out = done.stdout

    def number(pattern: str, default: float = 0.0) -> float:
        found = re.search(pattern, out, re.MULTILINE)
        return float(found.group(1)) if found else default

    if "Requests per second" not in out:
        return (done.stderr or out).strip()[-300:]
    return LoadResult(name=url, requests=int(number(r"^Complete requests:\s+(\d+)")),
                      per_second=number(r"^Requests per second:\s+([\d.]+)"),
                      median_ms=number(r"^\s+50%\s+(\d+)"), p95_ms=number(r"^\s+95%\s+(\d+)"),
                      not_2xx=int(number(r"^Non-2xx responses:\s+(\d+)")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=500, help="the probe record (5, 50, 500 or 5000 documents)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=18300)
    args = parser.parse_args()
    if shutil.which("ab") is None:
        sys.exit("ApacheBench is missing: apt-get install -y apache2-utils")
    django_on_a_bench_database()
    require_migrated()
    from django.conf import settings

    (ROOT / "var").mkdir(exist_ok=True)
    record = probe_records([args.size])[args.size]
    sessions = open_sessions({args.size: record})
    server = start_gunicorn(args.port, args.workers)
    base = f"http://127.0.0.1:{args.port}"
    print(f"Load on the scale dataset, commit {commit()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: gunicorn "
          f"{args.workers} workers, ab -c {args.concurrency} for {args.seconds} s per page, probe record of "
          f"{args.size:,} documents, load average {os.getloadavg()[0]:.1f}")
    cookie = settings.SESSION_COOKIE_NAME
    results: list[tuple[str, LoadResult | str]] = []
    try:
        healthz = next(page for page in PAGES if page.name == "/healthz")
        for page in (healthz, *(p for p in PAGES if p is not healthz), healthz):
            headers = {}
            if page.who == "api":
                headers = {"Authorization": sessions.api_headers["HTTP_AUTHORIZATION"],
                           "Accept": "application/fhir+json"}
            elif page.who != "anonymous":
                client = sessions.client_for(page.who, args.size)
                headers = {"Cookie": f"{cookie}={client.cookies[cookie].value}"}
            results.append((page.name, run_ab(base + page.url(record), seconds=args.seconds,
                                              concurrency=args.concurrency, headers=headers)))
    finally:
        server.terminate()
        server.wait(timeout=30)
        close_sessions(sessions)
    print(markdown(results))
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f}")


def markdown(results: list[tuple[str, LoadResult | str]]) -> str:
    references = [r.per_second for name, r in results if name == "/healthz" and isinstance(r, LoadResult)]
    reference = sum(references) / len(references) if references else 0
    floors = [r.per_second for name, r in results if name == MIDDLEWARE_FLOOR and isinstance(r, LoadResult)]
    floor = floors[0] if floors else 0
    lines = ["| page | requests | requests/s | median ms | p95 ms | non-2xx | × /healthz | × logged-in floor |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results:
        if isinstance(r, str):
            lines.append(f"| {name} | ab failed: {r} | | | | | | |")
            continue
        ratio = f"{r.per_second / reference:.3f}" if reference else "—"
        against_floor = f"{r.per_second / floor:.2f}" if floor else "—"
        lines.append(f"| {name} | {r.requests:,} | {r.per_second:,.1f} | {r.median_ms:.0f} | {r.p95_ms:.0f} "
                     f"| {r.not_2xx} | {ratio} | {against_floor} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
