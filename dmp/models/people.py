"""People and organisations: accounts, health professionals, counter agents (DOMAIN.md §1)."""

from __future__ import annotations

import re

import phonenumbers
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType
from stdnum import luhn


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
    """An RPPS number is 11 digits, the last one a Luhn check digit (python-stdnum's Luhn)."""
    if not re.fullmatch(r"\d{11}", value or ""):
        raise ValidationError(_("An RPPS number has exactly 11 digits."), code="rpps_format")
    if not luhn.is_valid(value):
        raise ValidationError(_("This RPPS number is not valid (wrong check digit)."), code="rpps_key")


def rpps_with_key(first_ten: str) -> str:
    """Complete 10 digits with their Luhn check digit (demo data and tests)."""
    if not re.fullmatch(r"\d{10}", first_ten or ""):
        raise ValueError(first_ten)
    return first_ten + luhn.calc_check_digit(first_ten)


# Typed in France: a number without its country code is French. Only what people type around
# a number is allowed around it (letters would be read by phonenumbers as an extension or a
# vanity number).
PHONE_REGION = "FR"
_PHONE_CHARACTERS = re.compile(r"\+?[\d\s.\-()/]+")
MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
CONTACT_TYPES = MOBILE_TYPES | {PhoneNumberType.FIXED_LINE, PhoneNumberType.VOIP, PhoneNumberType.PERSONAL_NUMBER}
# Ranges the regulators keep for fiction (ARCEP's 06 39 98, Ofcom's 07700 900): valid to type,
# nobody's, so the demo data and the tests can never text a real person.
FICTION_RANGES = {"+3363998": 12, "+447700900": 13}  # prefix: length of the whole number


def parse_phone(value: str, kinds: frozenset[int]) -> str | None:
    """`value` as typed (spaces, dots, dashes, brackets; 0… French, +… or 00… with a country
    code) in E.164 form (+33612345678) if it is a valid number of one of `kinds` for its
    country, else None."""
    value = (value or "").strip()
    if not _PHONE_CHARACTERS.fullmatch(value):
        return None
    try:
        number = phonenumbers.parse(value, PHONE_REGION)
    except NumberParseException:
        return None
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if any(e164.startswith(prefix) and len(e164) == length for prefix, length in FICTION_RANGES.items()):
        return e164
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) not in kinds:
        return None
    return e164


def normalise_phone(value: str) -> str:
    """A mobile number in international form (+33612345678), as SMS providers want it: a
    French national number (06…, 07…) or any country's mobile with its code (+…, 00…),
    checked against that country's numbering plan (phonenumbers). Anything else is refused
    with a message that says how to type it."""
    e164 = parse_phone(value, MOBILE_TYPES)
    if e164 is None:
        raise ValidationError(
            _("This mobile number is not valid: type it with its country code, e.g. +33 6 12 34 56 78."),
            code="phone_format",
        )
    return e164


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
    # Where they practise, as the RPPS registry gives it: with the name and profession, what tells
    # two namesakes apart when a patient looks a professional up by name.
    town = models.CharField(_("town"), max_length=100, blank=True)
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
