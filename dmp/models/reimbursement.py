"""Reimbursement history fed by the insurer (DOMAIN.md §2)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .fields import EncryptedTextField, KeyIdField
from .record import Record


class ReimbursementLine(models.Model):
    """Reimbursed care and dispensed medicines, fed by the insurer (24 months, DOMAIN.md §2)."""

    class Kind(models.TextChoices):
        CARE = "care", _("Reimbursed care")
        MEDICINE = "medicine", _("Dispensed medicine")

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="reimbursements")
    date = models.DateField(_("date"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    # Which medicine, which act, and who provided it are medical: encrypted at rest (lengths
    # checked by the feed, dmp/reimbursement_feed.py).
    code = EncryptedTextField(_("code (CIP13, CCAM, NGAP)"))
    label = EncryptedTextField(_("label"))
    quantity = models.PositiveSmallIntegerField(_("quantity"), default=1)
    amount = models.DecimalField(_("amount reimbursed (€)"), max_digits=8, decimal_places=2)
    provider = EncryptedTextField(_("provider"), blank=True)
    # The insurer's own identifier of the line (docs/reimbursement_feed.md): importing the same
    # line again finds it instead of adding it twice. Empty for lines written before the feed.
    external_id = models.CharField(_("insurer's line id"), max_length=64, null=True, blank=True, unique=True)
    key_id = KeyIdField()  # which document key encrypted it (dmp.E002)

    class Meta:
        verbose_name = _("reimbursement line")
        verbose_name_plural = _("reimbursement lines")
        indexes = [models.Index(fields=["record", "-date"])]
