"""What a load balancer or an orchestrator asks a server: `/healthz` and `/readyz`
(docs/deployment.md, "Probes for the load balancer").

- `/healthz`, liveness: the process answers HTTP. It touches nothing (no database, session,
  cache nor template), so it is also the floor the benchmark compares every page with (bench/).
- `/readyz`, readiness: the database, the cache's Redis and the Celery broker each answer
  within `CHECK_TIMEOUT_SECONDS`. 200 with the list of checks that passed; 503 with
  `Retry-After` and the names of the ones that failed, nothing else (no host, no port, no
  password, no error text: probes are often reachable from more places than the pages).

`ProbesMiddleware` is the first middleware, so a probe never reaches the others: no session
read or written, no CSRF, no language, no account gate, and no HTTPS redirect nor host check
(SecurityMiddleware, CommonMiddleware), since load balancers probe each server over plain HTTP
by its address. Neither path is in the URL configuration: nothing links to them.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor, wait

import redis
from django.conf import settings
from django.core.cache import caches
from django.db import connections
from django.http import HttpResponse, HttpResponseNotAllowed
from kombu import Connection

from .unavailable import RETRY_AFTER_SECONDS

logger = logging.getLogger("dmp.probes")

HEALTHZ, READYZ = "/healthz", "/readyz"
# Each check's own timeout, and the longest /readyz waits for all of them (they run side by
# side): a dependency that does not answer must not hold the probe longer than the load
# balancer's own timeout (a few seconds), or the server is marked down for the wrong reason.
CHECK_TIMEOUT_SECONDS = 1.5


def _database() -> None:
    # Runs in a thread of its own, so this is a connection of its own, closed at the end:
    # it never leaves a connection behind nor counts as one of a request's queries.
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connections.close_all()


def _cache() -> None:
    """Redis itself when the cache is Redis: the cache object would not fail, it falls back to
    the database (dmp/cache.py), which is degraded service, not readiness."""
    config = settings.CACHES["default"]
    if "Redis" in config["BACKEND"]:
        client = redis.Redis.from_url(config["LOCATION"], socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
                                      socket_timeout=CHECK_TIMEOUT_SECONDS)
        try:
            client.ping()
        finally:
            client.close()
    else:  # the embedded default's memory cache
        caches["default"].get("dmp:readyz")


def _broker() -> None:
    options = {"socket_connect_timeout": CHECK_TIMEOUT_SECONDS, "socket_timeout": CHECK_TIMEOUT_SECONDS}
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT_SECONDS,
                    transport_options=options) as connection:
        # No retry: kombu's connect() retries once after two seconds, longer than the probe waits.
        connection.ensure_connection(max_retries=0)


CHECKS = {"database": _database, "cache": _cache, "broker": _broker}


def _failed_checks() -> list[str]:
    """The names of the checks that failed or did not finish in time, in CHECKS's order."""
    executor = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="readyz")
    futures = {name: executor.submit(check) for name, check in CHECKS.items()}
    wait(futures.values(), timeout=CHECK_TIMEOUT_SECONDS + 0.5)
    # Not waiting for a check that hangs past its timeout: its thread ends on its own.
    executor.shutdown(wait=False, cancel_futures=True)
    failed = []
    for name, future in futures.items():
        if not future.done():
            failed.append(name)
            logger.warning("readiness: %s did not answer in time", name)
        elif future.exception() is not None:
            failed.append(name)
            # The class only: the text of a connection error names the host, and may quote a URL.
            logger.warning("readiness: %s unavailable (%s)", name, type(future.exception()).__name__)
    return failed


def _answer(status: int, content: bytes, content_type: str) -> HttpResponse:
    # The body of a HEAD is dropped by the server (gunicorn, runserver), headers kept.
    response = HttpResponse(content, status=status, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response


def healthz(request) -> HttpResponse:
    return _answer(200, b"ok\n", "text/plain; charset=utf-8")


def readyz(request) -> HttpResponse:
    failed = _failed_checks()
    if failed:
        response = _answer(503, json.dumps({"failed": failed}).encode(), "application/json")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return _answer(200, json.dumps({"passed": list(CHECKS)}).encode(), "application/json")


PROBES = {HEALTHZ: healthz, READYZ: readyz}


class ProbesMiddleware:
    """Answers the two probes before any other middleware runs (see the module's docstring)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        probe = PROBES.get(request.path_info)
        if probe is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return probe(request)
