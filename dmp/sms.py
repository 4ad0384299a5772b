"""SMS sending behind a small backend interface, chosen by the SMS_BACKEND setting.

A backend is a class with `send(*, to, text)` that raises `SmsError` when the message did not
go. Shipped: the console (development), memory (tests) and Brevo (a real provider, over HTTPS).
Messages carry codes and notices, never medical content; neither the number nor the text is
written to the logs.
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
    """The provider did not accept the message."""


class ConsoleSmsBackend:
    """Development backend: prints the message (never used in production)."""

    def send(self, *, to: str, text: str) -> None:
        print(f"[SMS to {to}] {text}")  # noqa: T201


class MemorySmsBackend:
    """Test backend: keeps messages in `outbox`."""

    outbox: list[tuple[str, str]] = []

    def send(self, *, to: str, text: str) -> None:
        self.outbox.append((to, text))


class BrevoSmsBackend:
    """Brevo's transactional SMS API (POST /v3/transactionalSMS/send, `api-key` header).
    Configured by SMS_API_KEY, SMS_SENDER and, to point at another host, SMS_API_URL."""

    def __init__(self) -> None:
        self.url = settings.SMS_API_URL
        self.api_key = settings.SMS_API_KEY
        self.sender = settings.SMS_SENDER

    def send(self, *, to: str, text: str) -> None:
        body = {
            "sender": self.sender,
            "recipient": to.lstrip("+").replace(" ", ""),  # international format, digits only
            "content": text,
            "type": "transactional",
        }
        request = urllib.request.Request(  # noqa: S310 - the URL comes from settings, https in production
            self.url, data=json.dumps(body).encode(), method="POST",
            headers={"api-key": self.api_key, "content-type": "application/json", "accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=settings.SMS_TIMEOUT_SECONDS) as response:  # noqa: S310
                reply = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            logger.error("SMS provider refused the message: HTTP %s", exc.code)
            raise SmsError(f"SMS provider answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            logger.error("SMS provider unreachable: %s", type(exc).__name__)
            raise SmsError("SMS provider unreachable") from exc
        logger.info("SMS sent message_id=%s", reply.get("messageId", "?"))


def send_sms(*, to: str, text: str) -> None:
    import_string(settings.SMS_BACKEND)().send(to=to, text=text)
