"""The medical synthesis (VSM) kept by the médecin traitant: structured, versioned (DOMAIN.md §2)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .fields import EncryptedTextField, KeyIdField
from .people import Professional
from .record import Record


def validate_icd10(code: str) -> None:
    from ..icd10 import who  # the WHO list, loaded on first use

    if not who().is_valid_item(code or ""):
        raise ValidationError(_("%(code)s is not an ICD-10 code."), params={"code": code}, code="icd10")


class Synthesis(models.Model):
    """One version of the synthesis. A change writes a new version; nothing is overwritten."""

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="syntheses")
    version = models.PositiveIntegerField(_("version"))
    author = models.ForeignKey(Professional, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("written at"), default=timezone.now)
    # Encrypted at rest like the documents (dmp/models/fields.py): read one row at a time.
    personal_history = EncryptedTextField(_("personal history"), blank=True)
    family_history = EncryptedTextField(_("family history"), blank=True)
    current_treatments = EncryptedTextField(_("current treatments"), blank=True)
    allergies = EncryptedTextField(_("allergies and intolerances"), blank=True)
    vaccinations = EncryptedTextField(_("vaccinations"), blank=True)
    points_of_attention = EncryptedTextField(_("points of attention"), blank=True)
    key_id = KeyIdField()  # which document key encrypted it (dmp.E002)

    class Meta:
        verbose_name = _("medical synthesis")
        verbose_name_plural = _("medical syntheses")
        constraints = [models.UniqueConstraint(fields=["record", "version"], name="one_synthesis_version")]
        get_latest_by = "version"

    def __str__(self) -> str:
        return f"Synthesis v{self.version} of record #{self.record_id}"


class SynthesisProblem(models.Model):
    synthesis = models.ForeignKey(Synthesis, on_delete=models.CASCADE, related_name="problems")
    # Encrypted too: a code says as much as its label (F20: schizophrenia). At most 8 and 200
    # characters, checked by the synthesis service (the columns hold longer tokens).
    icd10 = EncryptedTextField(_("ICD-10 code"), validators=[validate_icd10])
    label = EncryptedTextField(_("label"))
    since = models.DateField(_("since"), null=True, blank=True)
    key_id = KeyIdField()  # which document key encrypted it (dmp.E002)

    class Meta:
        verbose_name = _("current problem")
        verbose_name_plural = _("current problems")
