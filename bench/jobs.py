"""The batch jobs on the scale dataset, each in a process of its own under `/usr/bin/time -v`:
wall time and peak memory (bench/README.md, "Scale harness").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dmp_bench_scale \\
        .venv/bin/python bench/jobs.py [--size 5000] [--months 1]

- the export of a probe record (`--size` documents) as its holder: `record_export_request()`
  with Celery eager, so the same process runs `record_export_build()` (the ZIP of every
  document, the summary PDF, the FHIR data, the access history and its proof);
- the insurer's reimbursement feed: `manage.py make_reimbursement_feed --months N` for every
  record with a NIR (not timed), then `manage.py import_reimbursements` on it (timed). Importing
  the same day's feed again files nothing new (the import is idempotent): the first run of a day
  measures the import, later ones the check of lines already filed (the summary line says
  which); `--feed-day` makes the feed of another day, new lines;
- the export of a record of `--big-export-mb` (1,024) of incompressible documents, made once
  (`bench_big_export`): the peak memory of an export that does not fit in it;
- `manage.py verify_audit --full`: every chain of the audit log and the signed checkpoints.

Needs GNU time (`apt-get install -y time`). Writes only what the jobs write (the export,
reimbursement lines, their audit entries).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from _setup import ROOT, commit, django_on_a_bench_database, require_migrated

TIME = "/usr/bin/time"


@dataclass(frozen=True)
class JobResult:
    name: str
    wall_seconds: float
    peak_rss_mb: float
    exit_code: int
    said: str


def timed_run(name: str, command: list[str], env: dict | None = None) -> JobResult:
    """`command` under `/usr/bin/time -v`: its wall time, its peak resident memory, its last line."""
    done = subprocess.run([TIME, "-v", *command], cwd=ROOT, capture_output=True, text=True,  # noqa: S603
                          env={**os.environ, **(env or {})}, check=False)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    seconds = 0.0
    if wall:
        hours, minutes, secs = wall.groups()
        seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
    # What the job said last on its standard output (its summary), not its log lines.
    said = [line for line in done.stdout.splitlines() if line.strip()] or [
        line for line in done.stderr.splitlines()
        if line.strip() and not line.startswith("\t") and "Command exited" not in line]
    return JobResult(name, seconds, int(rss.group(1)) / 1024 if rss else 0.0, done.returncode,
                     said[-1][:160] if said else "")


def child_export(size: int) -> None:
    """In the child process: the probe record's export, requested and built as its holder."""
    django_on_a_bench_database()
    from pages import probe_records

    from dmp.models import Document, RecordExport
    from dmp.policy import Actor
    from dmp.services.export import record_export_request

    record = probe_records([size])[size]
    export = record_export_request(actor=Actor(record.holder), record=record)
    export = RecordExport.objects.get(pk=export.pk)
    documents = Document.objects.filter(record=record, is_latest_version=True).count()
    print(f"export {export.status}, {export.size / 1e6:.1f} MB, record of {documents} documents")


BIG_HOLDER = "bench_big_export"
BIG_DOCUMENT_MB = 8


def big_record(megabytes: int):
    """A record of `megabytes` of incompressible documents (random bytes, as scans are) of
    8 MB each, written through the encrypted storage; made once, found again by its holder."""
    from datetime import date

    from fill import stored_scan

    from dmp.models import Document, Record, User

    user, _ = User.objects.get_or_create(username=BIG_HOLDER, defaults={"first_name": "Grand", "last_name": "Export"})
    record = Record.objects.filter(holder=user).first() or Record.objects.create(
        holder=user, family_name="Export", given_names="Grand", birth_date=date(1970, 1, 1))
    have = Document.objects.filter(record=record).count()
    for n in range(have, megabytes // BIG_DOCUMENT_MB):
        stored_scan(record, n, BIG_DOCUMENT_MB)
    return record


def child_big_export(megabytes: int) -> None:
    """In the child process: the big record's export, requested and built as its holder."""
    django_on_a_bench_database()
    from dmp.models import RecordExport
    from dmp.policy import Actor
    from dmp.services.export import record_export_request

    record = big_record(megabytes)
    export = record_export_request(actor=Actor(record.holder), record=record)
    export = RecordExport.objects.get(pk=export.pk)
    print(f"export {export.status}, {export.size / 2**20:,.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=5_000, help="the probe record exported")
    parser.add_argument("--months", type=int, default=1, help="months of reimbursement feed to import")
    parser.add_argument("--feed-day", default="",
                        help="YYYY-MM-DD the feed is made for (default today); a day already imported files nothing")
    parser.add_argument("--jobs", default="export,big-export,import,verify", help="which jobs, comma-separated")
    parser.add_argument("--big-export-mb", type=int, default=1024,
                        help="the size of the record of the 'big-export' job (made once, in 8 MB documents)")
    parser.add_argument("--child-export", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-big-export", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_export:
        child_export(args.child_export)
        return
    if args.child_big_export:
        child_big_export(args.child_big_export)
        return
    if not Path(TIME).exists():
        sys.exit("GNU time is missing: apt-get install -y time")
    django_on_a_bench_database()  # checks the database's name before anything runs on it
    require_migrated()
    python, manage = sys.executable, str(ROOT / "manage.py")
    print(f"Batch jobs on the scale dataset, commit {commit()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"load average {os.getloadavg()[0]:.1f}")
    jobs = set(args.jobs.split(","))
    results = []
    if "export" in jobs:
        results.append(timed_run(f"export of the probe record of {args.size:,} documents",
                                 [python, str(Path(__file__).resolve()), "--child-export", str(args.size)],
                                 env={"CELERY_TASK_ALWAYS_EAGER": "true"}))
    if "big-export" in jobs:
        big_record(args.big_export_mb)  # its documents written first, not timed
        results.append(timed_run(f"export of a record of {args.big_export_mb:,} MiB ({BIG_DOCUMENT_MB} MB documents)",
                                 [python, str(Path(__file__).resolve()), "--child-big-export", str(args.big_export_mb)],
                                 env={"CELERY_TASK_ALWAYS_EAGER": "true"}))
    if "import" in jobs:
        results.append(reimbursement_import(python, manage, args.months, args.feed_day))
    if "verify" in jobs:
        results.append(timed_run("verify_audit --full", [python, manage, "verify_audit", "--full"]))
    print("| job | wall time s | peak RSS MB | exit | last line |")
    print("|---|---:|---:|---:|---|")
    for r in results:
        print(f"| {r.name} | {r.wall_seconds:.1f} | {r.peak_rss_mb:.0f} | {r.exit_code} | {r.said} |")
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f}")


def reimbursement_import(python: str, manage: str, months: int, day: str) -> JobResult:
    """The feed for every record with a NIR, written first (not timed), then imported (timed)."""
    with tempfile.TemporaryDirectory() as folder:
        feed = Path(folder) / "feed.jsonl"
        command = [python, manage, "make_reimbursement_feed", "--months", str(months), "-o", str(feed)]
        made = subprocess.run([*command, *(["--today", day] if day else [])], cwd=ROOT,  # noqa: S603
                              capture_output=True, text=True, check=False)
        print(f"Reimbursement feed: {made.stderr.strip().splitlines()[-1] if made.stderr.strip() else made.returncode}")
        return timed_run(f"import_reimbursements ({months} month(s), every record with a NIR)",
                         [python, manage, "import_reimbursements", str(feed)])


if __name__ == "__main__":
    main()
