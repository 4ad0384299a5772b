"""SMS sending behind a small backend interface, chosen by the SMS_BACKEND setting."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class ConsoleSmsBackend:
    """Development backend: prints the message (never used in production)."""

    def send(self, *, to: str, text: str) -> None:
        print(f"[SMS to {to}] {text}")  # noqa: T201


class MemorySmsBackend:
    """Test backend: keeps messages in `outbox`."""

    outbox: list[tuple[str, str]] = []

    def send(self, *, to: str, text: str) -> None:
        self.outbox.append((to, text))


def send_sms(*, to: str, text: str) -> None:
    import_string(settings.SMS_BACKEND)().send(to=to, text=text)
