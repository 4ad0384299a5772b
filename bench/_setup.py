"""What both benchmarks share: Django set up on a database of their own, created afresh.

The benchmark's database is dropped and created again at each run, so a run is self-contained
and repeatable. To keep that from ever touching a real database, its name must contain
"bench" (DATABASE_URL=postgres://postgres@127.0.0.1:5432/dmp_bench).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


def django_on_a_fresh_bench_database() -> None:
    """Drop and create the database DATABASE_URL names, set Django up on it, migrate."""
    os.environ.setdefault("DMP_ENV", "test")
    url = os.environ.get("DATABASE_URL", "")
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if parts.scheme not in ("postgres", "postgresql", "pgsql") or "bench" not in name:
        sys.exit("DATABASE_URL must name a PostgreSQL database of its own, with 'bench' in its name "
                 "(it is dropped and created again), e.g. postgres://postgres@127.0.0.1:5432/dmp_bench")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmp.settings")

    import django

    django.setup()
    fresh_database()


def fresh_database() -> None:
    """Drop the benchmark's database, create it again and migrate it."""
    import psycopg
    from django.core.management import call_command
    from django.db import connections
    from psycopg import sql

    connections.close_all()
    parts = urlsplit(os.environ["DATABASE_URL"])
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    call_command("migrate", verbosity=0)


def commit() -> str:
    """The commit being measured (for the README's figures)."""
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],  # noqa: S603, S607
                             capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],  # noqa: S603, S607
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def timed(run, runs: int) -> tuple[list[float], list[dict]]:
    """Each of `runs` calls of `run()` in milliseconds, then the queries of one more call."""
    import time

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as captured:
        run()
    return times, captured.captured_queries
