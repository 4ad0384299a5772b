"""The professional's API tokens for their practice software (issue 3)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dmp import services
from dmp.http import portal_view
from dmp.paging import page_number, page_of, page_urls
from dmp.selectors import api_tokens_of, get_api_token_for


def _api_tokens_page(request, actor, *, label: str = "", error: str = "", status: int = 200):
    # At most MAX_LIVE_TOKENS live, but revoked and expired ones accumulate: a page at a time.
    tokens = page_of(api_tokens_of(actor), page_number(request.GET.get("page")))
    return render(request, "portal_pro/api_tokens.html", {
        "tokens": tokens.object_list, "page": tokens,
        "page_urls": page_urls(reverse("portal_pro:api_tokens"), tokens),
        "creation": services.api_token_creation_allowed(actor),
        "label": label,
        "label_max_length": services.credentials.LABEL_MAX_LENGTH,
        "error": error,
    }, status=status)


@require_GET
@portal_view("pro")
def api_tokens(request, actor):
    """The professional's API tokens for their practice software, and the form to create one."""
    return _api_tokens_page(request, actor)


@require_POST
@portal_view("pro")
def api_token_new(request, actor):
    """Create a token and show it, once: it is stored only as a hash."""
    label = request.POST.get("label", "")
    try:
        token, raw = services.api_token_create(actor=actor, label=label)
    except services.AccessRefused:
        raise PermissionDenied from None
    except services.InvalidInput as error:
        return _api_tokens_page(request, actor, label=label, error=str(error), status=400)
    return render(request, "portal_pro/api_token_created.html", {"token": token, "raw_token": raw})


@require_http_methods(["GET", "POST"])
@portal_view("pro")
def api_token_revoke(request, actor, pk: int):
    """Ask for confirmation, then revoke: the software using the token stops at once."""
    token = get_api_token_for(actor, pk)
    if request.method == "GET":
        return render(request, "portal_pro/api_token_revoke.html", {"token": token})
    services.api_token_revoke(actor=actor, token=token)
    messages.success(request, _("The API token “%(label)s” is revoked.") % {"label": token.label})
    return redirect("portal_pro:api_tokens")


urlpatterns = [
    path("api-tokens/", api_tokens, name="api_tokens"),
    path("api-tokens/new/", api_token_new, name="api_token_new"),
    path("api-tokens/<int:pk>/revoke/", api_token_revoke, name="api_token_revoke"),
]
