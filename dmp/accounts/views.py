"""Login pages of our own; everything else is allauth's."""

from __future__ import annotations

from allauth.account.internal.decorators import login_stage_required
from django.contrib.auth.hashers import make_password
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from .forms import ReplaceTemporaryPasswordForm
from .stages import TemporaryPasswordStage


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
