"""API endpoints. `me` lets practice software check its credentials."""

from __future__ import annotations

from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import ApiToken


@api_view(["GET"])
def me(request: Request) -> Response:
    """The professional the request acts for, and what authenticated it."""
    pro = request.user.professional  # the permission classes let professionals only
    token = request.auth if isinstance(request.auth, ApiToken) else None
    return Response({
        "name": request.user.get_full_name(),
        "rpps": pro.rpps,
        "profession": pro.profession,
        "profession_display": str(pro.get_profession_display()),
        "specialty": pro.specialty,
        "authenticated_by": (
            {"method": "api_token", "token": {"id": token.pk, "label": token.label, "prefix": token.prefix,
                                              "expires_at": token.expires_at}}
            if token is not None else {"method": "session"}
        ),
    })
