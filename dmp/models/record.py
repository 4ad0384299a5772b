"""The record: identity, life cycle, consents, legal representatives (DOMAIN.md §2)."""

from __future__ import annotations

import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from stdnum.fr import nir as stdnum_nir

NIR_RE = re.compile(r"^[12378]\d{2}(0[1-9]|1[0-2]|[2-9]\d)(\d{2}|2A|2B)\d{6}$")


def nir_key(nir13: str) -> int:
    """The 2-digit key of a 13-character NIR: 97 - (number mod 97), Corsica's 2A and 2B read
    as 19 and 18 (python-stdnum's `stdnum.fr.nir`)."""
    return int(stdnum_nir.calc_check_digits(nir13.upper()))


def normalise_nir(value: str) -> str:
    return re.sub(r"[\s.-]", "", value or "").upper()


def validate_nir(value: str) -> None:
    """A NIR is 13 characters and a 2-digit key that must match (2A/2B for Corsica)."""
    nir = normalise_nir(value)
    if len(nir) != 15 or not NIR_RE.match(nir[:13]) or not nir[13:].isdigit():
        raise ValidationError(
            _("A social-security number (NIR) has 13 characters followed by a 2-digit key."),
            code="nir_format",
        )
    if not stdnum_nir.is_valid(nir):  # the key
        raise ValidationError(_("This social-security number's key does not match."), code="nir_key")


def new_provisional_id() -> str:
    """A provisional identifier: 'P' and 11 characters of an alphabet without look-alikes,
    so it can be read over a counter and printed on the credentials sheet."""
    alphabet = "ACDEFGHJKLMNPQRTUVWXY3479"
    return "P" + "".join(secrets.choice(alphabet) for _ in range(11))


class Record(models.Model):
    """One person's shared medical record."""

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")
        DESTROYED = "destroyed", _("Destroyed")

    class ClosureReason(models.TextChoices):
        REQUEST = "request", _("At the person's request")
        DEATH = "death", _("Death")

    class Sex(models.TextChoices):
        FEMALE = "F", _("Female")
        MALE = "M", _("Male")
        OTHER = "X", _("Unspecified")

    holder = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="record", verbose_name=_("holder's account"),
    )
    nir = models.CharField(
        _("social-security number (NIR)"), max_length=15, null=True, blank=True, unique=True,
        validators=[validate_nir],
    )
    provisional_id = models.CharField(
        _("provisional identifier"), max_length=12, unique=True, default=new_provisional_id, editable=False
    )
    family_name = models.CharField(_("family name"), max_length=100)
    given_names = models.CharField(_("given names"), max_length=150)
    birth_date = models.DateField(_("date of birth"))
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, default=Sex.OTHER)
    languages = models.JSONField(_("languages spoken"), default=list, blank=True)
    preferred_language = models.CharField(_("preferred language"), max_length=8, default="fr")
    email = models.EmailField(_("e-mail"), blank=True)
    phone = models.CharField(_("mobile phone"), max_length=20, blank=True)
    postal_address = models.TextField(_("postal address"), blank=True)

    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.OPEN)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closure_reason = models.CharField(
        _("closure reason"), max_length=10, choices=ClosureReason.choices, blank=True
    )
    # Emergency access choices (question 2 at creation), changeable at any time by the patient.
    break_glass_allowed = models.BooleanField(_("emergency (break-glass) access allowed"), default=True)
    samu_allowed = models.BooleanField(_("SAMU regulator access allowed"), default=True)
    # Document types hidden from professionals by default when they arrive (sensitive care).
    default_hidden_types = models.JSONField(_("document types hidden by default"), default=list, blank=True)
    # Notifications (DOMAIN.md §5): the channels the person chose, and the optional alert on
    # every access. Emergency and SAMU accesses are always notified, whatever these say.
    notify_by_email = models.BooleanField(_("notify by e-mail"), default=True)
    notify_by_sms = models.BooleanField(_("notify by SMS"), default=True)
    notify_every_access = models.BooleanField(_("notify every access"), default=False)
    # Whether the legal representatives hear of the record's ordinary life too (a professional's
    # first access, new documents): the patient's own choice, never a representative's
    # (docs/minors.md). Emergency and SAMU accesses are told to them whatever this says.
    representatives_notified = models.BooleanField(_("legal representatives notified"), default=True)

    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="records_created", verbose_name=_("created by"),
    )

    class Meta:
        verbose_name = _("record")
        verbose_name_plural = _("records")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state="open", closed_at__isnull=True)
                | (~models.Q(state="open") & models.Q(closed_at__isnull=False)),
                name="record_closed_at_matches_state",
            ),
        ]

    def __str__(self) -> str:
        # Identity only: never anything medical (this string shows in admin and logs).
        return f"{self.identifier}"

    @property
    def identifier(self) -> str:
        return self.nir or self.provisional_id

    @property
    def display_identifier(self) -> str:
        """The identifier as people read it off their card: a NIR in its groups (sex, year,
        month, département, commune, order, key: "1 85 05 78 006 084 91"), which only an
        isolate keeps in order in a right-to-left page (`|ltr`); a provisional identifier as is."""
        if self.nir and len(self.nir) == 15:
            n = self.nir
            return " ".join((n[0], n[1:3], n[3:5], n[5:7], n[7:10], n[10:13], n[13:]))
        return self.identifier

    @property
    def is_open(self) -> bool:
        return self.state == self.State.OPEN

    @property
    def full_name(self) -> str:
        return f"{self.given_names} {self.family_name}"

    def is_minor(self, at=None) -> bool:
        """Under 18 on the day asked (today by default), from the date of birth: majority in
        France. Asked at each use, never stored, so a record stops being a minor's on the
        eighteenth birthday without anyone changing it."""
        day = timezone.localdate(at) if at is not None else timezone.localdate()
        born = self.birth_date
        had_birthday = (day.month, day.day) >= (born.month, born.day)
        return day.year - born.year - (0 if had_birthday else 1) < 18

    def clean(self) -> None:
        if self.nir:
            self.nir = normalise_nir(self.nir)


