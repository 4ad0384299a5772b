"""What every FHIR endpoint shares: the media type, OperationOutcome errors, the base view."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from fhir.resources.R4B.bundle import BundleLink
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.resource import Resource
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from ..authentication import ApiTokenAuthentication
from ..permissions import ProfessionalWithSecondFactor

FHIR_JSON = "application/fhir+json"


class FhirJSONRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir+json"


class FhirJSONParser(JSONParser):
    media_type = FHIR_JSON


def resource_data(resource: Resource) -> dict:
    """A validated resource as the JSON-ready dict FHIR wants (empty elements left out)."""
    return json.loads(resource.model_dump_json(exclude_none=True))


def fhir_response(resource: Resource, *, status_code: int = status.HTTP_200_OK, headers=None) -> Response:
    return Response(resource_data(resource), status=status_code, headers=headers, content_type=FHIR_JSON)


# FHIR issue codes (http://hl7.org/fhir/issue-type) by HTTP status.
_ISSUE_CODE = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
               406: "not-supported", 409: "duplicate", 412: "multiple-matches", 413: "too-costly", 415: "not-supported",
               422: "processing", 429: "throttled", 500: "exception"}


def operation_outcome(status_code: int, message: str, *, severity: str = "error", headers=None) -> Response:
    outcome = OperationOutcome(issue=[{
        "severity": severity, "code": _ISSUE_CODE.get(status_code, "processing"), "diagnostics": str(message),
    }])
    return fhir_response(outcome, status_code=status_code, headers=headers)


def fhir_exception_handler(exc, context):
    """DRF's and Django's errors as OperationOutcome, with the right status. A refusal and a
    missing resource are the same 404 (DOMAIN.md §4)."""
    if isinstance(exc, Http404):
        return operation_outcome(404, "Resource not found.")
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        headers = {}
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            headers["WWW-Authenticate"] = "Bearer"
        detail = exc.detail
        message = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)
        return operation_outcome(exc.status_code, message, headers=headers)
    return None  # anything else is a real server error: Django's generic 500 page


class FhirView(APIView):
    """Base of every FHIR endpoint: FHIR JSON in and out, token or session, professionals with a
    second factor only, OperationOutcome errors."""

    renderer_classes = [FhirJSONRenderer, JSONRenderer]
    parser_classes = [FhirJSONParser, JSONParser]
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, ProfessionalWithSecondFactor]

    def get_exception_handler(self):
        return fhir_exception_handler


# --- paging a search (issue 16: every API answer is bounded) ---------------------------------

_MAX_PAGING_DIGITS = 9  # _count and _offset: whole numbers up to 999,999,999


@dataclass(frozen=True)
class SearchPage:
    """Which slice of a search's results a Bundle holds: `count` results from `offset`."""

    count: int
    offset: int

    def of(self, rows):
        """The page of `rows` (an ordered queryset: one query, LIMIT/OFFSET)."""
        return rows[self.offset:self.offset + self.count]


def _paging_number(params, name: str, default: int) -> int:
    value = params.get(name, "")
    if value == "":
        return default
    if not value.isascii() or not value.isdigit() or len(value) > _MAX_PAGING_DIGITS:
        raise ValueError(_("Invalid %(name)s parameter: a whole number from 0 to 999999999.") % {"name": name})
    return int(value)


def search_page(params, *, default: int, maximum: int) -> SearchPage:
    """The `_count` and `_offset` of a search. A `_count` above `maximum` is brought down to
    it rather than refused: FHIR lets a server return fewer results than asked, and the
    Bundle's `next` link carries the count actually used. Anything but a whole number
    (negative, not a number) is a ValueError whose message the caller answers with a 400
    OperationOutcome."""
    count = min(_paging_number(params, "_count", default), maximum)
    return SearchPage(count=count, offset=_paging_number(params, "_offset", 0))


def search_links(url: str, kept: list[tuple[str, str]], page: SearchPage, total: int) -> list[BundleLink]:
    """The Bundle's `self`, `next` and `previous` links. They carry `kept` (the search
    parameters the endpoint accepted, normalised, never anything else the query string held)
    and the paging; `_count=0` (the total only) has no neighbours."""

    def link(relation: str, offset: int) -> BundleLink:
        query = urlencode([*kept, ("_count", page.count), ("_offset", offset)])
        return BundleLink(relation=relation, url=f"{url}?{query}")

    links = [link("self", page.offset)]
    if page.count and page.offset + page.count < total:
        links.append(link("next", page.offset + page.count))
    if page.count and page.offset:
        links.append(link("previous", max(page.offset - page.count, 0)))
    return links
