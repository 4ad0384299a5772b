"""Home page, the words explained, error pages and the language switch. Error pages say nothing about records: 403
and 404 are the same page, whatever the cause."""

from __future__ import annotations

import sys

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseBadRequest, HttpResponseRedirect, HttpResponseServerError
from django.shortcuts import redirect, render
from django.template import loader
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from .glossary import WORDS
from .policy import PORTALS, Actor, portal_allowed
from .services import InvalidInput, InvalidInputCode, account_language_set
from .unavailable import unavailable_cause, unavailable_response

_PORTAL_HOMES = {"patient": "portal_patient:home", "pro": "portal_pro:home", "counter": "social_workers:home"}


@require_GET
def home(request):
    """Send a logged-in account to the first portal the policy lets it enter."""
    actor = Actor.from_request(request)
    for portal in PORTALS:
        if portal_allowed(actor, portal):
            return redirect(_PORTAL_HOMES[portal])
    return render(request, "home.html")


@require_GET
def words(request):
    """The words of the record explained, in the reader's language, each with the French word
    the person will hear at the doctor's or the counter (dmp/glossary.py). Open to everyone:
    it says nothing about anyone."""
    current = translation.get_language()
    with translation.override("fr"):
        french = {key: str(term) for key, term, _explanation in WORDS}
    entries = [{"key": key, "term": str(term), "explanation": str(explanation),
                "french": french[key] if not current.startswith("fr") else ""}
               for key, term, explanation in WORDS]
    return render(request, "words.html", {"words": entries})


def error_403(request, exception=None):
    return render(request, "errors/not_available.html", status=403)


def error_404(request, exception=None):
    return render(request, "errors/not_available.html", status=404)


def error_400(request, exception=None):
    """A request Django refused (a bad host, a session that could not be saved, …): a page, not
    Django's bare "Bad Request (400)". A session lost because the database went away is an
    outage: 503. No request context, as for the 500 page."""
    cause = unavailable_cause(exception)
    if cause is not None:
        return unavailable_response(request, cause)
    return HttpResponseBadRequest(loader.get_template("errors/bad_request.html").render())


def error_500(request):
    # Django calls this while handling the exception: an outage of the database or Redis met
    # in a middleware (the session, the account) answers 503, "try again in a minute".
    cause = unavailable_cause(sys.exc_info()[1])
    if cause is not None:
        return unavailable_response(request, cause)
    # No request context: a failing context processor must not turn a 500 into a crash.
    return HttpResponseServerError(loader.get_template("errors/500.html").render())


@require_POST
def language_set(request):
    """The language switch on every page (in place of Django's set_language, same address and
    name). Anyone gets the language cookie; a logged-in person's choice is also stored on their
    account (and the record they hold), which is what their pages follow from then on (see
    PreferredLanguageMiddleware). Goes back to `next` when it is a page of this site, else
    to the home page."""
    target = request.POST.get("next") or request.headers.get("referer") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = "/"
    response = HttpResponseRedirect(target)
    language = request.POST.get("language", "")
    try:
        if request.user.is_authenticated:
            account_language_set(user=request.user, language=language)
        elif language not in dict(settings.LANGUAGES):
            raise InvalidInput(_("Choose a language from the list."), code=InvalidInputCode.INVALID)
    except InvalidInput as error:
        messages.error(request, str(error))
        return response
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME, language, max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH, domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE, httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
    return response
