"""Response headers that keep pages from being cached, and the browser's powerful features
off, on every response Django produces (docs/security.md).

Static files never reach this middleware: WhiteNoise, placed before it, answers them first
with their own long-lived caching. Everything else Django answers may show personal or medical
data, or carry a CSRF token bound to a session, so it gets `Cache-Control: no-store`: not kept
by the browser (a shared computer at a counter or in a waiting room, the back button after
logging out) nor by any proxy. One rule without exceptions is harder to get wrong than a list
of pages; the cost is that the login page is fetched again each time, which is small.

The Content-Security-Policy itself is django-csp's (CONTENT_SECURITY_POLICY in settings); it
leaves alone a response whose view already set one (document files set `sandbox`).
"""

from __future__ import annotations

from django.conf import settings


class SecurityHeadersMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # A view may already say no-store (never_cache adds more words): keep its header then;
        # anything weaker (a view or a library asking for caching) is replaced.
        if "no-store" not in response.get("Cache-Control", ""):
            response["Cache-Control"] = "no-store"
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response
