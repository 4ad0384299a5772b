"""The counter onboarding: the record presented in the person's language, the three questions,
identity, then the credentials sheet to print. The temporary password lives only in this
browser's session (encrypted) until the agent says the person has the sheet."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dmp import pdf
from dmp.accounts.stages import masked_code_destination
from dmp.http import portal_view
from dmp.selectors.onboarding import onboarding_duplicate
from dmp.services import InvalidInput
from dmp.services.records import NewRepresentative, record_onboard
from dmp.storage import cipher

from ..forms import OnboardingForm

SESSION_KEY = "dmp_onboarding_sheet"
LANGUAGE_CODES = [code for code, _name in settings.LANGUAGES]


def _language(request) -> str:
    code = request.GET.get("lang") or translation.get_language() or "fr"
    if code not in LANGUAGE_CODES:
        raise Http404
    return code


def _pdf(html: str, filename: str) -> HttpResponse:
    response = HttpResponse(pdf.write_pdf(html), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'  # nothing identifying
    response["Cache-Control"] = "no-store"
    return response


def _no_store(response):
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
@portal_view("counter")
def onboarding_start(request, actor):
    form = OnboardingForm(request.POST or None)
    duplicate = ""
    if form.is_valid():
        data = dict(form.cleaned_data)
        duplicate = onboarding_duplicate(actor, nir=data["nir"], family_name=data["family_name"],
                                         given_names=data["given_names"], birth_date=data["birth_date"])
        if duplicate == "nir":
            form.add_error("nir", _("A record already exists for this social-security number: nothing was "
                                    "created. If the person lost their credentials, use the counter reset."))
        elif duplicate == "identity" and not data["different_person"]:
            form.add_error("different_person", _(
                "A record already exists with the same name and date of birth. If the person lost their "
                "credentials, use the counter reset; if this is someone else, tick the box to continue."))
        else:
            for key in ("other_languages", "different_person"):
                data.pop(key)
            new = {key: data.pop(f"representative_{key}") for key in
                   ("create", "family_name", "given_names", "new_relationship", "email", "phone")}
            representative = NewRepresentative(
                family_name=new["family_name"], given_names=new["given_names"], relationship=new["new_relationship"],
                email=new["email"], phone=new["phone"]) if new["create"] else None
            try:
                record, credentials, new_account = record_onboard(
                    actor=actor, new_representative=representative, **data)
            except InvalidInput as exc:
                form.add_error(None, str(exc))
            else:
                sheet = _sheet_of(actor, credentials, record, record.holder)
                if new_account is not None:
                    # The representative's own sheet: same shape, their account, naming the minor.
                    user, representative_credentials = new_account
                    sheet["representative"] = {**_sheet_of(actor, representative_credentials, record, user),
                                               "represented": record.full_name}
                request.session[SESSION_KEY] = sheet
                return redirect("social_workers:onboarding_done")
    return _no_store(render(request, "social_workers/onboarding/start.html", {
        "form": form, "duplicate": duplicate, "sheet_languages": settings.LANGUAGES,
        "questions": [form[name] for name in form.QUESTIONS],
    }))


def _sheet_of(actor, credentials, record, user) -> dict:
    """What a credentials sheet prints, kept in the session until handed over: the password
    encrypted, never in clear."""
    return {
        "identifier": credentials.username,
        "password": cipher().encrypt(credentials.temporary_password.encode()).decode(),
        "language": record.preferred_language,
        "code_destination": masked_code_destination(user),
        "organisation": actor.counter_agent.organisation.name,
        "when": timezone.now().isoformat(),
    }


@require_GET
@portal_view("counter")
def onboarding_presentation(request, actor):
    return render(request, "social_workers/onboarding/presentation.html", {"language": _language(request)})


@require_GET
@portal_view("counter")
def onboarding_presentation_pdf(request, actor):
    language = _language(request)
    with translation.override(language):
        html = render_to_string("social_workers/pdf/presentation.html", {"language": language})
    return _pdf(html, f"record-explained-{language}.pdf")


def _sheet(request) -> dict:
    sheet = request.session.get(SESSION_KEY)
    if not sheet:
        raise Http404
    return sheet


@require_GET
@portal_view("counter")
def onboarding_done(request, actor):
    return _no_store(render(request, "social_workers/onboarding/done.html", {"sheet": _sheet(request)}))


@require_GET
@portal_view("counter")
def onboarding_credentials_pdf(request, actor):
    """The holder's sheet; `?for=representative`, the sheet of the representative whose account
    was created with the record."""
    sheet = _sheet(request)
    if request.GET.get("for") == "representative":
        sheet = sheet.get("representative") or {}
        if not sheet:
            raise Http404
    context = {
        **sheet,
        "password": cipher().decrypt(sheet["password"].encode()).decode(),
        "when": timezone.datetime.fromisoformat(sheet["when"]),
        "login_url": request.build_absolute_uri(reverse("account_login")),
    }
    with translation.override(sheet["language"]):
        html = render_to_string("social_workers/pdf/credentials.html", context)
    return _pdf(html, "credentials.pdf")


@require_POST
@portal_view("counter")
def onboarding_handed(request, actor):
    """The person has their sheet: the password is forgotten."""
    request.session.pop(SESSION_KEY, None)
    return redirect("social_workers:home")


urlpatterns = [
    path("onboard/", onboarding_start, name="onboarding_start"),
    path("onboard/presentation/", onboarding_presentation, name="onboarding_presentation"),
    path("onboard/presentation.pdf", onboarding_presentation_pdf, name="onboarding_presentation_pdf"),
    path("onboard/done/", onboarding_done, name="onboarding_done"),
    path("onboard/credentials.pdf", onboarding_credentials_pdf, name="onboarding_credentials_pdf"),
    path("onboard/handed/", onboarding_handed, name="onboarding_handed"),
]
