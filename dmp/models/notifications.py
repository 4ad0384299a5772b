"""The notification outbox (DOMAIN.md §5): one row per message to send, written in the same
transaction as the event that causes it, then sent by a Celery task (dmp/notifications.py).

A row never holds medical content: `context` has plain values for the templates (a
professional's name, an organisation, a date), the text itself is rendered when it is sent, in
`language`. `idempotency_key` is unique: the same event cannot queue the same message twice, and
the key goes to the gateway so that a message re-sent after a crash is delivered once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .record import Record


class Notification(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        SMS = "sms", _("SMS")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENDING = "sending", _("Being sent")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed, will be retried")
        DEAD = "dead", _("Failed for good: needs a person")

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications", verbose_name=_("recipient")
    )
    # The record the event is about (none for a notice about the account alone). Destroying the
    # record removes its notifications with it.
    record = models.ForeignKey(
        Record, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications",
        verbose_name=_("record"),
    )
    event = models.CharField(_("event"), max_length=40)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    # The address or number at the time of the event: a notice about a changed phone must reach
    # the former one even after the account moved on.
    destination = models.CharField(_("destination"), max_length=254)
    language = models.CharField(_("language"), max_length=8)
    context = models.JSONField(_("context"), default=dict, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=160, unique=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    # While `sending`, the worker that claimed the row owns it until then; past it, the row is
    # taken as stuck (the worker died) and sent again under the same key.
    lease_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=40, blank=True)  # a code, never content
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notification_due")]
        constraints = [
            models.CheckConstraint(condition=Q(status="sent") | Q(sent_at__isnull=True), name="notification_sent_at"),
            models.CheckConstraint(
                condition=~Q(status="sending") | Q(lease_until__isnull=False), name="notification_sending_has_lease"
            ),
        ]

    def __str__(self) -> str:
        # Ids and the channel only: this string shows in admin and logs, and the event of an
        # emergency notice would say whose record was opened in an emergency.
        return f"Notification #{self.pk} ({self.channel})"
