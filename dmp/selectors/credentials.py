"""Reads of a professional's own API tokens. Another professional's token is 404, like
anything the actor may not know exists."""

from __future__ import annotations

from django.db.models import F, QuerySet
from django.http import Http404

from ..models import ApiToken
from ..policy import Actor


def api_tokens_of(actor: Actor) -> QuerySet[ApiToken]:
    """The acting professional's tokens, those not revoked first, newest first; none for anyone else."""
    if actor.professional is None:
        return ApiToken.objects.none()
    return actor.professional.api_tokens.order_by(F("revoked_at").desc(nulls_first=True), "-created_at", "-pk")


def get_api_token_for(actor: Actor, pk: int) -> ApiToken:
    """One of the acting professional's tokens, or 404 (someone else's or missing alike)."""
    try:
        return api_tokens_of(actor).get(pk=pk)
    except ApiToken.DoesNotExist:
        raise Http404 from None
