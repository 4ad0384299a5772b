"""Degraded, not down (docs/deployment.md, "When Redis or PostgreSQL is down"): logging in
works with Redis stopped, the lockout still counts, and a page that truly needs a service that
is away answers 503 with Retry-After and a translated page, never a traceback nor a bare 400.

Redis stopped is a cache pointed at a closed port (nothing listens on port 1); the database
going away is an OperationalError raised where the database is read.
"""

from __future__ import annotations

import uuid

import pytest
import redis
from django.contrib.sessions.backends.cached_db import SessionStore
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse
from kombu.exceptions import OperationalError as BrokerUnreachable

from dmp import cache as degrading
from dmp.accounts.middleware import RENEWAL_SECONDS
from dmp.models import RecordExport
from dmp.tasks import build_record_export
from tests.personas import totp_code
from tests.test_lockout import ATTACKER, DELAYED, Clocks, checked_and_wrong, page
from tests.test_login import (
    CONFIRM_CODE,
    MFA_AUTHENTICATE,
    _renewed_seconds_ago,
    last_code,
    logged_in,
    password_step,
)

CLOSED_PORT = "redis://127.0.0.1:1/0"
UNAVAILABLE_EN = "The service is temporarily unavailable. Please try again in a minute."
UNAVAILABLE_AR = "الخدمة غير متاحة مؤقتًا. يُرجى المحاولة مرة أخرى بعد دقيقة."


