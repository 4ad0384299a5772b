"""SMS sending behind a small backend interface, chosen by the SMS_BACKEND setting.

A backend is a class with `send(*, to, text, idempotency_key=None)` that raises `SmsError`
when the message did not go. Shipped: the console (development), memory (tests), Redis (tests
across processes: a Celery worker in a subprocess) and Brevo (a real provider, over HTTPS).
Messages carry codes and notices, never medical content; neither the number nor the text is
written to the logs.

`idempotency_key` comes with every notification (dmp/notifications.py): the same key may be sent
again after a crash between "the provider accepted it" and "marked sent", and a backend must
deliver it once. The test backends do; a real provider must honour it on its side, or keep it
where duplicates can be found (Brevo has no idempotency field: see `BrevoSmsBackend`).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class SmsError(Exception):
    """The provider did not accept the message. `permanent`: trying again cannot help (the
    provider refused this number or text), as opposed to a provider out of reach."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ConsoleSmsBackend:
    """Development backend: prints the message (never used in production)."""

    def send(self, *, to: str, text: str, idempotency_key: str | None = None) -> None:
        print(f"[SMS to {to}] {text}")  # noqa: T201


class SentSms(tuple):
    """One (to, text) pair of the memory outbox, with the key it was sent under."""

    idempotency_key: str | None = None


class MemorySmsBackend:
    """Test backend: keeps messages in `outbox` as (to, text) pairs, each key delivered once."""

    outbox: list[tuple[str, str]] = []

    def send(self, *, to: str, text: str, idempotency_key: str | None = None) -> None:
        if idempotency_key and any(getattr(sms, "idempotency_key", None) == idempotency_key for sms in self.outbox):
            return  # already delivered: a provider that honours the key answers "accepted" again
        sms = SentSms((to, text))
        sms.idempotency_key = idempotency_key
        self.outbox.append(sms)


class RedisTestSmsBackend:
    """Test backend shared between processes (the test and a Celery worker it started), kept in
    the Redis of REDIS_URL: each key is delivered once (`SET NX`), every call is counted, and
    while the `block` key exists a call delivers, then waits — a test kills the worker there,
    between "the provider accepted it" and "marked sent". Never in production."""

    PREFIX = "dmp:test-sms:"

    def __init__(self) -> None:
        import redis

        self.redis = redis.Redis.from_url(settings.REDIS_URL)

    def send(self, *, to: str, text: str, idempotency_key: str | None = None) -> None:
        import time

        key = idempotency_key or f"no-key:{time.time_ns()}"
        self.redis.incr(f"{self.PREFIX}calls:{key}")
        if self.redis.set(f"{self.PREFIX}delivered:{key}", "1", nx=True):
            self.redis.rpush(f"{self.PREFIX}outbox", json.dumps({"to": to, "text": text, "key": key}))
        while self.redis.exists(f"{self.PREFIX}block"):
            time.sleep(0.05)

    @classmethod
    def reset(cls, client) -> None:
        for name in client.scan_iter(f"{cls.PREFIX}*"):
            client.delete(name)

    @classmethod
    def outbox(cls, client) -> list[dict]:
        return [json.loads(item) for item in client.lrange(f"{cls.PREFIX}outbox", 0, -1)]


class BrevoSmsBackend:
    """Brevo's transactional SMS API (POST /v3/transactionalSMS/send, `api-key` header).
    Configured by SMS_API_KEY, SMS_SENDER and, to point at another host, SMS_API_URL."""

    def __init__(self) -> None:
        self.url = settings.SMS_API_URL
        self.api_key = settings.SMS_API_KEY
        self.sender = settings.SMS_SENDER

    def send(self, *, to: str, text: str, idempotency_key: str | None = None) -> None:
        body = {
            "sender": self.sender,
            "recipient": to.lstrip("+").replace(" ", ""),  # international format, digits only
            "content": text,
            "type": "transactional",
        }
        if idempotency_key:
            # Brevo's API has no idempotency field and does not refuse a repeat. The key goes in
            # `tag` (ids and event names only, nothing personal), so the provider's reports and
            # webhooks show a message sent twice after a crash; the outbox makes that window small.
            body["tag"] = idempotency_key[:100]
        request = urllib.request.Request(  # noqa: S310 - the URL comes from settings, https in production
            self.url, data=json.dumps(body).encode(), method="POST",
            headers={"api-key": self.api_key, "content-type": "application/json", "accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=settings.SMS_TIMEOUT_SECONDS) as response:  # noqa: S310
                reply = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            logger.error("SMS provider refused the message: HTTP %s", exc.code)
            # 4xx but 429 (too many requests): this number or text is refused, retrying will not help.
            permanent = 400 <= exc.code < 500 and exc.code != 429
            raise SmsError(f"SMS provider answered HTTP {exc.code}", permanent=permanent) from exc
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            logger.error("SMS provider unreachable: %s", type(exc).__name__)
            raise SmsError("SMS provider unreachable") from exc
        logger.info("SMS sent message_id=%s", reply.get("messageId", "?"))


def send_sms(*, to: str, text: str, idempotency_key: str | None = None) -> None:
    backend = import_string(settings.SMS_BACKEND)()
    if idempotency_key is None:
        backend.send(to=to, text=text)  # login codes: any backend, even one without keys
    else:
        backend.send(to=to, text=text, idempotency_key=idempotency_key)
