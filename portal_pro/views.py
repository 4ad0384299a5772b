"""The health professionals' portal."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dmp import services
from dmp.http import actor_for_portal, document_file_response
from dmp.selectors import (
    api_tokens_of,
    documents_visible_to,
    get_api_token_for,
    get_record_for,
    records_followed_by,
)


@login_required
@require_GET
def home(request):
    actor = actor_for_portal(request, "pro")
    return render(request, "portal_pro/home.html", {"records": records_followed_by(actor)})


@login_required
@require_GET
def record(request, pk: int):
    actor = actor_for_portal(request, "pro")
    rec = get_record_for(actor, pk)
    documents = documents_visible_to(actor, rec)
    return render(request, "portal_pro/record.html", {"record": rec, "documents": documents})


@login_required
@require_GET
def document_file(request, pk: int):
    actor_for_portal(request, "pro")
    return document_file_response(request, pk)


def _api_tokens_page(request, actor, *, label: str = "", error: str = "", status: int = 200):
    return render(request, "portal_pro/api_tokens.html", {
        "tokens": api_tokens_of(actor),
        "creation": services.api_token_creation_allowed(actor),
        "label": label,
        "label_max_length": services.credentials.LABEL_MAX_LENGTH,
        "error": error,
    }, status=status)


@login_required
@require_GET
def api_tokens(request):
    """The professional's API tokens for their practice software, and the form to create one."""
    return _api_tokens_page(request, actor_for_portal(request, "pro"))


@login_required
@require_POST
@never_cache
def api_token_new(request):
    """Create a token and show it, once: it is stored only as a hash."""
    actor = actor_for_portal(request, "pro")
    label = request.POST.get("label", "")
    try:
        token, raw = services.api_token_create(actor=actor, label=label)
    except services.AccessRefused:
        raise PermissionDenied from None
    except services.InvalidInput as error:
        return _api_tokens_page(request, actor, label=label, error=str(error), status=400)
    return render(request, "portal_pro/api_token_created.html", {"token": token, "raw_token": raw})


@login_required
@require_http_methods(["GET", "POST"])
def api_token_revoke(request, pk: int):
    """Ask for confirmation, then revoke: the software using the token stops at once."""
    actor = actor_for_portal(request, "pro")
    token = get_api_token_for(actor, pk)
    if request.method == "GET":
        return render(request, "portal_pro/api_token_revoke.html", {"token": token})
    services.api_token_revoke(actor=actor, token=token)
    messages.success(request, _("The API token “%(label)s” is revoked.") % {"label": token.label})
    return redirect("portal_pro:api_tokens")
