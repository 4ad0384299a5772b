"""Login pages of our own; everything else is allauth's."""

from __future__ import annotations

import logging

from allauth.account.internal.decorators import login_stage_required
from django.contrib import messages
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.hashers import make_password
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from .forms import ReplaceTemporaryPasswordForm
from .stages import TemporaryPasswordStage

security_log = logging.getLogger("dmp.security")


@login_stage_required(stage=TemporaryPasswordStage.key, redirect_urlname="account_login")
def replace_temporary_password(request):
    stage = request._login_stage
    form = ReplaceTemporaryPasswordForm(stage.login.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        # Kept with the pending login and written by ApplyNewPasswordStage at the end.
        stage.state["password_hash"] = make_password(form.cleaned_data["new_password1"])
        return stage.exit()
    return render(request, "account/replace_temporary_password.html", {"form": form})


@never_cache
def no_code_destination(request):
    """For a patient with neither phone nor e-mail: how to get help."""
    return render(request, "account/no_code_destination.html")


def not_offered(request, *args, **kwargs):
    """allauth pages this service does not offer (self-service password reset, e-mail
    management): credentials are recovered at a counter, with an identity document."""
    raise Http404


def admin_login(request, extra_context=None):
    """Django admin logs in through the same pages (and the same second factor) as everyone."""
    if request.user.is_authenticated:
        if request.user.is_staff:
            return redirect("admin:index")
        raise PermissionDenied
    return redirect_to_login(request.GET.get("next") or reverse("admin:index"), reverse("account_login"))


def _account_to_activate(uidb64: str, token: str):
    """The account this link activates: one that never had a password (a professional created by
    two operators or by the registry import), with a valid token. None otherwise: the link is
    never a way to reset the password of an account already in use."""
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.http import urlsafe_base64_decode

    from ..models import User

    try:
        pk = int(urlsafe_base64_decode(uidb64).decode())
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        return None
    user = User.objects.filter(pk=pk, is_active=True).first()
    if user is None or user.has_usable_password() or not default_token_generator.check_token(user, token):
        return None
    return user


@never_cache
@sensitive_post_parameters()
def activate_account(request, uidb64: str, token: str):
    """A new professional chooses their password; they enrol their authenticator at first login."""
    user = _account_to_activate(uidb64, token)
    if user is None:
        return render(request, "account/activation_invalid.html", status=404)
    form = SetPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        security_log.info("account activated: user=%s", user.pk)
        messages.success(request, _("Your password is set. Log in, then set up your authenticator app."))
        return redirect("account_login")
    return render(request, "account/activate.html", {"form": form})


def admin_password_change(request, extra_context=None):
    """The admin's own password-change form would bypass allauth's (re-authentication, failed
    attempts counted): operators change their password where everyone does."""
    return redirect("account_change_password")
