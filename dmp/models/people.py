"""People and organisations: accounts, health professionals, counter agents (DOMAIN.md §1)."""

from __future__ import annotations

import re

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """Every account. What a user may do comes from the profiles attached to it
    (record holder, legal representative, professional, counter agent) and, for the
    operator's staff, from ``is_staff`` — never from a free-text role."""

    preferred_language = models.CharField(_("preferred language"), max_length=8, default="fr")
    phone = models.CharField(_("mobile phone"), max_length=20, blank=True)
    must_change_password = models.BooleanField(
        _("must change password"), default=False,
        help_text=_("Set when a temporary password was handed over."),
    )

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")


class Organisation(models.Model):
    class Kind(models.TextChoices):
        CPAM_COUNTER = "cpam_counter", _("Health-insurance (CPAM) counter")
        PHARMACY = "pharmacy", _("Pharmacy")
        ASSOCIATION = "association", _("Association")
        RECEPTION_CENTRE = "reception_centre", _("Reception centre (CADA…)")
        FACILITY = "facility", _("Care facility")
        SAMU = "samu", _("SAMU – Centre 15")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    finess = models.CharField(_("FINESS number"), max_length=9, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        # Granted per organisation with django-guardian (`manage.py admin_scope grant`): the
        # operator administers this organisation, its counter agents and its professionals.
        permissions = [("administer_organisation", _("Administer this organisation, its agents and professionals"))]

    def __str__(self) -> str:
        return self.name


def validate_rpps(value: str) -> None:
    """An RPPS number is 11 digits, the last one a Luhn check digit."""
    if not re.fullmatch(r"\d{11}", value or ""):
        raise ValidationError(_("An RPPS number has exactly 11 digits."), code="rpps_format")
    total = 0
    for i, ch in enumerate(reversed(value)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    if total % 10:
        raise ValidationError(_("This RPPS number is not valid (wrong check digit)."), code="rpps_key")


def rpps_with_key(first_ten: str) -> str:
    """Complete 10 digits with their Luhn check digit (demo data and tests)."""
    for last in "0123456789":
        try:
            validate_rpps(first_ten + last)
        except ValidationError:
            continue
        return first_ten + last
    raise ValueError(first_ten)


def normalise_phone(value: str) -> str:
    """A mobile number in international form (+33612345678), as SMS providers want it: spaces,
    dots and dashes dropped, a French national number (06…, 07…) given its +33, 00 read as +.
    Anything else is refused with a message that says how to type it."""
    digits = re.sub(r"[\s.\-()]", "", value or "")
    if re.fullmatch(r"0[67]\d{8}", digits):
        digits = "+33" + digits[1:]
    elif digits.startswith("00"):
        digits = "+" + digits[2:]
    if not re.fullmatch(r"\+[1-9]\d{7,14}", digits):
        raise ValidationError(
            _("This mobile number is not valid: type it with its country code, e.g. +33 6 12 34 56 78."),
            code="phone_format",
        )
    return digits


class Profession(models.TextChoices):
    GP = "gp", _("General practitioner")
    SPECIALIST = "specialist", _("Specialist physician")
    PHARMACIST = "pharmacist", _("Pharmacist")
    NURSE = "nurse", _("Nurse")
    MIDWIFE = "midwife", _("Midwife")
    PHYSIOTHERAPIST = "physiotherapist", _("Physiotherapist")
    DENTIST = "dentist", _("Dentist")


class Professional(models.Model):
    """A health professional (PS), bound to one account and one RPPS number."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="professional")
    rpps = models.CharField(_("RPPS number"), max_length=11, unique=True, validators=[validate_rpps])
    profession = models.CharField(_("profession"), max_length=20, choices=Profession.choices)
    specialty = models.CharField(_("specialty"), max_length=100, blank=True)
    facility = models.ForeignKey(
        Organisation, on_delete=models.SET_NULL, null=True, blank=True, related_name="professionals",
        verbose_name=_("facility"),
    )
    is_samu_regulator = models.BooleanField(
        _("SAMU regulator"), default=False,
        help_text=_("Emergency-call doctor (centre 15): SAMU access mode."),
    )

    class Meta:
        verbose_name = _("health professional")
        verbose_name_plural = _("health professionals")
        # Professionals without a facility (a liberal GP) belong to no organisation: they are
        # administered by the operators holding this model-wide permission.
        permissions = [("administer_unaffiliated", _("Administer professionals without a facility"))]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(is_samu_regulator=True) | models.Q(profession__in=["gp", "specialist"]),
                name="samu_regulator_is_a_physician",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user.get_full_name()} ({self.get_profession_display()})"


class CounterAgent(models.Model):
    """A counter agent or social worker: creates records and deposits papers, reads nothing medical."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="counter_agent")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="counter_agents", verbose_name=_("organisation")
    )

    class Meta:
        verbose_name = _("counter agent")
        verbose_name_plural = _("counter agents")

    def __str__(self) -> str:
        return f"{self.user.get_full_name()} – {self.organisation}"
