"""Stored facts the access policy reads: médecin traitant, care authorisations, blocks,
deposit rights and the authorisation matrix (DOMAIN.md §4). The rules themselves live in
dmp/policy.py, nowhere else."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .documents import DocumentType
from .fields import EncryptedTextField, KeyIdField
from .people import CounterAgent, Profession, Professional
from .record import Record


class ActiveQuerySet(models.QuerySet):
    """Rows that are in force at a given time (ended_at empty or in the future, expires_at too)."""

    def active(self, at=None):
        at = at or timezone.now()
        q = Q(ended_at__isnull=True) | Q(ended_at__gt=at)
        if any(f.name == "expires_at" for f in self.model._meta.fields):
            q &= Q(expires_at__isnull=True) | Q(expires_at__gt=at)
        return self.filter(q)


class TreatingDoctor(models.Model):
    """The médecin traitant the patient designates in the record (may differ from the insurer's)."""

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="treating_doctors")
    professional = models.ForeignKey(Professional, on_delete=models.PROTECT, related_name="treated_records")
    designated_at = models.DateTimeField(_("designated at"), default=timezone.now)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    objects = ActiveQuerySet.as_manager()

    class Meta:
        verbose_name = _("médecin traitant designation")
        verbose_name_plural = _("médecin traitant designations")
        constraints = [
            models.UniqueConstraint(
                fields=["record"], condition=Q(ended_at__isnull=True), name="one_treating_doctor_per_record"
            ),
        ]


class CareAuthorisation(models.Model):
    """Why a professional may open a record: granted by the patient, declared by the PS at a
    consultation, opened in emergency (break-glass, limited in time) or by the SAMU regulator."""

    class Kind(models.TextChoices):
        GRANTED_BY_PATIENT = "granted", _("Granted by the patient")
        DECLARED_BY_PROFESSIONAL = "declared", _("Declared by the professional at a consultation")
        BREAK_GLASS = "break_glass", _("Emergency access (break-glass)")
        SAMU = "samu", _("SAMU regulator access")

    # The kinds that make a care relationship (as opposed to an emergency opening): the patient's
    # grant and the professional's declaration. Revoked together, shared with a care team together.
    CARE_KINDS = (Kind.GRANTED_BY_PATIENT, Kind.DECLARED_BY_PROFESSIONAL)

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="care_authorisations")
    professional = models.ForeignKey(Professional, on_delete=models.CASCADE, related_name="care_authorisations")
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    # A break-glass justification is medical ("unconscious, suspected overdose"): encrypted at rest.
    justification = EncryptedTextField(_("justification"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    patient_notified_at = models.DateTimeField(_("patient notified at"), null=True, blank=True)
    # A facility's care team: when set, every professional of that facility shares this
    # authorisation (granted or declared only); each access is still logged under the individual.
    facility = models.ForeignKey(
        "dmp.Organisation", on_delete=models.CASCADE, null=True, blank=True, related_name="care_authorisations",
        verbose_name=_("shared with the care team of"),
    )

    objects = ActiveQuerySet.as_manager()
    key_id = KeyIdField()  # which document key encrypted it (dmp.E002)

    class Meta:
        verbose_name = _("care authorisation")
        verbose_name_plural = _("care authorisations")
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind__in=["break_glass", "samu"]) | Q(expires_at__isnull=False),
                name="emergency_access_expires",
            ),
            models.CheckConstraint(
                condition=~Q(kind="break_glass") | ~Q(justification=""),
                name="break_glass_is_justified",
            ),
            models.CheckConstraint(
                condition=Q(facility__isnull=True) | Q(kind__in=["granted", "declared"]),
                name="only_care_is_shared_with_a_team",
            ),
            # One emergency opening in force per professional and record: a double-click or a
            # retrying browser reuses it (`break_glass_open`). The database cannot compare
            # `expires_at` with now() in an index, so the row stays "in force" here until it is
            # marked ended (`ended_at`): by expiry (`break_glass_expire_due`, or the next opening,
            # which ends an expired one first), by a block. Enforced by SQLite and PostgreSQL alike.
            models.UniqueConstraint(
                fields=["record", "professional", "kind"],
                condition=Q(kind__in=["break_glass", "samu"], ended_at__isnull=True),
                name="one_emergency_opening_in_force",
            ),
        ]


class Block(models.Model):
    """A professional the patient blocked: no access at all, not even in an emergency."""

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="blocks")
    professional = models.ForeignKey(Professional, on_delete=models.CASCADE, related_name="blocks")
    created_at = models.DateTimeField(_("blocked at"), default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    ended_at = models.DateTimeField(_("lifted at"), null=True, blank=True)

    objects = ActiveQuerySet.as_manager()

    class Meta:
        verbose_name = _("blocked professional")
        verbose_name_plural = _("blocked professionals")
        constraints = [
            models.UniqueConstraint(
                fields=["record", "professional"], condition=Q(ended_at__isnull=True), name="one_active_block"
            ),
        ]


class DepositRight(models.Model):
    """A counter agent's write-only channel into a record they onboarded; the patient may withdraw it."""

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="deposit_rights")
    agent = models.ForeignKey(CounterAgent, on_delete=models.CASCADE, related_name="deposit_rights")
    created_at = models.DateTimeField(_("granted at"), default=timezone.now)
    ended_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)

    objects = ActiveQuerySet.as_manager()

    class Meta:
        verbose_name = _("deposit right")
        verbose_name_plural = _("deposit rights")
        constraints = [
            models.UniqueConstraint(
                fields=["record", "agent"], condition=Q(ended_at__isnull=True), name="one_active_deposit_right"
            ),
        ]


class MatrixEntry(models.Model):
    """One cell of the authorisation matrix: may this profession read this document type?
    No row means no: the matrix is restrictive by default and edited by administrators."""

    profession = models.CharField(_("profession"), max_length=20, choices=Profession.choices)
    doc_type = models.CharField(_("document type"), max_length=32, choices=DocumentType.choices)
    allowed = models.BooleanField(_("may read"), default=False)

    class Meta:
        verbose_name = _("authorisation matrix entry")
        verbose_name_plural = _("authorisation matrix")
        constraints = [models.UniqueConstraint(fields=["profession", "doc_type"], name="one_matrix_cell")]
        ordering = ["profession", "doc_type"]

    def __str__(self) -> str:
        return f"{self.get_profession_display()} × {self.get_doc_type_display()}"
