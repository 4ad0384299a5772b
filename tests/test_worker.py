"""Notifications through a real Celery worker and the test machine's real Redis (mandatory in
CI): the worker runs as a subprocess (`celery -A dmp worker`) on the test database, with an SMS
gateway kept in Redis (`dmp.sms.RedisTestSmsBackend`) and e-mails written to files, so the test
sees exactly what was delivered.

- an event produces exactly one delivered notification per channel;
- a worker killed (SIGKILL) after the gateway accepted the message and before "sent" was
  written leaves the row "sending"; once its lease is over, the periodic sender hands it to a
  new worker, which sends it again under the same idempotency key: still exactly one delivery.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from email import message_from_string
from pathlib import Path

import pytest
import redis
from django.db import connection
from django.utils import timezone

from dmp.models import Notification
from dmp.notifications import message_id
from dmp.policy import Actor
from dmp.services import record_create
from dmp.sms import RedisTestSmsBackend

BASE_DIR = Path(__file__).resolve().parent.parent
LEASE_SECONDS = 3
# The keys of Celery's Redis transport: the default queue and the messages taken but not acknowledged.
BROKER_KEYS = ("celery", "unacked", "unacked_index")


def _database_url() -> str:
    """The test database pytest-django made (test_dmp_<suffix>), for the worker to use."""
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Worker:
    """One `celery -A dmp worker` subprocess, solo pool: the task runs in the process a test kills."""

    def __init__(self, environment: dict[str, str], log: Path) -> None:
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
                [sys.executable, "-m", "celery", "-A", "dmp", "worker", "--pool", "solo", "--concurrency", "1",
                 "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "INFO", "-n", self.name],
                cwd=BASE_DIR, env=environment, stdout=out, stderr=subprocess.STDOUT,
            )
        wait_for(lambda: " ready." in log.read_text() or self.process.poll() is not None, 90, "the worker to start")
        assert self.process.poll() is None, log.read_text()[-3000:]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def gateway(redis_url):
    client = redis.Redis.from_url(redis_url)
    RedisTestSmsBackend.reset(client)
    for key in BROKER_KEYS:  # tasks left by an earlier run must not run against this one's rows
        client.delete(key)
    yield client
    RedisTestSmsBackend.reset(client)
    for key in BROKER_KEYS:  # e.g. the message the killed worker held, never acknowledged
        client.delete(key)


@pytest.fixture
def start_worker(redis_url, gateway, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the worker needs the test database on a server (PostgreSQL)")
    environment = {
        **os.environ, "DMP_ENV": "test", "DATABASE_URL": _database_url(), "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url, "CELERY_TASK_ALWAYS_EAGER": "false",
        "SMS_BACKEND": "dmp.sms.RedisTestSmsBackend", "EMAIL_URL": f"filemail:///{tmp_path / 'mails'}",
        "NOTIFICATION_LEASE_SECONDS": str(LEASE_SECONDS), "DOCUMENT_STORAGE_ROOT": str(tmp_path / "documents"),
    }
    workers: list[Worker] = []

    def start() -> Worker:
        workers.append(Worker(environment, tmp_path / f"worker-{len(workers)}.log"))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()


def mails(tmp_path: Path) -> list:
    folder = tmp_path / "mails"
    if not folder.exists():
        return []
    # The file backend writes each message followed by a line of 79 dashes.
    return [message_from_string(chunk.strip()) for path in sorted(folder.iterdir())
            for chunk in path.read_text().split("-" * 79) if chunk.strip()]


def create_record(world):
    record, _credentials = record_create(
        actor=Actor(world.agent.user), family_name="Haddad", given_names="Nour", birth_date=date(1990, 2, 3),
        consented=True, break_glass_allowed=True, samu_allowed=True, email="nour@example.org",
        phone="06 11 22 33 44", preferred_language="en",
    )
    return record


def statuses(record) -> list[str]:
    return list(Notification.objects.filter(record=record).order_by("channel").values_list("status", flat=True))


@pytest.mark.django_db(transaction=True)
def test_an_event_produces_exactly_one_delivered_notification_per_channel(world, start_worker, gateway, tmp_path):
    start_worker()
    record = create_record(world)  # commits: the send tasks go to Redis, the worker takes them
    wait_for(lambda: statuses(record) == ["sent", "sent"], 60, "both notifications to be sent")

    # The periodic sender finds nothing more to do: nothing is sent twice.
    from dmp.tasks import send_due_notifications

    send_due_notifications.delay()
    time.sleep(1.5)
    [sms] = RedisTestSmsBackend.outbox(gateway)
    email, text = Notification.objects.filter(record=record).order_by("channel")
    assert (sms["to"], sms["key"]) == ("+33611223344", text.idempotency_key)
    assert sms["text"].startswith("DMP: your shared medical record was created")
    [mail] = mails(tmp_path)
    assert mail["To"] == "nour@example.org" and mail["Message-ID"] == message_id(email.idempotency_key)
    assert "your record was created" in mail["Subject"]
    assert Notification.objects.get(pk=text.pk).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_while_sending_still_delivers_exactly_once_after_a_restart(world, start_worker, gateway):
    from dmp.tasks import send_due_notifications

    gateway.set(f"{RedisTestSmsBackend.PREFIX}block", "1")  # the gateway accepts, then hangs
    first = start_worker()
    record = create_record(world)
    sms = Notification.objects.get(record=record, channel=Notification.Channel.SMS)
    wait_for(lambda: len(RedisTestSmsBackend.outbox(gateway)) == 1, 60, "the gateway to accept the SMS")
    sms.refresh_from_db()
    assert sms.status == "sending"  # accepted by the provider, not yet marked sent
    first.kill()
    gateway.delete(f"{RedisTestSmsBackend.PREFIX}block")

    sms.refresh_from_db()
    assert (sms.status, sms.attempts) == ("sending", 1)  # the dead worker's claim, until its lease ends
    start_worker()
    wait_for(lambda: timezone.now() > sms.lease_until, LEASE_SECONDS + 5, "the lease to end")
    send_due_notifications.delay()  # what beat does every minute
    wait_for(lambda: Notification.objects.get(pk=sms.pk).status == "sent", 60, "the SMS to be sent again")

    sms.refresh_from_db()
    assert sms.attempts == 2
    assert int(gateway.get(f"{RedisTestSmsBackend.PREFIX}calls:{sms.idempotency_key}")) == 2  # sent twice...
    [delivered] = [m for m in RedisTestSmsBackend.outbox(gateway) if m["key"] == sms.idempotency_key]
    assert len(RedisTestSmsBackend.outbox(gateway)) == 1  # ...delivered once
    assert delivered["to"] == "+33611223344"
