"""Each API token has its own hourly limit (`API_TOKEN_REQUESTS_PER_HOUR`), separate from the
humans' record-search limit: practice software looks up a practice's patients all day, and a
token is bounded by its own count, never by a person's. Counted in fixed hourly windows in the
cache (one key and one increment per request: a sliding log of 10,000 timestamps per token
would be rewritten on every request)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from ..models import ApiToken

WINDOW = 3600  # seconds


class ApiTokenThrottle(BaseThrottle):
    """At most API_TOKEN_REQUESTS_PER_HOUR requests per token per clock hour; requests with a
    session (a person in the browser) are not counted here."""

    def allow_request(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        now = time.time()
        window = int(now // WINDOW)
        key = f"api-token-requests:{token.pk}:{window}"
        try:
            count = cache.incr(key)
        except ValueError:  # the window's first request (or two at once: one adds, the other counts)
            count = 1 if cache.add(key, 1, timeout=WINDOW + 60) else cache.incr(key)
        self._wait = (window + 1) * WINDOW - now
        return count <= settings.API_TOKEN_REQUESTS_PER_HOUR

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
