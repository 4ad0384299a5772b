"""The audit log: append-only and tamper-evident (a SHA-256 hash chain).

Each entry stores the hash of the previous entry and its own hash over its fields and that
previous hash. Altering a row breaks its own hash; inserting or deleting a row breaks the
chain's sequence or linkage; deleting the last rows is caught by the chain head, a single row
updated in the same transaction as each append. `manage.py verify_audit` checks all three.
"""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

GENESIS_HASH = "0" * 64


class AuditMode(models.TextChoices):
    PATIENT = "patient", _("Patient")
    REPRESENTATIVE = "representative", _("Legal representative")
    NORMAL = "normal", _("Normal")
    TREATING_DOCTOR = "treating_doctor", _("Médecin traitant")
    BREAK_GLASS = "break_glass", _("Emergency (break-glass)")
    SAMU = "samu", _("SAMU")
    COUNTER = "counter", _("Counter")
    ADMIN = "admin", _("Administration")
    NONE = "none", _("No access")


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("The audit log is append-only.")

    def delete(self):
        raise PermissionError("The audit log is append-only.")


class AuditEntry(models.Model):
    seq = models.PositiveBigIntegerField(_("sequence"), unique=True)
    at = models.DateTimeField(_("when"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, null=True, related_name="+"
    )
    actor_label = models.CharField(_("who"), max_length=200)
    role = models.CharField(_("role"), max_length=30)
    mode = models.CharField(_("mode"), max_length=20, choices=AuditMode.choices)
    action = models.CharField(_("action"), max_length=40)
    allowed = models.BooleanField(_("allowed"))
    rule = models.CharField(_("rule"), max_length=60)
    record_id_ref = models.BigIntegerField(_("record"), null=True, db_index=True)
    object_type = models.CharField(_("object type"), max_length=30, blank=True)
    object_id = models.CharField(_("object id"), max_length=40, blank=True)
    ip = models.GenericIPAddressField(_("address"), null=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["seq"]
        # The access history reads one record's entries, newest first, by person or by period:
        # each of its queries starts with `record_id_ref = X`, so its cost follows the record's
        # history, not the size of the log (docs/architecture.md, "Access history").
        # Newest first is (at, seq) backwards; a period is a range of `at` within the record.
        indexes = [
            models.Index(fields=["record_id_ref", "at", "seq"], name="audit_record_at_seq"),
            models.Index(fields=["record_id_ref", "actor", "at", "seq"], name="audit_record_actor_at_seq"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {'allowed' if self.allowed else 'refused'}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise PermissionError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The audit log is append-only.")

    def payload(self) -> str:
        """The canonical text the hash covers: every field but the hash itself."""
        return json.dumps(
            {
                "seq": self.seq,
                "at": self.at.isoformat(timespec="microseconds"),
                "actor": self.actor_id,
                "actor_label": self.actor_label,
                "role": self.role,
                "mode": self.mode,
                "action": self.action,
                "allowed": self.allowed,
                "rule": self.rule,
                "record": self.record_id_ref,
                "object_type": self.object_type,
                "object_id": self.object_id,
                "ip": self.ip,
                "prev": self.prev_hash,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    def compute_hash(self) -> str:
        return hashlib.sha256(self.payload().encode()).hexdigest()


class AuditChainHead(models.Model):
    """One row: the last sequence number and hash, so deleting the newest entries is detected."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="single_audit_head")]
