"""Account recovery at a counter (DOMAIN.md §4 "a counter agent's credentials reset never also
moves where the login code goes in the same step"): a reset is a request that waits for its
proofs, and the letters that tell people without phone or e-mail what happened.

A `CounterReset` holds one visit: who asked (an agent of an organisation), which record, which
identity document was checked (its kind and only the last characters of its number), and what
the reset still needs before it takes effect: the code sent to the person's current phone or
e-mail (presence), the code sent to the new phone or e-mail (the new contact is theirs), the
approval of a second agent of the organisation. Codes are stored as keyed hashes: a database
dump does not give them. Nothing changes on the account until every proof is in
(`dmp/services/accounts.py`); a request left alone expires.

A `PostalLetter` is the "post" channel: a letter for a person who has no phone or e-mail, which
the onboarding organisation prints and sends (or hands over at its next visit). It holds no
medical content and no secret: the event, the organisation that acted, the date and where the
login code goes now, masked.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .people import Organisation
from .record import Record


class IdentityDocument(models.TextChoices):
    """The kind of identity document the agent checked (kept in the audit entry)."""

    IDENTITY_CARD = "identity_card", _("Identity card")
    PASSPORT = "passport", _("Passport")
    RESIDENCE_PERMIT = "residence_permit", _("Residence permit")
    ASYLUM_CERTIFICATE = "asylum_certificate", _("Asylum-seeker certificate")
    OTHER = "other", _("Other identity document")


class CounterReset(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("Waiting for its proofs")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="counter_resets",
                               verbose_name=_("record"))
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                     verbose_name=_("requested by"))
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+",
                                     verbose_name=_("organisation"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PENDING)
    # The identity document seen: its kind and the last characters of its number, never the
    # whole number (enough to recognise the document again, not to copy it).
    identity_document = models.CharField(_("identity document"), max_length=20, choices=IdentityDocument.choices)
    identity_document_end = models.CharField(_("end of the document's number"), max_length=3)
    # The policy's standing when the request was made (the rule of its decision).
    rule = models.CharField(_("rule"), max_length=60)
    # Presence: a code sent to the account's current phone or e-mail, read back by the person.
    presence_channel = models.CharField(_("presence code sent to"), max_length=8, blank=True)  # "phone"/"email"
    presence_code_hash = models.CharField(max_length=64, blank=True)
    presence_confirmed_at = models.DateTimeField(_("presence confirmed at"), null=True, blank=True)
    # The new contact details, applied only once the code sent to them is read back.
    new_phone = models.CharField(_("new mobile phone"), max_length=20, blank=True)
    new_email = models.EmailField(_("new e-mail address"), blank=True)
    contact_code_hash = models.CharField(max_length=64, blank=True)
    contact_confirmed_at = models.DateTimeField(_("new contact confirmed at"), null=True, blank=True)
    # A second agent of the same organisation, when the person cannot prove presence by code or
    # an account without any channel gets its first one.
    approval_required = models.BooleanField(_("approval required"), default=False)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+", verbose_name=_("approved by"))
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    wrong_codes = models.PositiveSmallIntegerField(_("wrong codes"), default=0)
    codes_sent = models.PositiveSmallIntegerField(_("codes sent"), default=0)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("counter reset")
        verbose_name_plural = _("counter resets")
        ordering = ["-created_at", "-pk"]
        constraints = [
            # The four-eyes rule in the database too: nobody approves their own request.
            models.CheckConstraint(condition=~Q(approved_by=models.F("requested_by")),
                                   name="counter_reset_approver_is_another_agent"),
            models.CheckConstraint(condition=Q(approved_by__isnull=True) | Q(approval_required=True),
                                   name="counter_reset_approved_only_if_required"),
        ]

    def __str__(self) -> str:
        return f"Counter reset #{self.pk} ({self.state})"  # ids only: shown in logs

    @property
    def presence_required(self) -> bool:
        return bool(self.presence_channel)

    @property
    def contact_change(self) -> bool:
        return bool(self.new_phone or self.new_email)

    @property
    def new_contact_masked(self) -> str:
        """The new phone or e-mail as the screens show it: "••••5432", "m•••@example.org"."""
        if self.new_phone:
            return "••••" + self.new_phone[-4:]
        if self.new_email:
            local, _at, domain = self.new_email.partition("@")
            return f"{local[:1]}•••@{domain}"
        return ""

    def is_expired(self, at=None) -> bool:
        return (at or timezone.now()) >= self.expires_at

    @property
    def missing(self) -> list[str]:
        """What the reset still waits for: "presence", "contact", "approval"."""
        missing = []
        if self.presence_required and self.presence_confirmed_at is None:
            missing.append("presence")
        if self.contact_change and self.contact_confirmed_at is None:
            missing.append("contact")
        if self.approval_required and self.approved_at is None:
            missing.append("approval")
        return missing


class PostalLetter(models.Model):
    """A letter to print and post: the notice of a security event for a person without a phone
    or e-mail address. `organisation` prints it (the one that onboarded the record; the
    operator's mail room when none did)."""

    class Event(models.TextChoices):
        CREDENTIALS_RESET = "credentials_reset", _("Credentials reset")

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="letters", verbose_name=_("record"))
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="letters", verbose_name=_("printed by"))
    event = models.CharField(_("event"), max_length=40, choices=Event.choices)
    # Plain values for the template (who acted, when, where the code goes, masked); never a secret.
    context = models.JSONField(_("context"), default=dict, blank=True)
    language = models.CharField(_("language"), max_length=8)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    printed_at = models.DateTimeField(_("printed at"), null=True, blank=True)
    printed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+", verbose_name=_("printed by"))

    class Meta:
        verbose_name = _("letter to post")
        verbose_name_plural = _("letters to post")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"Letter #{self.pk} ({self.event})"
