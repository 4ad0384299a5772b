"""Notifications to a person about their account and record (DOMAIN.md §5).

One entry point, `notify(user, event, **context)`: the message goes to the account by the
channels it has (e-mail if it has an address, SMS if it has a mobile phone, nothing if it has
neither), in the account's preferred language, once the current transaction has committed, so
nobody is told about a change that was rolled back.

Each event has its own templates under templates/notifications/<event>/: subject.txt,
body.txt and body.html for e-mail, sms.txt for SMS. They say what happened to the account
and where, in plain words, and never anything medical.

Not durable yet: a message is sent in the process that made the change, and one that fails is
logged and dropped. A later issue sends it through Celery (retried, survives a worker crash);
`_deliver(user_id, event, context)` is the body such a task runs, which is why it takes an id
and plain values rather than objects.
"""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation

from .models import User
from .sms import send_sms

logger = logging.getLogger(__name__)

EVENTS = frozenset({"credentials_reset", "contact_changed"})


def notify(user: User, event: str, *, also_email: str = "", also_phone: str = "", **context) -> None:
    """Tell the account's owner that `event` happened, after the transaction commits.

    `context` holds plain values for the templates (names of organisations, dates), never
    medical content and never a secret such as a password. `also_email` / `also_phone` are
    former contact details that must hear of the event too (they were just replaced)."""
    if event not in EVENTS:
        raise ValueError(f"Unknown notification event: {event!r}")
    if not (user.email or user.phone or also_email or also_phone):
        return  # a record without e-mail or phone exists and is used; nobody to tell
    # robust: the change has committed; a failing channel must not turn it into an error page.
    transaction.on_commit(partial(_deliver, user.pk, event, context, also_email, also_phone), robust=True)


def _deliver(user_id: int, event: str, context: dict, also_email: str = "", also_phone: str = "") -> None:
    user = User.objects.get(pk=user_id)
    with translation.override(user.preferred_language or settings.LANGUAGE_CODE):
        for email in dict.fromkeys(filter(None, (user.email, also_email))):
            _send(user_id, event, "email", partial(_send_email, email, event, context))
        for phone in dict.fromkeys(filter(None, (user.phone, also_phone))):
            _send(user_id, event, "sms", partial(_send_sms, phone, event, context))


def _send(user_id: int, event: str, channel: str, send) -> None:
    # One channel failing does not stop the other. The log line holds ids only: an address or
    # a phone number is personal data.
    try:
        send()
    except Exception as exc:  # any gateway error: logged, never raised
        logger.error("notification %s to user %s by %s failed: %s", event, user_id, channel, type(exc).__name__)


def _send_email(to: str, event: str, context: dict) -> None:
    folder = f"notifications/{event}"
    subject = " ".join(render_to_string(f"{folder}/subject.txt", context).split())
    message = EmailMultiAlternatives(subject, render_to_string(f"{folder}/body.txt", context), to=[to])
    message.attach_alternative(render_to_string(f"{folder}/body.html", context), "text/html")
    message.send()


def _send_sms(to: str, event: str, context: dict) -> None:
    text = " ".join(render_to_string(f"notifications/{event}/sms.txt", context).split())
    send_sms(to=to, text=text)
