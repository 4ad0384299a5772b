"""Progressive delays per (account, address): wrong passwords slow down whoever types them,
where they type them, without locking the account out for everybody else.

Three counts stand between a password guesser and an account (docs/security.md):

- here, per (account, address): the first `LOGIN_FREE_FAILURES` wrong passwords cost nothing
  (people mistype); after that each next attempt from that address for that account must
  wait 2, 4, 8 … seconds, doubling up to `LOGIN_DELAY_MAX_SECONDS`. An attempt made while the
  delay runs is refused *without checking the password* and says when to try again. The count
  is remembered `LOGIN_DELAY_MEMORY_HOURS` after the last failure, and a right password from
  that address resets it;
- allauth's limiter (`ACCOUNT_RATE_LIMITS["login_failed"]`, dmp/settings.py), per account
  whatever the address: the ceiling, `LOGIN_FAILURES_PER_ACCOUNT` in
  `LOGIN_ACCOUNT_WINDOW_HOURS` (NIST SP 800-63B: at most 100 consecutive failures);
- allauth's limiter again, per address whatever the account: `LOGIN_FAILURES_PER_ADDRESS` in
  `LOGIN_ADDRESS_WINDOW_MINUTES`, high, since a reception centre puts many people behind one.

No server-side sleep: a refused attempt answers at once. The state lives in the cache (Redis
in production, shared by every worker; a table of the database while Redis is down, see
dmp/cache.py). Clock: `time.time()`, which tests shift.

The professionals' record searches (portal and FHIR `Patient?`) are counted by the same allauth
limiter, per account (`ACCOUNT_RATE_LIMITS["record_search"]`, `RECORD_SEARCHES_PER_HOUR`):
one limiter, one cache layout, one sliding window, configured next to the login limits. The
patients' searches of the professionals by name count there too, apart
(`ACCOUNT_RATE_LIMITS["professional_search"]`, `PROFESSIONAL_SEARCHES_PER_HOUR`).
"""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import contextmanager

from allauth.core.internal import ratelimit
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

security_log = logging.getLogger("dmp.security")

_PREFIX = "dmp:login-delay"
_LOCK_SECONDS = 5


class TooSoon(Exception):
    """An attempt made while this (account, address)'s delay runs: `retry_at` (a Unix time)
    is when the next one will be checked."""

    def __init__(self, retry_at: float) -> None:
        super().__init__(retry_at)
        self.retry_at = retry_at

    @property
    def seconds(self) -> int:
        return max(1, int(-(-(self.retry_at - time.time()) // 1)))


def delay_after(failures: int) -> int:
    """Seconds the next attempt must wait after `failures` wrong passwords in a row from one
    address for one account: none for the first LOGIN_FREE_FAILURES, then 2, 4, 8 … capped."""
    free = settings.LOGIN_FREE_FAILURES
    if failures < free:
        return 0
    exponent = min(failures - free + 1, 32)  # 2**32 s is far past any sane cap
    return min(2**exponent, settings.LOGIN_DELAY_MAX_SECONDS)


def _digest(text: str) -> str:
    # Identifiers may be a NIR and addresses are personal data: the cache and the log hold
    # keyed hashes only (a plain hash of a NIR could be reversed by trying every NIR).
    return salted_hmac("dmp.accounts.lockout", text, algorithm="sha256").hexdigest()[:32]


def _login(login: str) -> str:
    return (login or "").strip().lower()


def _generation_key(login: str) -> str:
    return f"{_PREFIX}:generation:{_digest(_login(login))}"


def _pair_key(login: str, ip: str) -> str:
    # The account's generation is part of the key: forget_account() starts a new one, which
    # drops the counts of every address at once without having to know them.
    generation = cache.get(_generation_key(login), 0)
    return f"{_PREFIX}:pair:{_digest(_login(login))}:{generation}:{_digest(ip or '-')}"


@contextmanager
def _locked(key: str):
    """Two attempts racing on one pair must not both see "no delay": the check and the count
    happen under a short cache lock (cache.add is atomic on Redis)."""
    lock = f"{key}:lock"
    deadline = time.monotonic() + 1
    acquired = cache.add(lock, 1, timeout=_LOCK_SECONDS)
    while not acquired and time.monotonic() < deadline:
        time.sleep(0.01)
        acquired = cache.add(lock, 1, timeout=_LOCK_SECONDS)
    try:
        yield
    finally:
        if acquired:
            cache.delete(lock)


def _memory_seconds() -> int:
    return settings.LOGIN_DELAY_MEMORY_HOURS * 3600


def begin_attempt(login: str, ip: str) -> tuple[int, float]:
    """Call before checking a password typed for `login` from `ip`. Raises TooSoon while this
    pair's delay runs (the password must then not be checked). Otherwise the attempt is
    counted as a failure at once, so that attempts sent in parallel are delayed too;
    `attempt_succeeded` resets the count and `attempt_cancelled` takes this one back. Returns
    the count as it was, for `attempt_cancelled`."""
    key = _pair_key(login, ip)
    with _locked(key):
        failures, last = cache.get(key, (0, 0.0))
        now = time.time()
        retry_at = last + delay_after(failures)
        if failures and now < retry_at:
            # No identifier (it may be a NIR): a keyed hash, enough for an operator to see
            # one account tried from many addresses.
            security_log.warning("password attempt refused during its delay: account=%s failures_from_address=%s",
                                 _digest(_login(login))[:12], failures)
            raise TooSoon(retry_at)
        cache.set(key, (failures + 1, now), _memory_seconds())
    return failures, last


def attempt_cancelled(login: str, ip: str, previous: tuple[int, float]) -> None:
    """The password was not checked after all (another limit refused the attempt)."""
    key = _pair_key(login, ip)
    with _locked(key):
        if previous[0]:
            cache.set(key, previous, _memory_seconds())
        else:
            cache.delete(key)


def attempt_succeeded(login: str, ip: str) -> None:
    """The right password from this address: its count for this account starts again."""
    cache.delete(_pair_key(login, ip))


def forget_account(login: str) -> None:
    """Drop every address's count for this account (a counter agent lifting a lock after
    checking the person's identity)."""
    key = _generation_key(login)
    cache.set(key, uuid.uuid4().hex, None)


RECORD_SEARCH = "record_search"
PROFESSIONAL_SEARCH = "professional_search"


def record_search_allowed(user, ip: str | None = None) -> bool:
    """Count one record search by `user` (from `ip`) on allauth's limiter, like a login attempt:
    False, and nothing counted, once `ACCOUNT_RATE_LIMITS["record_search"]` is reached. Searches
    are counted whatever the method (the FHIR search is a GET)."""
    return _consume(user, ip, RECORD_SEARCH)


def professional_search_allowed(user, ip: str | None = None) -> bool:
    """Count one search of the professionals by name (a patient choosing whom to give access,
    block or make médecin traitant) like a record search, on its own count
    (`ACCOUNT_RATE_LIMITS["professional_search"]`): enough to find a few people, too few to copy
    the directory ten names at a time."""
    return _consume(user, ip, PROFESSIONAL_SEARCH)


def _consume(user, ip: str | None, action: str) -> bool:
    request = HttpRequest()  # allauth keys its counts on a request: the user's, and an address
    request.user = user
    request.META["REMOTE_ADDR"] = ip or ""
    return ratelimit.consume(request, app="allauth.account", action=action, user=user,
                             limit_get=True) is not None
