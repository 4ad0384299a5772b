"""The counter agents' and social workers' portal: administrative status only, never content.

Credentials recovery happens in steps (docs/security.md ("Credentials recovery at a counter")): the agent types what
the identity document says; the reset then either takes effect at once (the organisation that
onboarded the person, nothing else changed) or waits on its own page for the codes the person
reads back and, when the policy asks for it, a second agent's approval."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from dmp.accounts.stages import masked_code_destination
from dmp.http import portal_view
from dmp.selectors.counter import (
    counter_reset_for,
    counter_reset_for_approval,
    counter_resets_awaiting_approval,
    records_onboarded_page,
)
from dmp.services import AccessRefused, InvalidInput, account_credentials_reset
from dmp.services.accounts import (
    ResetOutcome,
    counter_reset_approve,
    counter_reset_cancel,
    counter_reset_confirm_code,
    counter_reset_finish,
    counter_reset_send_again,
)

from ..forms import CounterApprovalForm, CounterCodeForm, CredentialsResetForm


def _no_store(response):
    response["Cache-Control"] = "no-store"  # names, typed details, a password shown once
    return response


@require_GET
@portal_view("counter")
def home(request, actor):
    latest = records_onboarded_page(actor)  # the newest page; the dashboard pages and searches the rest
    return _no_store(render(request, "social_workers/home.html", {
        "rows": latest.object_list, "more": latest.has_next(),
        "to_approve": counter_resets_awaiting_approval(actor),
    }))


def sheet_response(request, actor, record, credentials):
    """The sheet to print, in the person's language: the password is shown once, kept nowhere."""
    return _no_store(render(request, "social_workers/credentials_sheet.html", {
        "credentials": credentials, "language": record.preferred_language,
        "code_destination": masked_code_destination(record.holder),
        "organisation": actor.counter_agent.organisation.name, "when": timezone.now(),
    }))


def outcome_response(request, actor, outcome: ResetOutcome):
    """After a step: the sheet once the reset took effect, else the request's own page."""
    if outcome.credentials is not None:
        return sheet_response(request, actor, outcome.record, outcome.credentials)
    if outcome.codes_not_sent:
        messages.error(request, _("A code could not be sent. Try \"Send the codes again\" in a minute."))
    return redirect("social_workers:counter_reset", pk=outcome.reset.pk)


def start_reset(request, actor, form: CredentialsResetForm, identifier: str | None = None):
    """The first step, shared by the reset page and the dashboard's reprint: None when the form
    has errors to show (added to it)."""
    values = {k: v for k, v in form.cleaned_data.items() if k != "identity_checked"}
    if identifier is not None:
        values["identifier"] = identifier
    try:
        outcome = account_credentials_reset(actor=actor, request=request, **values)
    except InvalidInput as exc:
        form.add_error(None, str(exc))
        return None
    return outcome_response(request, actor, outcome)


def reset_form_page(request, actor, *, record=None):
    """The first page of new credentials: the counter reset, or with `record` the dashboard's
    reprint (the same identity check, the identifier fixed to this record's)."""
    initial = {"identifier": record.identifier} if record is not None else None
    form = CredentialsResetForm(request.POST or None, initial=initial)
    if record is not None:
        form.fields["identifier"].disabled = True
    if form.is_valid():
        response = start_reset(request, actor, form, identifier=record.identifier if record is not None else None)
        if response is not None:
            return response
    return _no_store(render(request, "social_workers/credentials_reset.html", {"form": form, "record": record}))


@require_http_methods(["GET", "POST"])
@portal_view("counter")
def credentials_reset(request, actor):
    """New credentials for a person who lost theirs, after the agent checked their identity
    document: the form, then the sheet to print or the request's page."""
    return reset_form_page(request, actor)


STEPS = ("presence", "contact", "send_again", "finish", "cancel")


@require_http_methods(["GET", "POST"])
@portal_view("counter")
def counter_reset(request, actor, pk):
    """A request waiting for its proofs, for the agent who made it: what is missing, a box for
    each code the person reads aloud, and the sheet once everything is in."""
    reset = counter_reset_for(actor, pk)
    code_form = CounterCodeForm(request.POST if request.method == "POST" else None)
    step = request.POST.get("step", "")
    if request.method == "POST":
        if step not in STEPS:
            return redirect("social_workers:counter_reset", pk=reset.pk)
        try:
            if step == "cancel":
                counter_reset_cancel(actor=actor, reset=reset)
                messages.info(request, _("The request is cancelled: nothing was changed on the account."))
                return redirect("social_workers:home")
            if step == "send_again":
                return outcome_response(request, actor, counter_reset_send_again(actor=actor, reset=reset))
            if step == "finish":
                return outcome_response(request, actor, counter_reset_finish(actor=actor, reset=reset,
                                                                             request=request))
            if code_form.is_valid():
                outcome = counter_reset_confirm_code(actor=actor, reset=reset, purpose=step,
                                                     code=code_form.cleaned_data["code"], request=request)
                return outcome_response(request, actor, outcome)
        except InvalidInput as exc:
            code_form.add_error(None, str(exc))
        reset.refresh_from_db()
    holder = reset.record.holder
    return _no_store(render(request, "social_workers/counter_reset.html", {
        "reset": reset, "missing": reset.missing, "expired": reset.is_expired(), "code_form": code_form,
        "step": step, "presence_destination": masked_code_destination(holder) if reset.presence_required else "",
        "contact_destination": reset.new_contact_masked,
    }, status=400 if code_form.errors else 200))


@require_http_methods(["GET", "POST"])
@portal_view("counter")
def counter_reset_approval(request, actor, pk):
    """A second agent of the organisation approves a request after seeing the person and their
    identity document: the details to compare, a box to tick. The agent who asked is refused."""
    reset = counter_reset_for_approval(actor, pk)
    form = CounterApprovalForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            outcome = counter_reset_approve(actor=actor, reset=reset)
        except AccessRefused as exc:
            form.add_error(None, str(exc.decision.reason))
            status = 403
        else:
            if outcome.codes_not_sent:
                messages.error(request, _("Approved, but the code could not be sent to the new phone or e-mail: "
                                          "the agent who asked can send it again."))
            else:
                messages.success(request, _("Approved. The agent who asked continues on their screen."))
            return redirect("social_workers:home")
    elif form.errors:
        status = 400
    return _no_store(render(request, "social_workers/counter_reset_approval.html", {
        "reset": reset, "form": form, "contact_destination": reset.new_contact_masked,
        "own": reset.requested_by_id == request.user.pk,
    }, status=status))


urlpatterns = [
    path("", home, name="home"),
    path("credentials/reset/", credentials_reset, name="credentials_reset"),
    path("credentials/reset/<int:pk>/", counter_reset, name="counter_reset"),
    path("credentials/reset/<int:pk>/approve/", counter_reset_approval, name="counter_reset_approval"),
]
