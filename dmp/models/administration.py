"""Two-person administration (DOMAIN.md §4: no insider becomes someone else).

An operator (A) files a request; another operator (B ≠ A) with the same scope approves it, and
only then does it take effect (dmp/services/administration.py). Two kinds:

- creating a health professional or a counter agent (maker/checker): until B approves, the
  request is not a Professional or a CounterAgent and no account exists;
- resetting the second factor of an account that lost it: on approval the account's
  authenticators are removed, its sessions end and its owner is told on every channel.

A request holds ids, names and the RPPS number, never medical content. The database refuses a
request decided by its own author (CheckConstraint), whatever the code above it does.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from .people import Organisation, Profession, Professional, validate_rpps


class AdminRequest(models.Model):
    class Kind(models.TextChoices):
        CREATE_PROFESSIONAL = "create_professional", _("Create a health professional")
        CREATE_COUNTER_AGENT = "create_counter_agent", _("Create a counter agent")
        RESET_SECOND_FACTOR = "reset_second_factor", _("Reset a lost second factor")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a second operator")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(
        _("reason"), max_length=300,
        help_text=_("Why, and how the person's identity was checked. Never anything medical."),
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                     verbose_name=_("requested by"))
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+", verbose_name=_("decided by"))
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    # Resetting a second factor: whose.
    target_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                                    related_name="+", verbose_name=_("account"))

    # Creating a professional: the account and the professional to create on approval.
    username = models.CharField(_("username"), max_length=150, blank=True)
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    email = models.EmailField(_("e-mail address"), blank=True,
                              help_text=_("Where the professional receives the link that activates the account."))
    rpps = models.CharField(_("RPPS number"), max_length=11, blank=True, validators=[validate_rpps])
    profession = models.CharField(_("profession"), max_length=20, choices=Profession.choices, blank=True)
    specialty = models.CharField(_("specialty"), max_length=100, blank=True)
    facility = models.ForeignKey(Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                                 verbose_name=_("facility"))
    is_samu_regulator = models.BooleanField(_("SAMU regulator"), default=False)
    # Creating a counter agent: the same account fields, and the organisation they work for.
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+", verbose_name=_("organisation"))
    professional = models.ForeignKey(Professional, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+", verbose_name=_("professional created"))

    class Meta:
        verbose_name = _("administration request")
        verbose_name_plural = _("administration requests")
        ordering = ["-requested_at"]
        constraints = [
            # Four eyes, enforced by the database too: nobody decides their own request.
            models.CheckConstraint(condition=~Q(decided_by=F("requested_by")), name="admin_request_four_eyes"),
            models.UniqueConstraint(fields=["rpps"], condition=Q(status="pending", kind="create_professional"),
                                    name="one_pending_creation_per_rpps"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class ProfessionalCreationRequest(AdminRequest):
    """The admin's view of the requests to create a professional."""

    class Meta:
        proxy = True
        verbose_name = _("professional creation request")
        verbose_name_plural = _("professional creation requests")


class CounterAgentCreationRequest(AdminRequest):
    """The admin's view of the requests to create a counter agent (who can reset a person's
    credentials at the counter: an insider no operator creates alone)."""

    class Meta:
        proxy = True
        verbose_name = _("counter agent creation request")
        verbose_name_plural = _("counter agent creation requests")


class SecondFactorResetRequest(AdminRequest):
    """The admin's view of the requests to reset a lost second factor."""

    class Meta:
        proxy = True
        verbose_name = _("second-factor reset request")
        verbose_name_plural = _("second-factor reset requests")
