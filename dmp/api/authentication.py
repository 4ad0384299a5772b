"""`Authorization: Bearer dmp_…` — API tokens bound to a professional."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from ..services.credentials import api_token_authenticate

# One message whatever failed: a client learns nothing about which check refused it.
REFUSED = _("Invalid or expired API token.")


class ApiTokenAuthentication(BaseAuthentication):
    """Authenticates as the token's professional. Requests without a Bearer header are left to
    the next authentication class; a Bearer header that does not authenticate is a 401."""

    keyword = "Bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise AuthenticationFailed(REFUSED)
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed(REFUSED) from None
        token = api_token_authenticate(raw)
        if token is None:
            raise AuthenticationFailed(REFUSED)
        return token.professional.user, token

    def authenticate_header(self, request) -> str:
        # Makes refusals 401 with `WWW-Authenticate: Bearer`, not 403.
        return self.keyword
