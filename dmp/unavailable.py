"""Degraded, not down: a request that needs a backing service that is away (PostgreSQL, Redis,
the Celery broker) answers 503 with `Retry-After` and a translated "temporarily unavailable"
page, never a traceback, a generic 500 or a bare 400 (docs/deployment.md, "When Redis or
PostgreSQL is down").

The page is rendered without a request context: the context processors need the very session
and database that may be away (as the 500 page, dmp/views.py).

Three ways an outage reaches a response, all ending in `unavailable_response`:
- raised by a view: `ServiceUnavailableMiddleware` below (a warning, no traceback logged);
- raised by a middleware (the session or the account read from a database that is down):
  Django hands it to `handler500` (dmp.views.error_500), which looks at the exception;
- the session failing to save at the end of the request: Django turns the database error into
  `SessionInterrupted`, a 400 (the bare 400 of issue 15), which `handler400` looks at.
"""

from __future__ import annotations

import logging

import redis
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template import loader
from kombu.exceptions import OperationalError as BrokerUnreachable

logger = logging.getLogger("dmp.unavailable")

RETRY_AFTER_SECONDS = 60

# A service that is not there, as opposed to a bug: the database (connection lost, server
# restarting), Redis used directly (the cache itself falls back to the database, dmp/cache.py),
# and the Celery broker when a page must queue a task.
UNAVAILABLE = (OperationalError, InterfaceError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
               BrokerUnreachable)


def unavailable_cause(exception: BaseException | None) -> BaseException | None:
    """The outage behind `exception`, itself or one of the exceptions it was raised from or
    while handling (Django wraps a session that could not be saved), or None."""
    seen = 0
    while exception is not None and seen < 10:
        if isinstance(exception, UNAVAILABLE):
            return exception
        exception = exception.__cause__ or exception.__context__
        seen += 1
    return None


def unavailable_response(request=None, cause: BaseException | None = None) -> HttpResponse:
    """503, `Retry-After`, and the page in the language already chosen for the request."""
    if cause is not None:
        # The class only: a database error's text can quote the query and its values.
        logger.warning("service unavailable (%s) for %s", type(cause).__name__,
                       getattr(request, "path", "-"))
    response = HttpResponse(loader.get_template("errors/unavailable.html").render(), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class ServiceUnavailableMiddleware:
    """A view that met an outage answers 503 rather than 500."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        cause = unavailable_cause(exception)
        if cause is None:
            return None
        return unavailable_response(request, cause)
