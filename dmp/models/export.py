"""The whole record as one download (DOMAIN.md §3, patient management), prepared in the
background: every document visible to the patient, a one-page summary PDF and the structured
data as FHIR R4 JSON, in one ZIP."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .fields import KeyIdField
from .record import Record


def export_upload_to(instance: RecordExport, filename: str) -> str:
    return f"exports/{instance.record_id}/{instance.pk}.zip"


class RecordExport(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Being prepared")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="exports")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    # Encrypted at rest like documents, and served only through a view that asks the policy.
    file = models.FileField(_("file"), upload_to=export_upload_to, max_length=200, blank=True)
    size = models.PositiveBigIntegerField(_("size in bytes"), default=0)
    error = models.CharField(_("error"), max_length=200, blank=True)  # a code, never medical content
    created_at = models.DateTimeField(_("requested at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    key_id = KeyIdField()  # which document key encrypted it (dmp.E002)

    class Meta:
        verbose_name = _("record export")
        verbose_name_plural = _("record exports")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Export #{self.pk}"
