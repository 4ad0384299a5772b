"""Forms of the counter portal: they parse what the agent typed; the services decide."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from dmp.bidi import DirectionalInputs
from dmp.models import Consent, LegalRepresentative, Record
from dmp.services.accounts import IdentityDocument

# Typed on a workstation shared by a counter: the browser must not offer it to the next person.
_NO_AUTOFILL = {"autocomplete": "off"}


class CredentialsResetForm(DirectionalInputs, forms.Form):
    field_order = ["identifier", "family_name", "birth_date", "identity_document", "identity_document_number",
                   "identity_checked", "channel_lost", "new_phone", "new_email"]

    identifier = forms.CharField(
        label=_("Identifier"), max_length=32, widget=forms.TextInput(attrs=_NO_AUTOFILL),
        help_text=_("The social-security number (NIR) or the provisional identifier on the person's sheet."),
    )
    family_name = forms.CharField(
        label=_("Family name"), max_length=100, widget=forms.TextInput(attrs=_NO_AUTOFILL),
        help_text=_("As written on the identity document."),
    )
    birth_date = forms.DateField(
        label=_("Date of birth"), widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date", **_NO_AUTOFILL}),
        help_text=_("As written on the identity document."),
    )
    new_phone = forms.CharField(
        label=_("New mobile phone (optional)"), max_length=20, required=False,
        widget=forms.TextInput(attrs={**_NO_AUTOFILL, "inputmode": "tel"}),
        help_text=_("If the person lost their phone or changed number: their login code will go there."),
    )
    new_email = forms.EmailField(
        label=_("New e-mail address (optional)"), required=False, widget=forms.EmailInput(attrs=_NO_AUTOFILL),
        help_text=_("Only if the person reads it themself."),
    )
    identity_document = forms.ChoiceField(label=_("Identity document seen"), choices=IdentityDocument.choices)
    identity_document_number = forms.CharField(
        label=_("Number of the identity document"), max_length=40, widget=forms.TextInput(attrs=_NO_AUTOFILL),
        help_text=_("Only its last 3 characters are kept, to recognise the document later."),
    )
    channel_lost = forms.BooleanField(
        label=_("The person no longer has the phone or e-mail of their account (lost, stolen, changed)"),
        required=False,
        help_text=_("Then no code can be sent to it: at another counter than the one that created the record, "
                    "a second agent of your organisation approves the reset."),
    )
    identity_checked = forms.BooleanField(
        label=_("I checked the person's identity document"),
        error_messages={"required": _("Check the person's identity document, then tick this box.")},
    )


class CounterCodeForm(forms.Form):
    """A code the person reads aloud from their phone or mailbox."""

    code = forms.CharField(label=_("Code read by the person"), max_length=12,
                           widget=forms.TextInput(attrs={**_NO_AUTOFILL, "inputmode": "numeric"}))


class CounterApprovalForm(forms.Form):
    seen = forms.BooleanField(
        label=_("I saw the person and their identity document myself, and they match the details above"),
        error_messages={"required": _("Approve only after seeing the person and their identity document yourself.")},
    )


# --- onboarding at a counter (issue 6) -----------------------------------------------------------


def _language_choices():
    from django.conf import settings

    return [(code, _(name)) for code, name in settings.LANGUAGES]


_YES_NO = [("yes", _("Yes")), ("no", _("No"))]


def _question(label, *, help_text=""):
    """A yes/no question with two explicit radio choices and none selected; missing, the error
    names the question."""
    return forms.TypedChoiceField(
        label=label, help_text=help_text, choices=_YES_NO, widget=forms.RadioSelect,
        coerce=lambda answer: answer == "yes", empty_value=None,
    )


class OnboardingForm(DirectionalInputs, forms.Form):
    """One page, in the order of the conversation: the three questions, identity, contacts."""

    # The three questions (DOMAIN.md §2), asked after the explanation sheet was presented. Each is
    # answered yes or no explicitly (no default): an unanswered question is an error, never a "no"
    # nobody said, and a tick cannot land on the neighbouring question.
    consented = _question(
        _("Does the person agree to the creation of their shared medical record?"),
        help_text=_("Mandatory: without this consent nothing is created."))
    break_glass_allowed = _question(
        _("Emergency access: may a health professional open the record in an emergency, without asking first?"))
    samu_allowed = _question(
        _("May the SAMU (emergency medical service, phone 15) read the record?"))
    given_by = forms.ChoiceField(
        label=_("Answers given by"),
        choices=Consent.GivenBy.choices, initial=Consent.GivenBy.PERSON,
    )
    # Identity.
    family_name = forms.CharField(label=_("Family name"), max_length=100, widget=forms.TextInput(attrs=_NO_AUTOFILL))
    given_names = forms.CharField(label=_("Given names"), max_length=150, widget=forms.TextInput(attrs=_NO_AUTOFILL))
    birth_date = forms.DateField(
        label=_("Date of birth"), widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date", **_NO_AUTOFILL}))
    # No default: the agent asks, and "not said" is stored as unspecified, never a guess.
    sex = forms.TypedChoiceField(label=_("Sex (optional)"), choices=[("", "—"), *Record.Sex.choices],
                                 required=False, empty_value=Record.Sex.OTHER)
    nir = forms.CharField(
        label=_("Social-security number (NIR, optional)"), max_length=32, required=False,
        widget=forms.TextInput(attrs=_NO_AUTOFILL),
        help_text=_("Leave empty if the person has none yet: a provisional identifier is issued at once."),
    )
    languages = forms.MultipleChoiceField(
        label=_("Languages spoken"), required=False, widget=forms.CheckboxSelectMultiple, choices=_language_choices)
    other_languages = forms.CharField(label=_("Other languages spoken"), max_length=100, required=False,
                                      widget=forms.TextInput(attrs=_NO_AUTOFILL))
    preferred_language = forms.ChoiceField(
        label=_("Preferred language"), choices=_language_choices,
        help_text=_("For the printed sheets and the notifications."))
    email = forms.EmailField(label=_("E-mail address (optional)"), required=False,
                             widget=forms.EmailInput(attrs=_NO_AUTOFILL))
    phone = forms.CharField(label=_("Mobile phone (optional)"), max_length=20, required=False,
                            widget=forms.TextInput(attrs={**_NO_AUTOFILL, "inputmode": "tel"}))
    # Person to notify in an emergency (for a minor: the legal representative, if no account).
    emergency_contact_name = forms.CharField(label=_("Person to notify in an emergency: name"), max_length=150,
                                             required=False, widget=forms.TextInput(attrs=_NO_AUTOFILL))
    emergency_contact_relation = forms.CharField(label=_("Relationship"), max_length=60, required=False,
                                                 widget=forms.TextInput(attrs=_NO_AUTOFILL))
    emergency_contact_phone = forms.CharField(label=_("Phone"), max_length=30, required=False,
                                              widget=forms.TextInput(attrs={**_NO_AUTOFILL, "inputmode": "tel"}))
    representative_username = forms.CharField(
        label=_("Legal representative's account (username, optional)"), max_length=150, required=False,
        widget=forms.TextInput(attrs=_NO_AUTOFILL),
        help_text=_("For a minor: the parent's or guardian's existing account. Without one, enter the "
                    "representative as the person to notify in an emergency."),
    )
    # Or a representative without an account: theirs is created with the record, and their own
    # credentials sheet printed next to the minor's.
    representative_create = forms.BooleanField(
        label=_("Create the legal representative's account"), required=False,
        help_text=_("For a parent or guardian who has no account yet: they get their own identifier and "
                    "password, on their own sheet."))
    representative_family_name = forms.CharField(label=_("Legal representative: family name"), max_length=100,
                                                 required=False, widget=forms.TextInput(attrs=_NO_AUTOFILL))
    representative_given_names = forms.CharField(label=_("Legal representative: given names"), max_length=150,
                                                 required=False, widget=forms.TextInput(attrs=_NO_AUTOFILL))
    representative_new_relationship = forms.ChoiceField(
        label=_("Relationship"), choices=LegalRepresentative.Relationship.choices, required=False,
        initial=LegalRepresentative.Relationship.PARENT)
    representative_email = forms.EmailField(label=_("E-mail address (optional)"), required=False,
                                            widget=forms.EmailInput(attrs=_NO_AUTOFILL))
    representative_phone = forms.CharField(label=_("Mobile phone (optional)"), max_length=20, required=False,
                                           widget=forms.TextInput(attrs={**_NO_AUTOFILL, "inputmode": "tel"}))
    different_person = forms.BooleanField(
        label=_("I checked: this is a different person from the existing record with the same name and "
                "date of birth"), required=False)

    QUESTIONS = ("consented", "break_glass_allowed", "samu_allowed")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.QUESTIONS:  # in the language of the request, naming the question
            field = self.fields[name]
            field.error_messages["required"] = _("Answer this question: %(question)s") % {"question": field.label}

    def clean_nir(self):
        from django.core.exceptions import ValidationError

        from dmp.models.record import normalise_nir, validate_nir

        nir = normalise_nir(self.cleaned_data.get("nir", ""))
        if nir:
            try:
                validate_nir(nir)
            except ValidationError as exc:
                raise forms.ValidationError(exc.messages) from exc
        return nir

    def clean(self):
        from django.utils import timezone

        data = super().clean()
        if data.get("consented") is False:
            self.add_error("consented", _("A record is created only with the person's informed consent."))
        birth = data.get("birth_date")
        if birth is not None:
            today = timezone.localdate()
            if birth > today:
                self.add_error("birth_date", _("The date of birth is in the future."))
            elif (today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))) < 18:
                if data.get("given_by") != "representative":
                    self.add_error("given_by", _("For a minor, the legal representative answers."))
                if not data.get("representative_username") and not data.get("representative_create") and not (
                        data.get("emergency_contact_name") and data.get("emergency_contact_phone")):
                    self.add_error("representative_username", _(
                        "For a minor, give the legal representative's account, or their name and phone "
                        "as the person to notify in an emergency."))
        if data.get("representative_create"):
            if data.get("representative_username"):
                self.add_error("representative_create", _(
                    "Give the legal representative's existing account or create one, not both."))
            for name in ("representative_family_name", "representative_given_names"):
                if not data.get(name):
                    self.add_error(name, _("The legal representative needs a family name and given names."))
        others = [w.strip() for w in data.get("other_languages", "").split(",") if w.strip()]
        data["languages"] = list(dict.fromkeys([*data.get("languages", []), *others]))
        return data
