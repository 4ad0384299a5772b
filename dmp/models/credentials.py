"""Credentials for practice software: API tokens bound to one health professional (DOMAIN.md §6).

A token is shown once, when it is created, and only its SHA-256 is stored: whoever reads the
database (or a backup) cannot use it. The short public prefix lets the professional tell their
tokens apart in lists and logs without the secret.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .people import Professional

# How long a token lives unless revoked sooner: the software is re-registered once a year.
API_TOKEN_LIFETIME = timedelta(days=365)


def api_token_hash(raw: str) -> str:
    """The stored form of a token. A plain SHA-256 is enough: the token is 256 random bits,
    not a password a person chose, so there is nothing for a slow hash to protect."""
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_default_expiry() -> datetime:
    return timezone.now() + API_TOKEN_LIFETIME


class ApiTokenQuerySet(models.QuerySet):
    def live(self, at: datetime | None = None):
        """Tokens that authenticate at `at` (now by default): neither revoked nor expired."""
        at = at or timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=at)


class ApiToken(models.Model):
    """An API credential a professional gives their practice software. It acts as that
    professional, so it is refused as soon as the account loses its second factor."""

    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        EXPIRED = "expired", _("Expired")
        REVOKED = "revoked", _("Revoked")

    professional = models.ForeignKey(
        Professional, on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("health professional")
    )
    label = models.CharField(
        _("label"), max_length=100, help_text=_("Which software, on which machine, uses this token.")
    )
    prefix = models.CharField(
        _("prefix"), max_length=16, help_text=_("The public start of the token, to tell tokens apart.")
    )
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), default=api_token_default_expiry)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("created_at")),
                                   name="api_token_expires_after_creation"),
        ]

    def __str__(self) -> str:
        return f"{self.label} (dmp_{self.prefix}_…)"

    def state_at(self, at: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return self.State.REVOKED
        if self.expires_at <= (at or timezone.now()):
            return self.State.EXPIRED
        return self.State.ACTIVE

    @property
    def state(self) -> str:
        return self.state_at()

    def get_state_display(self) -> str:
        return self.State(self.state).label

    def is_live(self, at: datetime | None = None) -> bool:
        return self.state_at(at) == self.State.ACTIVE
