"""Forms of the "My information" screen (portal_patient/views/information.py). They parse what
was typed; the services in dmp/services/personal.py check it and decide."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from dmp.bidi import DirectionalInputs
from dmp.models import PersonalProfile, SelfDeclaredItem
from dmp.selectors.personal import language_name
from dmp.services.personal import DIRECTIVE_QUESTIONS, DirectiveChoice

_DATE = forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})


def _language_choices():
    return [(code, language_name(code)) for code, _name in settings.LANGUAGES]


class ContactForm(DirectionalInputs, forms.Form):
    email = forms.EmailField(
        label=_("E-mail address"), required=False, max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    phone = forms.CharField(
        label=_("Mobile phone"), required=False, max_length=30,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"}),
        help_text=_("A French mobile (06…, 07…) or a number with its country code, e.g. +33 6 12 34 56 78."),
    )
    postal_address = forms.CharField(
        label=_("Postal address"), required=False, max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "street-address"}),
        help_text=_("Where letters about your record can reach you, if you want to receive them by post."),
    )
    preferred_language = forms.ChoiceField(
        label=_("Preferred language"), choices=_language_choices,
        help_text=_("The language of the messages you receive and of the documents written for you."),
    )
    languages = forms.MultipleChoiceField(
        label=_("Languages you speak"), required=False, choices=_language_choices,
        widget=forms.CheckboxSelectMultiple,
    )
    other_languages = forms.CharField(
        label=_("Other languages you speak"), required=False, max_length=200,
        help_text=_("Separated by commas, e.g. Dari, Tigrinya."),
    )

    @classmethod
    def initial_for(cls, record, info) -> dict:
        offered = {code for code, _name in settings.LANGUAGES}
        return {
            "email": info.contact_email, "phone": info.contact_phone, "postal_address": record.postal_address,
            "preferred_language": record.preferred_language,
            "languages": [code for code in record.languages if code in offered],
            "other_languages": ", ".join(code for code in record.languages if code not in offered),
        }

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        others = [name.strip() for name in data["other_languages"].split(",")]
        return {
            "email": data["email"], "phone": data["phone"], "postal_address": data["postal_address"],
            "preferred_language": data["preferred_language"],
            "languages": [*data["languages"], *filter(None, others)],
        }


class EmergencyContactForm(DirectionalInputs, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=150)
    relation = forms.CharField(label=_("Relationship"), max_length=60, required=False,
                               help_text=_("For example: daughter, neighbour, friend."))
    phone = forms.CharField(label=_("Phone"), max_length=30, widget=forms.TextInput(attrs={"inputmode": "tel"}))


class TrustedPersonForm(DirectionalInputs, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=150, required=False)
    relation = forms.CharField(label=_("Relationship"), max_length=60, required=False)
    phone = forms.CharField(label=_("Phone"), max_length=30, required=False,
                            widget=forms.TextInput(attrs={"inputmode": "tel"}))

    @classmethod
    def initial_for(cls, profile: PersonalProfile) -> dict:
        return {"name": profile.trusted_person_name, "relation": profile.trusted_person_relation,
                "phone": profile.trusted_person_phone}


class AdvanceDirectivesForm(DirectionalInputs, forms.Form):
    """The guided form: one field per question of DIRECTIVE_QUESTIONS (and its details), then
    the confirmation that these are the person's wishes."""

    def __init__(self, *args, acting_as_representative: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for question in DIRECTIVE_QUESTIONS:
            if question.choice:
                self.fields[question.key] = forms.ChoiceField(
                    label=question.title, help_text=question.question, required=False,
                    choices=[("", _("I do not answer this question")), *DirectiveChoice.choices],
                    widget=forms.RadioSelect,
                )
                self.fields[f"{question.key}_details"] = forms.CharField(
                    label=_("In which situations, and why (optional)"), required=False, max_length=2000,
                    widget=forms.Textarea(attrs={"rows": 2}),
                )
            else:
                limit = 150 if question.key == "trusted_person" else 2000
                widget = forms.TextInput() if question.key == "trusted_person" else forms.Textarea(attrs={"rows": 3})
                self.fields[question.key] = forms.CharField(
                    label=question.title, help_text=question.question, required=False, max_length=limit,
                    widget=widget,
                )
        self.fields["confirmed"] = forms.BooleanField(
            label=(_("I confirm that these are the patient's wishes, as they expressed them")
                   if acting_as_representative else _("I confirm that these are my wishes")),
            error_messages={"required": _("Read your answers again, then tick the box to confirm them.")},
        )

    def questions(self):
        """(question, choice field, details field) for the template, in order."""
        for question in DIRECTIVE_QUESTIONS:
            details = self[f"{question.key}_details"] if question.choice else None
            yield question, self[question.key], details

    def answers(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if k != "confirmed"}


class DirectivesUploadForm(forms.Form):
    file = forms.FileField(
        label=_("File"), help_text=_("A PDF, or a photo (JPEG or PNG) of each signed page."),
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,image/jpeg,image/png"}),
    )
    signed_on = forms.DateField(label=_("Date written on the directives"), widget=_DATE)
    title = forms.CharField(label=_("Title (optional)"), required=False, max_length=200)


class OrganDonationForm(forms.Form):
    statement = forms.ChoiceField(
        label=_("My statement"), choices=PersonalProfile.OrganDonation.choices, widget=forms.RadioSelect,
    )


class BloodGroupForm(forms.Form):
    blood_group = forms.ChoiceField(
        label=_("Blood group"), choices=PersonalProfile.BloodGroup.choices, required=False,
        help_text=_("As written on your blood group card."),
    )


class VaccinationForm(forms.Form):
    vaccine = forms.CharField(label=_("Vaccine"), max_length=120,
                              help_text=_("As written in your vaccination booklet, e.g. tetanus, flu."))
    date = forms.DateField(label=_("Date"), widget=_DATE)
    batch = forms.CharField(label=_("Batch number (optional)"), max_length=40, required=False)


class SelfDeclaredForm(forms.Form):
    kind = forms.ChoiceField(label=_("What is it?"), choices=SelfDeclaredItem.Kind.choices)
    label = forms.CharField(label=_("Description"), max_length=200,
                            help_text=_("For example: penicillin (hives), asthma, appendix removed."))
    year = forms.IntegerField(label=_("Year (optional)"), required=False, min_value=1900, max_value=2100)


class NotesForm(forms.Form):
    notes = forms.CharField(label=_("Personal notes"), required=False, max_length=5000,
                            widget=forms.Textarea(attrs={"rows": 8}))
