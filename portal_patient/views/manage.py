"""The patient's management screen (DOMAIN.md §3 "patient management", §4): the médecin traitant,
who has access to the record and how, granting, revoking and blocking, the two emergency
choices, notification channels, and closing the record. Every change is one POST to one
service, which asks the policy (Action.MANAGE_ACCESS, BLOCK_PROFESSIONAL, CLOSE_RECORD)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dmp import services
from dmp.forms import FindProfessionalForm
from dmp.http import record_view
from dmp.models.people import Profession, validate_rpps
from dmp.selectors import (
    offers_what_representatives_see,
    professional_by_rpps,
    professional_with_standing,
    professionals_matching,
    record_access_overview,
)
from dmp.services.records import RETENTION_YEARS, record_destruction_date

from ._common import render_record_page

TEMPLATE = "portal_patient/manage/manage.html"


class ProfessionalForm(forms.Form):
    """A professional, either picked on the page (one with a standing on this record) or
    found by their exact RPPS number. Nothing else: the directory cannot be browsed here."""

    professional = forms.IntegerField(required=False, min_value=1)
    rpps = forms.CharField(required=False, max_length=20, label=gettext_lazy("RPPS number"))

    def __init__(self, *args, actor, record, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.actor, self.record = actor, record

    def clean(self):
        data = super().clean()
        rpps = "".join((data.get("rpps") or "").split())
        if rpps:
            try:
                validate_rpps(rpps)
            except ValidationError as error:
                self.add_error("rpps", error)
                return data
            data["found"] = professional_by_rpps(rpps)
            if data["found"] is None:
                self.add_error("rpps", _("No health professional has this RPPS number. Check it with them."))
        elif data.get("professional"):
            data["found"] = professional_with_standing(self.actor, self.record, data["professional"])
            if data["found"] is None:
                raise ValidationError(_("Choose a professional from the list."))
        elif not self.has_error("professional"):
            raise ValidationError(_("Type the professional's RPPS number (11 digits) or choose them from the list."))
        return data


# Where a professional found by name can be taken: the action it submits (the RPPS number of the
# one chosen, as the RPPS form would), the section of the page it belongs to, and, for the
# médecin traitant, the profession the search starts with.
FIND_PURPOSES = {
    "designate": ("portal_patient:treating_doctor_designate", "treating-doctor", Profession.GP),
    "grant": ("portal_patient:care_authorisation_grant", "access", ""),
    "block": ("portal_patient:professional_block", "blocked", ""),
}


_CHOICE = (("yes", gettext_lazy("Allowed")), ("no", gettext_lazy("Refused")))


class EmergencyForm(forms.Form):
    break_glass = forms.TypedChoiceField(choices=_CHOICE, coerce=lambda v: v == "yes", widget=forms.RadioSelect)
    samu = forms.TypedChoiceField(choices=_CHOICE, coerce=lambda v: v == "yes", widget=forms.RadioSelect)


class NotificationsForm(forms.Form):
    by_email = forms.BooleanField(required=False)
    by_sms = forms.BooleanField(required=False)
    every_access = forms.BooleanField(required=False)


class RepresentativesNotifiedForm(forms.Form):
    notified = forms.BooleanField(required=False)


class CloseForm(forms.Form):
    confirm = forms.BooleanField(
        error_messages={"required": gettext_lazy("Tick the box to confirm that you want to close the record.")}
    )


def _manage_page(request, actor, record, *, bound: dict | None = None, finds: dict | None = None,
                 status: int = 200):
    """The management page; `bound` holds a submitted form shown again with its errors, `finds`
    a search of the professionals by name and what it found, under its own section."""
    forms_ = {name: ProfessionalForm(actor=actor, record=record) for name in ("designate", "grant", "block")}
    forms_.update(bound or {})
    finds_ = {
        purpose: {"form": FindProfessionalForm(prefix=purpose, initial={"profession": profession}),
                  "action": action, "anchor": anchor}
        for purpose, (action, anchor, profession) in FIND_PURPOSES.items()
    }
    for purpose, find in (finds or {}).items():
        finds_[purpose].update(find)
    overview = record_access_overview(actor, record)
    holder = record.holder
    return render_record_page(request, TEMPLATE, actor, record, {
        "overview": overview,
        "forms": forms_,
        "finds": finds_,
        # Where notifications go: the holder's account (dmp/notifications.py), else the record's.
        "contact_email": holder.email if holder else record.email,
        "contact_phone": holder.phone if holder else record.phone,
        # The patient's own choice of what their legal representatives hear of (never a parent's).
        "chooses_for_representatives": offers_what_representatives_see(actor, record),
        "break_glass_hours": settings.BREAK_GLASS_DURATION_HOURS,
        "retention_years": RETENTION_YEARS,
    }, section="manage", status=status)


def _done(request, record, anchor: str, message: str):
    messages.success(request, message)
    return redirect(reverse("portal_patient:manage", args=[record.pk]) + f"#{anchor}")


@require_GET
@record_view("patient")
def manage(request, actor, rec):
    return _manage_page(request, actor, rec)


def _professional_action(request, actor, rec, form_name: str, anchor: str, act):
    """Shared shape of the POSTs about one professional: parse the choice, call one service
    (`act(actor, record, professional)` returns the message to show), render the errors."""
    form = ProfessionalForm(request.POST, actor=actor, record=rec)
    if form.is_valid():
        try:
            return _done(request, rec, anchor, act(actor, rec, form.cleaned_data["found"]))
        except services.InvalidInput as error:
            form.add_error(None, str(error))
    return _manage_page(request, actor, rec, bound={form_name: form}, status=400)


@require_POST
@record_view("patient")
def professional_find(request, actor, rec, purpose: str):
    """Find a professional by name (or RPPS number), profession and town, to designate, give
    access to or block: the page comes back with the professionals found, each with a button
    that submits that action for them. Nothing is changed here."""
    if purpose not in FIND_PURPOSES:
        raise Http404
    form = FindProfessionalForm(request.POST, prefix=purpose)
    if not form.is_valid():
        return _manage_page(request, actor, rec, finds={purpose: {"form": form}}, status=400)
    data = form.cleaned_data
    search = professionals_matching(actor, rec, data["name"], profession=data["profession"], town=data["town"])
    return _manage_page(request, actor, rec, finds={purpose: {"form": form, "search": search}},
                        status=429 if search.limited else 200)


def _name(professional) -> str:
    return professional.user.get_full_name() or professional.user.username


@require_POST
@record_view("patient")
def treating_doctor_designate(request, actor, rec):
    def act(actor, record, professional):
        services.treating_doctor_designate(actor=actor, record=record, professional=professional)
        return _("%(name)s is now the médecin traitant in this record.") % {"name": _name(professional)}

    return _professional_action(request, actor, rec, "designate", "treating-doctor", act)


@require_POST
@record_view("patient")
def care_authorisation_grant(request, actor, rec):
    def act(actor, record, professional):
        services.care_authorisation_grant(actor=actor, record=record, professional=professional)
        return _("%(name)s can now see this record and add documents to it.") % {"name": _name(professional)}

    return _professional_action(request, actor, rec, "grant", "access", act)


@require_POST
@record_view("patient")
def care_authorisation_revoke(request, actor, rec):
    def act(actor, record, professional):
        services.care_authorisation_revoke(actor=actor, record=record, professional=professional)
        return _("%(name)s can no longer see this record.") % {"name": _name(professional)}

    return _professional_action(request, actor, rec, "revoke", "access", act)


@require_POST
@record_view("patient")
def professional_block(request, actor, rec):
    def act(actor, record, professional):
        services.professional_block(actor=actor, record=record, professional=professional)
        return _("%(name)s is blocked: they cannot open this record at all, not even in an emergency.") % {
            "name": _name(professional)}

    return _professional_action(request, actor, rec, "block", "blocked", act)


@require_POST
@record_view("patient")
def professional_unblock(request, actor, rec):
    def act(actor, record, professional):
        services.professional_unblock(actor=actor, record=record, professional=professional)
        return _("%(name)s is no longer blocked.") % {"name": _name(professional)}

    return _professional_action(request, actor, rec, "unblock", "blocked", act)


def _record_action(request, actor, rec, form_class, form_name: str, anchor: str, act):
    """Shared shape of the other POSTs: parse a form, call one service, say it worked."""
    form = form_class(request.POST)
    if form.is_valid():
        try:
            return _done(request, rec, anchor, act(actor, rec, form.cleaned_data))
        except services.InvalidInput as error:
            form.add_error(None, str(error))
    return _manage_page(request, actor, rec, bound={form_name: form}, status=400)


class _EndForm(forms.Form):
    """No field: the action is the whole request."""


@require_POST
@record_view("patient")
def treating_doctor_end(request, actor, rec):
    def act(actor, record, data):
        services.treating_doctor_end(actor=actor, record=record)
        return _("This record no longer has a médecin traitant.")

    return _record_action(request, actor, rec, _EndForm, "end", "treating-doctor", act)


class DepositRightForm(forms.Form):
    deposit_right = forms.IntegerField(min_value=1)


@require_POST
@record_view("patient")
def deposit_right_withdraw(request, actor, rec):
    def act(actor, record, data):
        right = services.deposit_right_withdraw(actor=actor, record=record, deposit_right_id=data["deposit_right"])
        return _("%(organisation)s can no longer add papers to this record.") % {
            "organisation": right.agent.organisation.name}

    return _record_action(request, actor, rec, DepositRightForm, "withdraw", "counter", act)


@require_POST
@record_view("patient")
def emergency_access(request, actor, rec):
    def act(actor, record, data):
        services.record_emergency_access_set(
            actor=actor, record=record, break_glass_allowed=data["break_glass"], samu_allowed=data["samu"]
        )
        return _("Your emergency access choices are saved.")

    return _record_action(request, actor, rec, EmergencyForm, "emergency", "emergency", act)


@require_POST
@record_view("patient")
def notifications(request, actor, rec):
    def act(actor, record, data):
        services.record_notifications_set(
            actor=actor, record=record, by_email=data["by_email"], by_sms=data["by_sms"],
            every_access=data["every_access"],
        )
        return _("Your notification choices are saved.")

    return _record_action(request, actor, rec, NotificationsForm, "notifications", "notifications", act)


@require_POST
@record_view("patient")
def representatives_notified(request, actor, rec):
    def act(actor, record, data):
        services.record_representatives_notified_set(actor=actor, record=record, notified=data["notified"])
        if data["notified"]:
            return _("Your legal representatives are told of first accesses and new documents.")
        return _("Your legal representatives are told only of emergency accesses.")

    return _record_action(request, actor, rec, RepresentativesNotifiedForm, "representatives", "notifications", act)


@require_http_methods(["GET", "POST"])
@record_view("patient")
def close(request, actor, rec):
    """Explain what closing means, then close once the box is ticked. The record is no
    longer readable afterwards, by anyone: the answer is rendered here, not redirected to it."""
    form = CloseForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        closed = services.record_close(actor=actor, record=rec)
        return render(request, "portal_patient/manage/closed.html", {
            "record": closed, "destroyed_on": record_destruction_date(closed), "retention_years": RETENTION_YEARS,
        })
    return render_record_page(request, "portal_patient/manage/close.html", actor, rec, {
        "form": form, "retention_years": RETENTION_YEARS,
    }, section="manage", status=400 if request.method == "POST" else 200)


urlpatterns = [
    path("records/<int:pk>/manage/", manage, name="manage"),
    path("records/<int:pk>/manage/treating-doctor/", treating_doctor_designate, name="treating_doctor_designate"),
    path("records/<int:pk>/manage/treating-doctor/end/", treating_doctor_end, name="treating_doctor_end"),
    path("records/<int:pk>/manage/grant/", care_authorisation_grant, name="care_authorisation_grant"),
    path("records/<int:pk>/manage/revoke/", care_authorisation_revoke, name="care_authorisation_revoke"),
    path("records/<int:pk>/manage/block/", professional_block, name="professional_block"),
    path("records/<int:pk>/manage/find/<slug:purpose>/", professional_find, name="professional_find"),
    path("records/<int:pk>/manage/unblock/", professional_unblock, name="professional_unblock"),
    path("records/<int:pk>/manage/deposit-rights/withdraw/", deposit_right_withdraw, name="deposit_right_withdraw"),
    path("records/<int:pk>/manage/emergency/", emergency_access, name="emergency_access"),
    path("records/<int:pk>/manage/notifications/", notifications, name="notifications"),
    path("records/<int:pk>/manage/notifications/representatives/", representatives_notified,
         name="representatives_notified"),
    path("records/<int:pk>/manage/close/", close, name="close"),
]
