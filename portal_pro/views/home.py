"""The professional's home: their patients, finding a patient, opening a record (DOMAIN.md §4:
with a care authorisation, by declaring that the patient agrees, in an emergency, as the SAMU
regulator).

Searches are POSTed: an identifier, a name and a date of birth are personal data and stay out
of URLs and logs. The answer says only whether a record exists and how this professional may
open it; opening asks the services, which ask the policy and log the opening."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dmp import services
from dmp.http import portal_view
from dmp.models.record import normalise_nir, validate_nir
from dmp.paging import page_number, page_of, page_urls
from dmp.policy import Action
from dmp.selectors import records_followed_by
from dmp.selectors.clinician import (
    PROVISIONAL_ID_RE,
    opening_options,
    opening_options_for,
    record_for_opening,
    record_lookup,
)


class RecordSearchForm(forms.Form):
    """By NIR (with its key) or provisional identifier, or by family name, given name and date of birth."""

    identifier = forms.CharField(label=_("NIR or provisional identifier"), required=False, max_length=30)
    family_name = forms.CharField(label=_("Family name"), required=False, max_length=100)
    given_names = forms.CharField(label=_("Given name"), required=False, max_length=150)
    birth_date = forms.DateField(label=_("Date of birth"), required=False,
                                 widget=forms.DateInput(attrs={"type": "date"}))

    def clean_identifier(self) -> str:
        value = normalise_nir(self.cleaned_data["identifier"])
        if value and not PROVISIONAL_ID_RE.match(value):
            validate_nir(value)
        return value

    def clean(self):
        data = super().clean()
        if self.errors or data.get("identifier"):
            return data
        if not (data.get("family_name", "").strip() and data.get("given_names", "").strip() and data.get("birth_date")):
            raise ValidationError(
                _("Type a NIR or a provisional identifier, or the family name, the given name and the date of birth.")
            )
        return data


class DeclareCareForm(forms.Form):
    patient_agrees = forms.BooleanField(
        label=_("I am seeing this patient in consultation and the patient agrees that I open their record."),
        error_messages={"required": _("Tick the box to declare that the patient agrees.")},
    )
    share_with_facility = forms.BooleanField(required=False)


class BreakGlassForm(forms.Form):
    family_name = forms.CharField(label=_("Family name"), max_length=100)
    given_names = forms.CharField(label=_("Given name"), max_length=150)
    birth_date = forms.DateField(label=_("Date of birth"), widget=forms.DateInput(attrs={"type": "date"}))
    justification = forms.CharField(label=_("Why the patient's state is an immediate risk"), max_length=2000,
                                    widget=forms.Textarea(attrs={"rows": 3}))
    emergency = forms.BooleanField(
        label=_("Emergency: the patient's state is an immediate risk and they cannot agree."),
        error_messages={"required": _("Tick the emergency box to open the record in emergency.")},
    )


def _home_page(request, actor, *, form=None, lookup=None, status: int = 200):
    # A médecin traitant may follow thousands of patients: a page of them at a time.
    patients = page_of(records_followed_by(actor), page_number(request.GET.get("page")))
    return render(request, "portal_pro/home.html", {
        "records": patients.object_list, "page": patients,
        "page_urls": page_urls(reverse("portal_pro:home"), patients),
        "form": form or RecordSearchForm(),
        "lookup": lookup,
    }, status=status)


@require_GET
@portal_view("pro")
def home(request, actor):
    """My patients, and the search form."""
    return _home_page(request, actor)


@require_POST
@portal_view("pro")
def search(request, actor):
    """Find a record: the answer is rendered by the POST itself, so nothing typed reaches a URL."""
    form = RecordSearchForm(request.POST)
    if not form.is_valid():
        return _home_page(request, actor, form=form, status=400)
    data = form.cleaned_data
    lookup = record_lookup(actor, identifier=data["identifier"], family_name=data["family_name"],
                           given_names=data["given_names"], birth_date=data["birth_date"])
    return _home_page(request, actor, form=form, lookup=lookup, status=429 if lookup.limited else 200)


@require_GET
@portal_view("pro")
def open_record(request, actor, pk: int):
    """How this professional may open record `pk` now (nothing about the patient)."""
    return render(request, "portal_pro/open/options.html", {"options": opening_options_for(actor, pk)})


@require_POST
@portal_view("pro")
def declare_care(request, actor, pk: int):
    """"The patient agrees", declared at a consultation; shared with the facility's care team if asked."""
    record = record_for_opening(actor, pk, Action.DECLARE_CARE)
    form = DeclareCareForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            services.care_authorisation_declare(actor=actor, record=record,
                                                share_with_facility=form.cleaned_data["share_with_facility"])
        except services.InvalidInput as exc:
            error = str(exc)
        else:
            return redirect("portal_pro:record", pk=record.pk)
    return render(request, "portal_pro/open/options.html", {
        "options": opening_options(actor, record), "declare_form": form, "declare_error": error,
    }, status=400)


@require_http_methods(["GET", "POST"])
@portal_view("pro")
def break_glass(request, actor, pk: int):
    """Emergency access: the patient's identity typed again, a justification, the emergency box."""
    record = record_for_opening(actor, pk, Action.BREAK_GLASS)
    form = BreakGlassForm(request.POST if request.method == "POST" else None)
    error = ""
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.break_glass_open(
                actor=actor, record=record, family_name=data["family_name"], given_names=data["given_names"],
                birth_date=data["birth_date"], justification=data["justification"], emergency=data["emergency"],
            )
        except services.InvalidInput as exc:
            error = str(exc)
        else:
            return redirect("portal_pro:record", pk=record.pk)
    return render(request, "portal_pro/open/break_glass.html", {
        "record_pk": record.pk, "form": form, "error": error,
    }, status=400 if request.method == "POST" else 200)


urlpatterns = [
    path("", home, name="home"),
    path("search/", search, name="search"),
    path("records/<int:pk>/open/", open_record, name="open"),
    path("records/<int:pk>/declare-care/", declare_care, name="declare_care"),
    path("records/<int:pk>/emergency/", break_glass, name="break_glass"),
]
