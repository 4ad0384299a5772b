"""The counter agents' and social workers' portal: administrative status only, never content."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from dmp.accounts.stages import masked_code_destination
from dmp.http import actor_for_portal
from dmp.selectors.counter import records_onboarded_by
from dmp.services import AccessRefused, InvalidInput, account_credentials_reset

from ..forms import CredentialsResetForm


@login_required
@require_GET
def home(request):
    actor = actor_for_portal(request, "counter")
    return render(request, "social_workers/home.html", {"rows": records_onboarded_by(actor)})


@login_required
@require_http_methods(["GET", "POST"])
def credentials_reset(request):
    """New credentials for a person who lost theirs, after the agent checked their identity
    document: the form, then the sheet to print (in the person's language)."""
    actor = actor_for_portal(request, "counter")
    form = CredentialsResetForm(request.POST or None)
    if form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "identity_checked"}
        try:
            record, credentials = account_credentials_reset(actor=actor, request=request, **data)
        except AccessRefused as exc:
            raise Http404 from exc
        except InvalidInput as exc:
            form.add_error(None, str(exc))
        else:
            response = render(request, "social_workers/credentials_sheet.html", {
                "credentials": credentials, "language": record.preferred_language,
                "code_destination": masked_code_destination(record.holder),
                "organisation": actor.counter_agent.organisation.name, "when": timezone.now(),
            })
            response["Cache-Control"] = "no-store"  # the password is shown once and kept nowhere
            return response
    response = render(request, "social_workers/credentials_reset.html", {"form": form})
    response["Cache-Control"] = "no-store"  # what was typed is personal data
    return response


urlpatterns = [
    path("", home, name="home"),
    path("credentials/reset/", credentials_reset, name="credentials_reset"),
]
