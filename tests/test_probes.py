"""The load balancer's probes (dmp/probes.py, docs/deployment.md): `/healthz` touches nothing,
`/readyz` says which of the database, Redis and the broker is away, and nothing more.

Redis or the broker away is a URL pointing at a closed port (nothing listens on port 1), as in
tests/test_degraded.py.
Tests without the django_db mark also prove no database is touched: pytest-django refuses it."""

from __future__ import annotations

import json

import pytest
from django.db.utils import ConnectionHandler

from dmp import probes

CLOSED_PORT = "redis://:a-redis-password@127.0.0.1:1/0"


@pytest.mark.django_db
def test_healthz_answers_ok_without_a_single_query(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    # No session read nor written, no CSRF cookie: nothing of the pages' machinery ran.
    assert not response.cookies
    assert "Vary" not in response


@pytest.mark.django_db
def test_healthz_touches_neither_the_database_nor_the_cache_nor_the_session(client, monkeypatch):
    def touched(*args, **kwargs):
        raise AssertionError("a probe touched a backing service")

    monkeypatch.setattr("django.db.backends.base.base.BaseDatabaseWrapper.ensure_connection", touched)
    monkeypatch.setattr("django.core.cache.backends.locmem.LocMemCache.get", touched)
    monkeypatch.setattr("django.contrib.sessions.backends.db.SessionStore.load", touched)
    monkeypatch.setattr("django.contrib.sessions.backends.cached_db.SessionStore.load", touched)
    assert client.get("/healthz").status_code == 200


def test_probes_answer_over_plain_http_whatever_the_host(client, settings):
    """Production redirects to HTTPS and checks the Host header; a load balancer probes each
    server over HTTP by its address."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["dmp.example.org"]
    assert client.get("/healthz", HTTP_HOST="10.0.0.7:8000").status_code == 200
    # The same settings send a page to HTTPS: the probes do come before the redirect.
    assert client.get("/words/", HTTP_HOST="dmp.example.org").status_code == 301


def test_probes_accept_get_and_head_only_and_need_no_csrf(client):
    assert client.head("/healthz").status_code == 200
    for method in ("post", "put", "delete"):
        response = getattr(client, method)("/healthz")
        assert response.status_code == 405
        assert response["Allow"] == "GET, HEAD"
    assert client.post("/readyz").status_code == 405


@pytest.mark.django_db
def test_readyz_names_the_checks_that_passed(client, redis_url, settings):
    settings.CELERY_BROKER_URL = redis_url
    response = client.get("/readyz")
    assert response.status_code == 200
    assert json.loads(response.content) == {"passed": ["database", "cache", "broker"]}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readyz_in_the_embedded_default_checks_the_memory_cache_and_broker(client, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.CELERY_BROKER_URL = "memory://"
    assert client.get("/readyz").status_code == 200


def _assert_names_only(response, failed: list[str]) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert json.loads(response.content) == {"failed": failed}
    body = response.content.decode()
    assert "127.0.0.1" not in body and "a-redis-password" not in body and "redis" not in body


@pytest.mark.django_db
def test_readyz_answers_503_naming_only_the_cache_when_redis_is_away(client, redis_url, settings, caplog):
    settings.CACHES = {"default": {**settings.CACHES["default"], "BACKEND": "dmp.cache.DegradingRedisCache",
                                   "LOCATION": CLOSED_PORT}}
    settings.CELERY_BROKER_URL = redis_url
    _assert_names_only(client.get("/readyz"), ["cache"])
    # The log says which, and why in a word; never the address nor the password.
    assert all("a-redis-password" not in r.getMessage() and "127.0.0.1" not in r.getMessage()
               for r in caplog.records)


@pytest.mark.django_db
def test_readyz_answers_503_naming_only_the_broker_when_it_is_away(client, redis_url, settings):
    settings.CACHES = {"default": {**settings.CACHES["default"], "BACKEND": "dmp.cache.DegradingRedisCache",
                                   "LOCATION": redis_url}}
    settings.CELERY_BROKER_URL = CLOSED_PORT
    _assert_names_only(client.get("/readyz"), ["broker"])


@pytest.mark.django_db
def test_readyz_answers_503_naming_only_the_database_when_it_is_away(client, redis_url, settings, monkeypatch):
    closed = {**settings.DATABASES["default"], "HOST": "127.0.0.1", "PORT": "1", "PASSWORD": "a-redis-password"}
    monkeypatch.setattr(probes, "connections", ConnectionHandler({"default": closed}))
    settings.CELERY_BROKER_URL = redis_url
    _assert_names_only(client.get("/readyz"), ["database"])


def test_readyz_does_not_wait_for_a_check_that_hangs(client, monkeypatch):
    import threading
    import time

    released = threading.Event()

    def hangs():
        released.wait(10)

    for name in probes.CHECKS:
        monkeypatch.setitem(probes.CHECKS, name, hangs)
    # A shorter timeout than production's 1.5 s: what is proved is that the answer comes once
    # it is over, not after the checks' 10 s.
    monkeypatch.setattr(probes, "CHECK_TIMEOUT_SECONDS", 0.3)
    started = time.monotonic()
    response = client.get("/readyz")
    released.set()
    assert time.monotonic() - started < probes.CHECK_TIMEOUT_SECONDS + 1.5
    _assert_names_only(response, ["database", "cache", "broker"])


def test_no_page_links_to_the_probes():
    from django.conf import settings

    found = [p for p in settings.BASE_DIR.joinpath("templates").rglob("*.html")
             if "/healthz" in p.read_text() or "/readyz" in p.read_text()]
    assert found == []
