"""Personal data the patient manages (DOMAIN.md §2, 002 annex A)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .fields import EncryptedTextField, KeyIdField
from .record import Record


class PersonalProfile(models.Model):
    class OrganDonation(models.TextChoices):
        NOT_STATED = "not_stated", _("Not stated")
        INFORMED = "informed", _("Informed of the rules on organ and tissue donation")
        OPPOSED = "opposed", _("Opposed to organ and tissue donation")

    class BloodGroup(models.TextChoices):
        UNKNOWN = "", _("Unknown")
        A_POS = "A+", "A+"
        A_NEG = "A-", "A−"
        B_POS = "B+", "B+"
        B_NEG = "B-", "B−"
        AB_POS = "AB+", "AB+"
        AB_NEG = "AB-", "AB−"
        O_POS = "O+", "O+"
        O_NEG = "O-", "O−"

    record = models.OneToOneField(Record, on_delete=models.CASCADE, related_name="profile")
    trusted_person_name = models.CharField(_("trusted person"), max_length=150, blank=True)
    trusted_person_phone = models.CharField(_("trusted person's phone"), max_length=20, blank=True)
    trusted_person_relation = models.CharField(_("relationship"), max_length=60, blank=True)
    # The guided advance directives, the organ donation choice, the blood group and the notes are
    # medical: encrypted at rest (dmp/models/fields.py).
    advance_directives = EncryptedTextField(_("advance directives"), blank=True)
    advance_directives_updated_at = models.DateTimeField(null=True, blank=True)
    organ_donation = EncryptedTextField(
        _("organ and tissue donation"), choices=OrganDonation.choices, default=OrganDonation.NOT_STATED
    )
    organ_donation_stated_at = models.DateTimeField(null=True, blank=True)
    blood_group = EncryptedTextField(_("blood group"), choices=BloodGroup.choices, blank=True)
    notes = EncryptedTextField(_("personal notes"), blank=True)
    key_id = KeyIdField()  # which document key encrypted it (dmp.E002)

    class Meta:
        verbose_name = _("personal data")
        verbose_name_plural = _("personal data")


class EmergencyContact(models.Model):
    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="emergency_contacts")
    name = models.CharField(_("name"), max_length=150)
    relation = models.CharField(_("relationship"), max_length=60, blank=True)
    phone = models.CharField(_("phone"), max_length=20)

    class Meta:
        verbose_name = _("person to notify in an emergency")
        verbose_name_plural = _("people to notify in an emergency")


class Vaccination(models.Model):
    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="vaccinations")
    # What a person was vaccinated against, and the allergies and history they declare, are
    # medical: encrypted at rest (at most 120, 40 and 200 characters, checked by the services).
    vaccine = EncryptedTextField(_("vaccine"))
    date = models.DateField(_("date"))
    batch = EncryptedTextField(_("batch number"), blank=True)
    declared_by_patient = models.BooleanField(_("declared by the patient"), default=True)
    key_id = KeyIdField()  # which document key encrypted it (dmp.E002)

    class Meta:
        verbose_name = _("vaccination")
        verbose_name_plural = _("vaccinations")
        ordering = ["-date"]


class SelfDeclaredItem(models.Model):
    """Allergies, history and operations the patient declares themselves."""

    class Kind(models.TextChoices):
        ALLERGY = "allergy", _("Allergy")
        HISTORY = "history", _("Medical history")
        OPERATION = "operation", _("Operation")

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="self_declared")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    label = EncryptedTextField(_("label"))
    year = models.PositiveSmallIntegerField(_("year"), null=True, blank=True)
    declared_at = models.DateTimeField(default=timezone.now)
    key_id = KeyIdField()  # which document key encrypted it (dmp.E002)

    class Meta:
        verbose_name = _("self-declared item")
        verbose_name_plural = _("self-declared items")
