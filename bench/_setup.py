"""What both benchmarks share: Django set up on a database of their own, created afresh.

The benchmark's database is dropped and created again at each run, so a run is self-contained
and repeatable. To keep that from ever touching a real database, its name must contain
"bench" (DATABASE_URL=postgres://postgres@127.0.0.1:5432/dmp_bench).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


def django_on_a_fresh_bench_database() -> None:
    """Drop and create the database DATABASE_URL names, set Django up on it, migrate."""
    django_on_a_bench_database()
    fresh_database()


def bench_database_name() -> str:
    """The database DATABASE_URL names, or exit if it is not a PostgreSQL database with
    'bench' in its name (the benchmarks fill it, some drop it)."""
    parts = urlsplit(os.environ.get("DATABASE_URL", ""))
    name = parts.path.lstrip("/")
    if parts.scheme not in ("postgres", "postgresql", "pgsql") or "bench" not in name:
        sys.exit("DATABASE_URL must name a PostgreSQL database of its own, with 'bench' in its name (the "
                 "benchmarks fill it; some drop it and create it again), e.g. "
                 "postgres://postgres@127.0.0.1:5432/dmp_bench")
    return name


def bench_files_dir(name: str) -> Path:
    """Where the files of a kept benchmark dataset live (documents, signed checkpoints), next to
    nothing of the application's: BENCH_DATA_DIR, else a folder named after the database."""
    return Path(os.environ.get("BENCH_DATA_DIR") or Path(tempfile.gettempdir()) / "dmp-bench" / name)


def django_on_a_bench_database() -> None:
    """Set Django up on the benchmark database DATABASE_URL names (checked), without touching
    it. The document files and the audit checkpoints go to the dataset's own folder
    (`bench_files_dir`) unless DOCUMENT_STORAGE_ROOT / AUDIT_CHECKPOINT_DIR say otherwise, so a
    dataset kept between runs keeps its files, and the server started on it reads the same."""
    os.environ.setdefault("DMP_ENV", "test")
    files = bench_files_dir(bench_database_name())
    os.environ.setdefault("DOCUMENT_STORAGE_ROOT", str(files / "documents"))
    os.environ.setdefault("AUDIT_CHECKPOINT_DIR", str(files / "audit-checkpoints"))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmp.settings")

    import django

    django.setup()


def require_migrated() -> None:
    """A kept dataset made before a release that adds a migration cannot serve its pages: say
    which command brings it up to date, rather than fail on a missing column."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if not executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return
    sys.exit("This dataset's database lacks migrations of this commit: run\n"
             f"    DMP_ENV=test DATABASE_URL={os.environ['DATABASE_URL']} .venv/bin/python manage.py migrate\n"
             "(it keeps the dataset), then this command again.")


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
