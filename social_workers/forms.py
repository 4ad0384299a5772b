"""Forms of the counter portal: they parse what the agent typed; the services decide."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from dmp.services.accounts import IdentityDocument

# Typed on a workstation shared by a counter: the browser must not offer it to the next person.
_NO_AUTOFILL = {"autocomplete": "off"}


class CredentialsResetForm(forms.Form):
    field_order = ["identifier", "family_name", "birth_date", "identity_document", "identity_checked",
                   "new_phone", "new_email"]

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
    identity_checked = forms.BooleanField(
        label=_("I checked the person's identity document"),
        error_messages={"required": _("Check the person's identity document, then tick this box.")},
    )
