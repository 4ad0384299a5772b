from __future__ import annotations

import functools
import gc
import itertools
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

CI = os.environ.get("CI", "").lower() == "true"

# The markers (registered in pyproject.toml) follow from the fixtures a test uses, so that no
# test file has to remember them: `make test-fast` runs everything but these two.
BROWSER_FIXTURES = frozenset({"page", "context", "browser", "live_server"})
WORKER_FIXTURES = frozenset({"start_worker", "clamd_address"})

# Debian's Chromium, never a downloaded browser.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.hookimpl(tryfirst=True)  # before xdist's loadgroup reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
            # One xdist worker runs every browser test, one Chromium at a time (`--dist
            # loadgroup`): two browsers and two live servers on two cores time out.
            item.add_marker(pytest.mark.xdist_group("browser"))
        if fixtures & WORKER_FIXTURES:
            item.add_marker(pytest.mark.worker)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """What the process holds once the test modules are imported (Django, the project, the
    FHIR models, WeasyPrint: some 340,000 objects the collector tracks) lives until it ends:
    it is frozen out of the cyclic garbage collector, which otherwise walks all of it at every
    full collection, and the youngest generation is collected every 50,000 allocations instead
    of 700. Collecting took 14 s of the fast loop's CPU (two processes, 7,000 collections);
    7 s now."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def redis_url_for_worker(url: str, index: int) -> str:
    """The Redis database of one xdist worker: the base URL's number plus the worker's index
    (redis://host:6379/9 gives gw0 9, gw1 10)."""
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{base + index}"))


def pytest_configure(config):
    from django.core.management.commands import flush
    from django.test.client import ClientMixin

    ClientMixin._login = _login_from_a_fresh_session
    flush.sql_flush = _flush_what_holds_rows
    _worker_redis(config)


def _flush_what_holds_rows(style, connection, reset_sequences=True, allow_cascade=False):
    """The statements that empty the database after a transactional test (Django's `flush`,
    which TransactionTestCase runs): on PostgreSQL, a DELETE of each table that holds rows, the
    foreign keys checked at the end (Django makes them deferrable), instead of one TRUNCATE of
    all 46 tables, which took 0.3 s for a few hundred rows (a TRUNCATE replaces each table's
    files). A table whose trigger refuses DELETE (the append-only audit log) is truncated.
    Elsewhere, or when the sequences are to be reset, Django's own statements."""
    if connection.vendor != "postgresql" or reset_sequences:
        from django.core.management.sql import sql_flush  # Django's own, not replaced there

        return sql_flush(style, connection, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(f"SELECT %s WHERE EXISTS (SELECT 1 FROM {quote(table)})"  # noqa: S608
                                          for table in tables), tables)
        holding = [table for (table,) in cursor.fetchall()]
        cursor.execute("SELECT DISTINCT tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal")
        refusing_delete = {table for (table,) in cursor.fetchall()}
    truncated = [quote(table) for table in holding if table in refusing_delete]
    return ["SET CONSTRAINTS ALL DEFERRED",
            *(f"DELETE FROM {quote(table)}" for table in holding if table not in refusing_delete),
            *([f"TRUNCATE {', '.join(truncated)} CASCADE"] if truncated else [])]


def _worker_redis(config):
    """Under pytest-xdist each worker has its own test database (pytest-django names it
    test_<name>_gw<n>) and here its own Redis database: the cache is emptied before every test
    (a FLUSHDB) and the Celery queue is read by the worker tests, so two workers sharing one
    would empty and steal each other's keys. Django's settings are already loaded when a
    conftest runs, so the URL is changed in them, and in the environment for the fixtures and
    the subprocesses (the Celery worker) that read it there."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    url = os.environ.get("REDIS_URL", "")
    if not worker.startswith("gw") or not url:
        return
    from django.conf import settings

    own = redis_url_for_worker(url, int(worker[2:]))
    os.environ["REDIS_URL"] = own
    settings.REDIS_URL = own
    settings.CACHES["default"]["LOCATION"] = own
    if settings.CELERY_BROKER_URL == url:
        settings.CELERY_BROKER_URL = own
    if os.environ.get("CELERY_BROKER_URL") == url:
        os.environ["CELERY_BROKER_URL"] = own


def _login_from_a_fresh_session(self, user, backend=None):
    """Django's test client logs in through the session it already has, creating and saving an
    empty one first when it has none, which login() then replaces by a new one and deletes: six
    queries for nothing, in a thousand tests. Without a session cookie this one logs in from a
    new, unsaved session, as a browser's first login does; login() itself, its signals and the
    cookie it sets are unchanged. The new session is written once, when login() has filled it:
    one INSERT, where creating it first (a query to check that its random key is free, an
    INSERT) and saving it again (an UPDATE) took three."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import login
    from django.http import HttpRequest

    request = HttpRequest()
    store = import_module(settings.SESSION_ENGINE).SessionStore
    cookie = self.cookies.get(settings.SESSION_COOKIE_NAME)
    request.session = store(cookie.value) if cookie else _written_once(store)()
    login(request, user, backend)
    request.session.save()
    self._set_login_cookies(request)


@functools.cache
def _written_once(store):
    """`store` whose new session login() leaves unwritten (it has no key to move away from),
    and whose key is written without being looked up first: the INSERT itself refuses a key
    already taken, and `create()` then draws another."""
    from django.contrib.sessions.backends.base import VALID_KEY_CHARS
    from django.utils.crypto import get_random_string

    class WrittenOnce(store):
        # Session data is signed with the store class's qualified name as its salt: the same
        # as `store`'s, or the row reads back as an empty session.
        __qualname__ = store.__qualname__

        def cycle_key(self):
            pass

        def _get_new_session_key(self):
            return get_random_string(32, VALID_KEY_CHARS)

    return WrittenOnce


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # A French browser: French is the product's default language.
    return {**browser_context_args, "locale": "fr-FR"}


_scratch: dict[str, Path] = {}
_test_numbers = itertools.count(1)


def scratch_folder() -> Path:
    """This process's folder for the tests' files, in memory where the system offers it
    (/dev/shm): thousands of tests write and delete documents and checkpoints there, which a
    disk's file system makes several times slower. Removed when the session ends."""
    if "root" not in _scratch:
        shm = Path("/dev/shm")  # noqa: S108 - a private folder is made in it (mkdtemp, mode 0700)
        base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        _scratch["root"] = Path(tempfile.mkdtemp(prefix="dmp-tests-", dir=base))
    return _scratch["root"]


@pytest.fixture(autouse=True)
def _test_files(settings):
    """Each test stores its documents and signs its audit checkpoints into folders of its own,
    created when first written to and removed when the test ends."""
    folder = scratch_folder() / f"test-{next(_test_numbers)}"
    settings.MEDIA_ROOT = folder / "documents"
    settings.AUDIT_CHECKPOINT_DIR = folder / "audit-checkpoints"
    yield
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _persona_language(request):
    """Personas read what the test's browser asks for: French in the browser tests (a French
    browser, see browser_context_args), English with the test client."""
    from tests import personas

    browser = "live_server" in request.fixturenames or "page" in request.fixturenames
    personas.PERSONA_LANGUAGE["code"] = "fr" if browser else "en"
    yield
    personas.PERSONA_LANGUAGE["code"] = "en"


# Whether the matrix is committed in this process's test database: true from the session's
# start, false from a transactional test's start (it empties the tables) until its teardown puts
# the matrix back, so that the other tests need not ask the database before each of them.
_matrix = {"committed": False}


def _put_back_matrix(*, committed: bool = False) -> None:
    from dmp.matrix_defaults import default_cells
    from dmp.models import MatrixEntry

    MatrixEntry.objects.bulk_create(
        [MatrixEntry(profession=p, doc_type=t, allowed=a) for p, t, a in default_cells()], ignore_conflicts=True
    )
    _matrix["committed"] = committed


_FLUSHED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """A kept test database (`--reuse-db`, the fast loop) may have been left emptied by a
    transactional test that ran last in the previous run: the matrix is put back once, committed,
    before any test's transaction, instead of inside every test's. One that a run stopped midway
    left with its committed world (tests/personas.py) is emptied first."""
    from django.core.management import call_command

    from dmp.models import MatrixEntry, User
    from tests import personas

    with django_db_blocker.unblock():
        if User.objects.exists():
            call_command("flush", interactive=False, verbosity=0)
        if not MatrixEntry.objects.exists():
            _put_back_matrix()
        _matrix["committed"] = True
    yield
    with django_db_blocker.unblock():
        personas.remove_committed_world()
    personas.close_side_connection()


@pytest.fixture(autouse=True)
def _migration_data(request):
    """Transactional tests (live server, on_commit) empty every table after they run, rows
    written by data migrations included: put back the default matrix, as migration 0002 writes
    it (the audit chain heads are created by the first append to each chain). A test that does
    not ask for the committed world (tests/personas.py) does not see it."""
    marker = request.node.get_closest_marker("django_db")
    transactional = "live_server" in request.fixturenames or (marker and marker.kwargs.get("transaction"))
    uses_db = transactional or marker is not None or "db" in request.fixturenames
    if not uses_db:
        return
    from tests import personas

    request.getfixturevalue("transactional_db" if transactional else "db")
    if personas.committed_world_present():
        browser = "live_server" in request.fixturenames or "page" in request.fixturenames
        uses_world = "world" in request.fixturenames or not personas.MODULE_WORLDS.isdisjoint(request.fixturenames)
        if not uses_world or browser:  # it sees no committed world (a browser test has the French one)
            (personas.remove_committed_world if transactional else personas.hide_committed_world)()
    if transactional:
        request.node.stash[_FLUSHED] = True  # put back again after its teardown: see below
    # pytest may run a transactional test (a browser test, grouped with the others by its
    # browser parameter) before ordinary ones: they too find the matrix put back.
    if transactional or not _matrix["committed"]:
        _put_back_matrix()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After a transactional test has emptied the tables, the matrix is put back once and
    committed, as the migration left it: otherwise every later test of the process would put it
    back inside its own transaction (273 rows, rolled back each time). The committed world went
    with the rest: the next test that asks for it commits it again."""
    try:
        return (yield)
    finally:
        if item.stash.get(_FLUSHED, False):
            from tests import personas

            personas.forget_committed_world()
            # After the process's last test the test database is already gone: nothing to put back.
            if nextitem is not None:
                from pytest_django.plugin import blocking_manager_key

                with item.config.stash[blocking_manager_key].unblock():
                    _put_back_matrix(committed=True)


@pytest.fixture(autouse=True)
def _fresh_cache_and_sms(settings):
    """Each test starts with an empty cache (rate limits, used one-time codes live there) and
    an empty test SMS outbox."""
    from django.core.cache import cache

    from dmp.sms import MemorySmsBackend

    settings.SMS_BACKEND = "dmp.sms.MemorySmsBackend"
    cache.clear()
    MemorySmsBackend.outbox.clear()


@pytest.fixture
def sms_outbox():
    """The SMS sent during the test, as (to, text) pairs."""
    from dmp.sms import MemorySmsBackend

    return MemorySmsBackend.outbox


@pytest.fixture(autouse=True)
def _english_messages():
    """Service messages are matched in English, the source language; the French screens
    are checked in the browser tests, which ask for French as a French browser does."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def client():
    """A browser asking for English, the source language the assertions are written in (a
    request without Accept-Language gets French, the default: see test_i18n)."""
    from django.test import Client

    return Client(headers={"Accept-Language": "en"})


@pytest.fixture
def world(db):
    from tests.personas import world_for_test

    return world_for_test()


@pytest.fixture
def redis_url():
    """The real Redis the suite runs against; mandatory in CI."""
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.skip("REDIS_URL is not set (Redis not reachable)")
    return url


_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if "root" in _scratch:
        shutil.rmtree(_scratch["root"], ignore_errors=True)
    # In CI nothing may be skipped: a skipped test is a test that did not prove anything.
    if CI and _skipped and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if CI and _skipped:
        terminalreporter.write_line(f"CI: {len(_skipped)} skipped test(s) fail the run: {_skipped[:5]}", red=True)