class Consent(models.Model):
    """The answers to the three questions asked before creation (DOMAIN.md §2), and who took them."""

    class Channel(models.TextChoices):
        ONLINE = "online", _("Online, by the person")
        PROFESSIONAL = "professional", _("By a health professional")
        PHARMACY = "pharmacy", _("At a pharmacy")
        COUNTER = "counter", _("At a counter")

    class GivenBy(models.TextChoices):
        PERSON = "person", _("The person")
        REPRESENTATIVE = "representative", _("Their legal representative")

    record = models.OneToOneField(Record, on_delete=models.CASCADE, related_name="consent")
    presented_and_consented = models.BooleanField(_("record presented, creation consented"))
    break_glass_allowed = models.BooleanField(_("emergency access accepted"))
    samu_allowed = models.BooleanField(_("SAMU access accepted"))
    contact_email = models.EmailField(_("e-mail given"), blank=True)
    contact_phone = models.CharField(_("phone given"), max_length=20, blank=True)
    given_by = models.CharField(_("given by"), max_length=16, choices=GivenBy.choices, default=GivenBy.PERSON)
    channel = models.CharField(_("how"), max_length=16, choices=Channel.choices)
    captured_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    captured_at = models.DateTimeField(_("captured at"), default=timezone.now)

    class Meta:
        verbose_name = _("consent at creation")
        verbose_name_plural = _("consents at creation")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(presented_and_consented=True), name="record_needs_consent"
            ),
        ]


class RepresentationQuerySet(models.QuerySet):
    def active(self, at=None):
        """Representations in force on that day (no end date, or not reached yet)."""
        day = timezone.localdate(at or timezone.now())
        return self.filter(models.Q(until__isnull=True) | models.Q(until__gte=day))


class LegalRepresentative(models.Model):
    """A parent or guardian who acts for the patient (minus what is hidden from representatives)."""

    class Relationship(models.TextChoices):
        PARENT = "parent", _("Parent")
        GUARDIAN = "guardian", _("Guardian")

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="representatives")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="represented")
    relationship = models.CharField(_("relationship"), max_length=10, choices=Relationship.choices)
    since = models.DateField(_("since"), default=timezone.localdate)
    until = models.DateField(_("until"), null=True, blank=True)

    objects = RepresentationQuerySet.as_manager()

    class Meta:
        verbose_name = _("legal representative")
        verbose_name_plural = _("legal representatives")
        constraints = [models.UniqueConstraint(fields=["record", "user"], name="one_representation_per_user")]
