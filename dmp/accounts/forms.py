from __future__ import annotations

from allauth.account.adapter import get_adapter
from allauth.account.forms import ChangePasswordForm as AllauthChangePasswordForm
from allauth.account.forms import LoginForm as AllauthLoginForm
from django import forms
from django.contrib.auth.forms import SetPasswordForm
from django.utils.translation import gettext_lazy as _


class ReplaceTemporaryPasswordForm(SetPasswordForm):
    """The person's own password, in place of the temporary one printed for them."""

    def clean_new_password1(self):
        password = self.cleaned_data.get("new_password1")
        if password and self.user.check_password(password):
            raise forms.ValidationError(
                _("Choose a new password: not the temporary one on your sheet."), code="password_unchanged"
            )
        return password


class LoginForm(AllauthLoginForm):
    """allauth's login form without its "forgot your password?" link: credentials are
    recovered at a counter (the login page says so)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password"].help_text = ""
        self.fields["login"].label = _("Identifier")
        self.fields["login"].help_text = _("As printed on your sheet (for patients) or your account name.")
        self.fields.pop("remember", None)


class ChangePasswordForm(AllauthChangePasswordForm):
    """allauth's password change, with the current password checked the way a login checks
    it: a wrong one is counted (per account and address, and towards the account's ceiling),
    and while this address's delay runs it is not checked at all. Otherwise a stolen session
    could guess the password at full speed, then change it."""

    def clean_oldpassword(self) -> str:
        password = self.cleaned_data.get("oldpassword", "")
        if not get_adapter().reauthenticate(self.user, password):
            raise get_adapter().validation_error("enter_current_password")
        return password
