"""The embedded demo (`make run`: SQLite, runserver) survives a few people at once.

With SQLite's defaults, two requests writing at the same moment made one of them fail with
"database is locked" (about one request in eight with a handful of users; a 503 "try again in a
minute" today, dmp/unavailable.py): a transaction that reads before it writes is refused at
once, without waiting, when another one writes. dmp/settings.py turns on WAL, a busy timeout and
IMMEDIATE transactions for SQLite (docs/deployment.md).

As `make run` does it, in subprocesses: a temporary SQLite file (not :memory:, which has no
locking to speak of), `migrate`, the demo seeded, then `runserver` hit by 20 threads at once.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.test_deployment import _variables_read_by_settings

BASE_DIR = Path(__file__).resolve().parent.parent
PEOPLE = 20

# Migrates and seeds the demo as `make run` does (one process instead of two: the same
# commands, one interpreter start less), then opens one session per person for the demo's
# chronic patient, as her login would (the login itself is two steps with an SMS code: not
# what this test is about).
SEED_AND_LOG_IN = f"""
import io
from django.conf import settings
from django.core.management import call_command
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.cached_db import SessionStore
from dmp.demo import CHRONIC, GP_TREATING, seed_demo

call_command("migrate", "--noinput", verbosity=0)
seed_demo(stdout=io.StringIO())
users = get_user_model().objects
user = users.get(username=CHRONIC)

def session_of(person):
    session = SessionStore()
    session[SESSION_KEY] = str(person.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = person.get_session_auth_hash()
    session.create()
    return session.session_key

print(settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME, user.record.pk,
      session_of(users.get(username=GP_TREATING)))
for _ in range({PEOPLE}):
    print(session_of(user))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _embedded_environment(folder: Path) -> dict[str, str]:
    """`make run`'s environment (nothing the test run sets), on files of this test's own."""
    test_only = _variables_read_by_settings() | {"DJANGO_ALLOW_ASYNC_UNSAFE", "CI"}
    environment = {k: v for k, v in os.environ.items() if k not in test_only}
    return environment | {
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "DOCUMENT_STORAGE_ROOT": str(folder / "documents"),
        "AUDIT_CHECKPOINT_DIR": str(folder / "audit-checkpoints"),
    }


def _manage(*args: str, environment: dict[str, str]) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=environment,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _vaccinations(folder: Path) -> int:
    with sqlite3.connect(folder / "db.sqlite3") as database:
        return database.execute("SELECT COUNT(*) FROM dmp_vaccination").fetchone()[0]


def _wait_until_live(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, "runserver stopped"
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:  # noqa: S310 - our own server
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("runserver did not answer /healthz in 30 s")


def _status(url: str, cookie_name: str, session_key: str) -> int:
    request = urllib.request.Request(url, headers={"Cookie": f"{cookie_name}={session_key}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - our own server
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# A worker test: it serves the demo with runserver, a long-lived process of its own.
@pytest.mark.slow
@pytest.mark.worker
def test_twenty_requests_at_once_on_the_embedded_demo_all_succeed(tmp_path):
    environment = _embedded_environment(tmp_path)
    cookie_name, csrf_cookie_name, record, gp_session, *sessions = _manage(
        "shell", "--no-imports", "-c", SEED_AND_LOG_IN, environment=environment).split()[-PEOPLE - 4:]
    with sqlite3.connect(tmp_path / "db.sqlite3") as database:
        assert database.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    before = _vaccinations(tmp_path)

    port = _free_port()
    server = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=BASE_DIR, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    information = f"/patient/records/{record}/information/vaccinations/"
    answers: list[tuple[str, int]] = []
    shown: dict[str, int] = {}
    start = threading.Barrier(PEOPLE)

    def one_person(number: int, session_key: str) -> None:
        # Her record (the portal redirects there), then a vaccination added: every request
        # writes its session and the audit; adding a row reads the record under its lock, then
        # writes, the transaction that SQLite refused outright with "database is locked".
        csrf = secrets.token_hex(16)  # a token of our own, sent as cookie and field alike
        opener = urllib.request.build_opener()  # the cookies go with the redirects too
        opener.addheaders = [("Cookie", f"{cookie_name}={session_key}; {csrf_cookie_name}={csrf}")]
        vaccination = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf, "vaccine": f"flu {number}",
                                              "date": "2026-10-01", "batch": ""}).encode()
        start.wait()
        for page, data in (("/patient/", None), (information, vaccination)):
            try:
                with opener.open(url + page, data=data, timeout=60) as response:
                    answers.append((page, response.status))
            except urllib.error.HTTPError as error:
                answers.append((page, error.code))

    try:
        _wait_until_live(url, server)
        # First one at a time: the GP's screens of the record, and the patient's history over
        # the widest period, each of which SQLite once refused with a server error.
        one_at_a_time = ((f"/pro/records/{record}/", gp_session), (f"/pro/records/{record}/documents/", gp_session),
                         (f"/patient/records/{record}/history/?date_from=0001-01-01&date_to=9999-12-31", sessions[0]))
        for page, session in one_at_a_time:
            shown[page] = _status(url + page, cookie_name, session)
        people = [threading.Thread(target=one_person, args=item) for item in enumerate(sessions)]
        for person in people:
            person.start()
        for person in people:
            person.join(timeout=90)
    finally:
        server.terminate()
        errors = server.communicate(timeout=10)[1]

    assert set(shown.values()) == {200}, (shown, errors[-3000:])
    assert len(answers) == PEOPLE * 2
    assert [a for a in answers if a[1] != 200] == [], errors[-3000:]
    assert "database is locked" not in errors and "OperationalError" not in errors
    assert _vaccinations(tmp_path) == before + PEOPLE
