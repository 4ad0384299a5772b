"""A Redis cache that degrades to the database instead of failing (docs/deployment.md,
"When Redis or PostgreSQL is down").

The cache holds the login limiter's counts (dmp/accounts/lockout.py, allauth's rate limits):
with a plain Redis cache, Redis down meant every password step answered 500 and nobody could
log in. Here, when Redis cannot be reached, every cache operation goes to a table of the
database (`dmp_cache_fallback`, Django's database cache, created by migration 0014) and
Redis is tried again after `RETRY_SECONDS`. When Redis answers again, the entries written to
the table meanwhile are copied back into Redis, then removed from the table, so the counts made
during an outage are kept. What is not carried over (docs/deployment.md): counts Redis held
before the outage are not seen while it lasts (they count again once it is back), and an entry
deleted during the outage (a right password resetting its count) comes back with Redis: both
only ever make the lockout stricter, never looser.

Sessions are read through this cache and written to the database as well (Django's
`cached_db` engine): while Redis is down they are read from the database.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.db import connections, router
from django.utils import timezone
from django.utils.functional import cached_property

logger = logging.getLogger("dmp.cache")

FALLBACK_TABLE = "dmp_cache_fallback"
# After a failure, how long to use the database without trying Redis (a connection attempt
# to a host that does not answer costs up to its connect timeout on every request otherwise).
RETRY_SECONDS = 15
# At most one warning per Redis address in this interval, whatever the traffic.
WARNING_INTERVAL_SECONDS = 60

# Errors that mean "Redis is not there", not "this command is wrong".
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

# Per process, per Redis address: every thread's cache object shares what is known of it.
_state_lock = threading.Lock()
_down_until: dict[str, float] = {}
_warned_at: dict[str, float] = {}
_fell_back: set[str] = set()


def _made_key(key: str, key_prefix: str, version: int) -> str:
    # The keys reaching the client are already made (prefix and version): keep them as they are,
    # so the table holds the very keys Redis would, and they can be copied back one for one.
    return key


class _DegradingClient:
    """The client Django's RedisCache calls with made keys; each call goes to Redis, or to the
    database table while Redis is unreachable."""

    def __init__(self, location: str, redis_client: RedisCacheClient, fallback: DatabaseCache) -> None:
        self._location = location
        self._redis = redis_client
        self._fallback = fallback

    def _call(self, name: str, *args):
        if time.monotonic() < _down_until.get(self._location, 0.0):
            return getattr(self._fallback, name)(*args)
        try:
            if self._location in _fell_back:
                self._copy_back()
            return getattr(self._redis, name)(*args)
        except UNREACHABLE as error:
            self._went_down(error)
            return getattr(self._fallback, name)(*args)

    def _went_down(self, error: Exception) -> None:
        now = time.monotonic()
        with _state_lock:
            _down_until[self._location] = now + RETRY_SECONDS
            _fell_back.add(self._location)
            warn = now - _warned_at.get(self._location, -WARNING_INTERVAL_SECONDS) >= WARNING_INTERVAL_SECONDS
            if warn:
                _warned_at[self._location] = now
        if warn:
            # The error's class only: its text may carry the address and password of Redis.
            logger.warning("Redis unreachable (%s): the cache uses the database table %s for %s s",
                           type(error).__name__, FALLBACK_TABLE, RETRY_SECONDS)

    def _copy_back(self) -> None:
        """Redis answers again: the entries written to the table during the outage go back to
        Redis with what remains of their lifetime, then leave the table. Raises UNREACHABLE
        if Redis is still away (the table is then left as it is)."""
        database = router.db_for_read(self._fallback.cache_model_class)
        table = connections[database].ops.quote_name(FALLBACK_TABLE)
        with connections[database].cursor() as cursor:
            cursor.execute(f"SELECT cache_key, expires FROM {table}")  # noqa: S608 - a constant name
            expiries = dict(cursor.fetchall())
        values = self._fallback.get_many(list(expiries))  # decodes, and skips expired entries
        now = timezone.now()
        for key, value in values.items():
            expires = expiries[key]
            if timezone.is_naive(expires):  # databases without time zone support
                expires = timezone.make_aware(expires, timezone.get_default_timezone())
            remaining = int((expires - now).total_seconds())
            if remaining > 0:
                self._redis.set(key, value, remaining)
        self._fallback.delete_many(list(expiries))
        with _state_lock:
            _fell_back.discard(self._location)
        if expiries:
            logger.warning("Redis reachable again: %s cache entries copied back from the database", len(values))

    def add(self, key, value, timeout):
        return self._call("add", key, value, timeout)

    def get(self, key, default):
        return self._call("get", key, default)

    def set(self, key, value, timeout):
        return self._call("set", key, value, timeout)

    def touch(self, key, timeout):
        return self._call("touch", key, timeout)

    def delete(self, key):
        return self._call("delete", key)

    def get_many(self, keys):
        return self._call("get_many", list(keys))

    def has_key(self, key):
        return self._call("has_key", key)

    def incr(self, key, delta):
        return self._call("incr", key, delta)

    def set_many(self, data, timeout):
        return self._call("set_many", data, timeout)

    def delete_many(self, keys):
        return self._call("delete_many", keys)

    def clear(self):
        # Redis down: the table is cleared. Redis up after an outage: what the table holds is
        # copied back first (see _call), then cleared with the rest.
        return self._call("clear")


class _OneClientPerPool(RedisCacheClient):
    """Django's client wraps its pool in a new redis.Redis for every operation, which builds its
    table of some two hundred reply callbacks each time: one redis.Redis per pool is enough (it
    is safe to share between threads; the pool hands out the connections)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, redis.Redis] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class DegradingRedisCache(RedisCache):
    """Django's Redis cache, falling back to the database table `dmp_cache_fallback` while
    Redis cannot be reached (see the module's docstring)."""

    @cached_property
    def _cache(self):
        fallback = DatabaseCache(FALLBACK_TABLE, {
            # Never culled: dropping entries would drop login counts.
            "KEY_FUNCTION": _made_key, "TIMEOUT": None, "OPTIONS": {"MAX_ENTRIES": 10**9},
        })
        return _DegradingClient(",".join(self._servers), _OneClientPerPool(self._servers, **self._options), fallback)
