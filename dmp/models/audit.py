"""The access ledger's tables: the audit entries, one chain head per chain, and the database
copy of the signed checkpoints (dmp/audit.py writes and verifies them; docs/audit.md
"The access ledger" says why).

Entries form one hash chain per record, plus one chain (CHAIN_WITHOUT_RECORD) for entries that
name no record. Each entry stores its chain, its position there (`chain_seq`), the previous
entry's hash, its own hash over all of that (a canonical payload), and an HMAC of the hash
under a key the database does not hold. `seq` is the table's auto-increment key: a global
order that no append waits for. PostgreSQL refuses UPDATE and DELETE on the entries
(a trigger, migration 0011).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ..verify_history import GENESIS_HASH, canonical, sha256

# Record ids start at 1: chain 0 holds the entries about no record (administration...).
CHAIN_WITHOUT_RECORD = 0

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
    seq = models.BigAutoField(_("sequence"), primary_key=True)
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
    chain = models.BigIntegerField()
    chain_seq = models.PositiveBigIntegerField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(max_length=16)
    mac = models.CharField(max_length=64)

    objects = AuditQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["seq"]
        constraints = [
            # One entry per position of a chain; also the index the verifier walks a chain by.
            models.UniqueConstraint(fields=["chain", "chain_seq"], name="audit_entry_chain_position"),
        ]
        # The access history reads one record's entries, newest first, by person or by period:
        # each of its queries starts with `record_id_ref = X`, so its cost follows the record's
        # history, not the size of the log (docs/performance.md, "Access history").
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
        """The canonical text the hash covers: every field but `seq` (given by the database at
        insert), the hash and its MAC. The same text goes into the patient's export."""
        return canonical(
            {
                "chain": self.chain,
                "chain_seq": self.chain_seq,
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
            }
        )

    def compute_hash(self) -> str:
        return sha256(self.payload())


class AuditChainHead(models.Model):
    """One row per chain: its newest position and hash, so deleting the newest entries of a
    chain is seen; the row is also the lock that orders appends within one chain only.
    `checkpointed_chain_seq` is how far the last signed checkpoint covered this chain: a head
    ahead of it is due in the next checkpoint."""

    chain = models.BigIntegerField(primary_key=True)
    last_chain_seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    last_seq = models.PositiveBigIntegerField(default=0)
    checkpointed_chain_seq = models.PositiveBigIntegerField(default=0)
    checkpoint = models.PositiveBigIntegerField(null=True)

    class Meta:
        indexes = [
            # The heads changed since the last checkpoint, found without reading every chain.
            models.Index(
                fields=["chain"], name="audit_head_due_checkpoint",
                condition=models.Q(last_chain_seq__gt=models.F("checkpointed_chain_seq")),
            ),
        ]


class AuditCheckpoint(models.Model):
    """The database's copy of a signed checkpoint, for convenience (the export's proofs). The
    verifier trusts the checkpoint files, never this copy."""

    seq = models.PositiveBigIntegerField(primary_key=True)
    at = models.DateTimeField()
    root = models.CharField(max_length=64)
    line = models.TextField()
    verified_at = models.DateTimeField(null=True)