@pytest.fixture
def redis_stopped(settings):
    """The cache as production configures it, pointed at a Redis that is not there."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "BACKEND": "dmp.cache.DegradingRedisCache",
                                   "LOCATION": CLOSED_PORT}}
    degrading._warned_at.pop(CLOSED_PORT, None)
    yield
    assert CLOSED_PORT in degrading._fell_back, "the cache did use the database"
    degrading._down_until.pop(CLOSED_PORT, None)
    degrading._fell_back.discard(CLOSED_PORT)


def assert_unavailable(response, text=UNAVAILABLE_EN):
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    body = response.content.decode()
    assert text in body
    assert "Traceback" not in body and "OperationalError" not in body
    assert "errors/unavailable.html" in [t.name for t in response.templates]


# --- Redis down: the cache falls back to the database ------------------------------------------


def test_the_production_cache_degrades_and_sessions_last_in_the_database(redis_url, settings):
    # Sessions are read through the cache and written to the database as well: with Redis
    # stopped (below) they are read from the database.
    assert settings.CACHES["default"]["BACKEND"] == "dmp.cache.DegradingRedisCache"
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.cached_db"


@pytest.mark.django_db
def test_a_patient_logs_in_with_redis_stopped(client, world, sms_outbox, redis_stopped, caplog):
    response = password_step(client, "alice_martin")
    assert response.status_code == 302 and response["Location"] == CONFIRM_CODE
    response = client.post(CONFIRM_CODE, {"code": last_code(sms_outbox)})
    assert response.status_code == 302 and logged_in(client)
    assert client.get(reverse("portal_patient:home"), follow=True).status_code == 200
    # One warning for the outage, however many cache calls met it; nothing personal in it.
    warnings = [r.getMessage() for r in caplog.records if r.name == "dmp.cache"]
    assert len(warnings) == 1 and all("alice" not in w and "127.0.0.1" not in w for w in warnings)


@pytest.mark.django_db
def test_a_professional_logs_in_with_redis_stopped(client, world, redis_stopped):
    response = password_step(client, world.dr_house.user.username)
    assert response["Location"] == MFA_AUTHENTICATE
    client.post(MFA_AUTHENTICATE, {"code": totp_code()})
    assert logged_in(client)
    assert client.get(reverse("portal_pro:home")).status_code == 200


@pytest.mark.django_db
def test_the_lockout_still_counts_wrong_passwords_with_redis_stopped(client, world, monkeypatch, redis_stopped):
    clocks = Clocks(monkeypatch)
    for _ in range(3):  # the free mistakes
        assert checked_and_wrong(password_step(client, "alice_martin", "wrong password", REMOTE_ADDR=ATTACKER))
    refused = password_step(client, "alice_martin", REMOTE_ADDR=ATTACKER)
    assert refused.status_code == 200 and DELAYED in page(refused) and not logged_in(client)
    clocks.advance(2.5)
    assert checked_and_wrong(password_step(client, "alice_martin", "wrong password", REMOTE_ADDR=ATTACKER))
    assert "Try again in 4 seconds" in page(password_step(client, "alice_martin", REMOTE_ADDR=ATTACKER))


@pytest.mark.django_db
def test_counts_made_while_redis_was_down_go_back_to_redis_when_it_returns(redis_url, monkeypatch):
    client = cache._cache  # the degrading client of this thread's cache
    location = client._location
    key = f"test:{uuid.uuid4()}"

    def refused(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(client._redis, "get_client", refused)
    cache.set(key, (4, 1000.0), 300)  # Redis down: written to the table
    assert cache.get(key) == (4, 1000.0)
    assert redis.Redis.from_url(redis_url).exists(cache.make_key(key)) == 0

    monkeypatch.undo()  # Redis is back, and the retry interval is over
    degrading._down_until.pop(location, None)
    assert cache.get(key) == (4, 1000.0)
    assert redis.Redis.from_url(redis_url).ttl(cache.make_key(key)) > 250
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {degrading.FALLBACK_TABLE}")  # noqa: S608
        assert cursor.fetchone()[0] == 0
    assert location not in degrading._fell_back
    cache.delete(key)


# --- A page that needs a service that is away: 503 -------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_export_asked_while_the_broker_is_down_answers_503_in_the_patients_language(world, monkeypatch):
    def broker_down(pk):
        raise BrokerUnreachable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(build_record_export, "delay", broker_down)
    holder = world.record.holder
    holder.preferred_language = "ar"
    holder.save(update_fields=["preferred_language"])
    patient = Client(headers={"Accept-Language": "fr"})
    patient.force_login(holder)

    response = patient.post(reverse("portal_patient:export", args=[world.record.pk]))

    assert_unavailable(response, UNAVAILABLE_AR)
    assert '<html lang="ar" dir="rtl">' in response.content.decode()
    # Nothing would ever build it: asking again in a minute starts a new export.
    assert not RecordExport.objects.filter(record=world.record).exists()


@pytest.mark.django_db
def test_a_database_outage_in_a_view_answers_503_not_500(client, world, monkeypatch):
    def database_gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("portal_patient.views.export.record_exports_for", database_gone)
    client.force_login(world.record.holder)

    assert_unavailable(client.get(reverse("portal_patient:export", args=[world.record.pk])))


@pytest.mark.django_db
def test_a_database_outage_met_by_a_middleware_answers_503_not_500(client, world, monkeypatch, settings):
    settings.DEBUG = False
    client.force_login(world.record.holder)
    client.raise_request_exception = False

    def database_gone(self):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(SessionStore, "load", database_gone)  # the session is read before any view
    assert_unavailable(client.get(reverse("portal_patient:home")))


@pytest.mark.django_db
def test_a_session_that_cannot_be_saved_during_an_outage_is_a_503_not_a_bare_400(client, world, monkeypatch,
                                                                                    settings):
    """Django turns the session's failed save into a 400 (SessionInterrupted): that was the
    bare 400 of the outage."""
    settings.DEBUG = False
    client.force_login(world.record.holder)
    client.raise_request_exception = False
    # Its idle timeout was last renewed a minute ago: this request renews it, so saves it.
    _renewed_seconds_ago(client, RENEWAL_SECONDS)

    def database_gone(self, *args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(Session, "save", database_gone)
    assert_unavailable(client.get(reverse("portal_patient:home"), follow=False))


@pytest.mark.django_db
def test_a_bad_request_gets_a_page_not_a_bare_400(client, settings):
    settings.DEBUG = False
    client.raise_request_exception = False

    response = client.get("/", HTTP_HOST="not-this-site.example")

    assert response.status_code == 400
    body = response.content.decode()
    assert "<h1>" in body and "Go back, reload the page and try again." in body
    assert "Bad Request (400)" not in body and "Traceback" not in body
    assert "errors/bad_request.html" in [t.name for t in response.templates]
