"""What every FHIR endpoint shares: the media type, OperationOutcome errors, the base view."""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, QueryDict
from django.utils.translation import gettext as _
from fhir.resources.R4B.bundle import BundleLink
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.resource import Resource
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from ..authentication import ApiTokenAuthentication
from ..permissions import ProfessionalWithSecondFactor
from ..throttling import ApiTokenThrottle

FHIR_JSON = "application/fhir+json"


class FhirJSONRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir+json"


class DecimalJSONParser(JSONParser):
    """JSON whose decimals are read as decimals: in FHIR a decimal's precision is part of its
    value (a laboratory's 7.10 is not 7.1), which a float would drop."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.load(codecs.getreader(encoding)(stream), parse_float=Decimal,
                             parse_constant=_no_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class FhirJSONParser(DecimalJSONParser):
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
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))
        detail = exc.detail
        message = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)
        return operation_outcome(exc.status_code, message, headers=headers)
    return None  # anything else is a real server error: Django's generic 500 page


# `_format` values that mean JSON (FHIR's short names and the media types); anything else, XML
# first of all, is 406: this server speaks JSON only.
JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir"})


def check_format(request) -> None:
    """406 for a `_format` other than JSON (FHIR lets it override the Accept header)."""
    value = request.query_params.get("_format")
    if value is not None and value.split(";")[0].strip().lower() not in JSON_FORMATS:
        raise exceptions.NotAcceptable("Only JSON is supported (_format=json).")


class _NoFormatOverride:
    URL_FORMAT_OVERRIDE = None


class FhirContentNegotiation(DefaultContentNegotiation):
    """The Accept header only: `format` is an ITI-67 search parameter here (a document's
    format code), not DRF's format override; FHIR's own `_format` is `check_format`'s."""

    settings = _NoFormatOverride


class FhirView(APIView):
    """Base of every FHIR endpoint: FHIR JSON in and out, token or session, professionals with a
    second factor only, OperationOutcome errors, each API token within its own hourly limit."""

    renderer_classes = [FhirJSONRenderer, JSONRenderer]
    parser_classes = [FhirJSONParser, DecimalJSONParser]
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, ProfessionalWithSecondFactor]
    throttle_classes = [ApiTokenThrottle]
    content_negotiation_class = FhirContentNegotiation

    def get_exception_handler(self):
        return fhir_exception_handler

    def initial(self, request, *args, **kwargs):
        check_format(request)
        super().initial(request, *args, **kwargs)


class UnknownPath(FhirView):
    """Whatever no route of /fhir/ answers (listed last): a FHIR 404, never Django's HTML page.
    Nothing is looked up, so it answers without a token and tells nothing."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    schema = None  # not an endpoint of the OpenAPI description

    def answer(self, request, *args, **kwargs):
        first = request.path.split("/fhir/", 1)[-1].split("/", 1)[0]
        if "$" in request.path:
            message = "Unknown or unsupported operation."
        elif first and first[0].isupper() and first.isalpha():
            message = "Unknown resource type or path: see /fhir/metadata."
        else:
            message = "Unknown path: see /fhir/metadata."
        return operation_outcome(404, message)

    get = post = put = patch = delete = head = options = answer


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


def search_links(url: str, kept: list[tuple[str, str]], page: SearchPage, total: int, *,
                 count_only: bool = False) -> list[BundleLink]:
    """The Bundle's `self`, `next` and `previous` links. They carry `kept` (the search
    parameters the endpoint accepted, normalised, never anything else the query string held)
    and the paging; `_count=0` and `_summary=count` (the total only) have no neighbours."""
    if count_only:
        return [BundleLink(relation="self", url=f"{url}?{urlencode([*kept, ('_summary', 'count')])}")]

    def link(relation: str, offset: int) -> BundleLink:
        query = urlencode([*kept, ("_count", page.count), ("_offset", offset)])
        return BundleLink(relation=relation, url=f"{url}?{query}")

    links = [link("self", page.offset)]
    if page.count and page.offset + page.count < total:
        links.append(link("next", page.offset + page.count))
    if page.count and page.offset:
        links.append(link("previous", max(page.offset - page.count, 0)))
    return links


# --- what a search accepts (FHIR search: strict and lenient handling) -------------------------

# The result parameters every search understands; each endpoint says which values it takes.
RESULT_PARAMETERS = frozenset({"_count", "_offset", "_summary", "_sort", "_include", "_revinclude", "_format"})
_STRICT = re.compile(r"(?:^|[;,\s])handling\s*=\s*strict(?:$|[;,\s])", re.IGNORECASE)


class SearchError(ValueError):
    """A search the server will not run: 400 OperationOutcome with this message."""


def handling_strict(request) -> bool:
    """`Prefer: handling=strict`: an unknown or unsupported parameter is an error, not ignored."""
    return bool(_STRICT.search(request.headers.get("Prefer", "")))


@dataclass(frozen=True)
class SearchSpec:
    """What one search endpoint accepts: its parameters (a modifier is its own entry:
    "author.family:exact"), the `_sort` and `_include` values it honours and its paging. The
    CapabilityStatement is written from these, so it says exactly what the code takes."""

    parameters: tuple[tuple[str, str, str], ...]  # (name, FHIR type, SearchParameter definition)
    default_count: int
    max_count: int
    sorts: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    revincludes: tuple[str, ...] = ()
    modifiers: tuple[str, ...] = ()  # "name:modifier" pairs accepted besides the plain names

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for name, _type, _definition in self.parameters) | frozenset(self.modifiers)


@dataclass(frozen=True)
class Search:
    """The result parameters of one search, checked: its page, `_summary=count`, `_sort`, the
    `_include`s honoured. `applied` are the result parameters the links carry."""

    strict: bool
    page: SearchPage
    count_only: bool = False
    sort: str = ""
    includes: tuple[str, ...] = ()
    revincludes: tuple[str, ...] = ()
    applied: list[tuple[str, str]] = field(default_factory=list)

    def links(self, url: str, kept: list[tuple[str, str]], total: int) -> list[BundleLink]:
        return search_links(url, [*kept, *self.applied], self.page, total, count_only=self.count_only)


def _honoured(values: Iterable[str], allowed: tuple[str, ...], name: str, strict: bool) -> tuple[str, ...]:
    kept = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if item in allowed:
                kept.append(item)
            elif strict and item:
                raise SearchError(f"Unsupported value of {name}: {item[:64]}.")
    return tuple(dict.fromkeys(kept))


def search_request(request, params, spec: SearchSpec) -> Search:
    """The result parameters of a search, checked against `spec`. Unknown parameters are a
    SearchError under `Prefer: handling=strict` and ignored otherwise (and never repeated in
    the links); a `_count` or `_offset` that is not a whole number is always an error."""
    if not isinstance(params, QueryDict):  # a POST without a form body: DRF gives a plain dict
        query = QueryDict(mutable=True)
        for name, value in dict(params).items():
            query.setlist(name, value if isinstance(value, list) else [str(value)])
        params = query
    strict = handling_strict(request)
    if strict:
        for name in params:
            if name not in RESULT_PARAMETERS and name not in spec.names:
                raise SearchError(f"Unknown or unsupported search parameter: {name[:64]}.")
    try:
        page = search_page(params, default=spec.default_count, maximum=spec.max_count)
    except ValueError as error:
        raise SearchError(str(error)) from None
    summary = _honoured(params.getlist("_summary"), ("count", "false"), "_summary", strict)
    sorts = _honoured(params.getlist("_sort"), spec.sorts, "_sort", strict)
    includes = _honoured(params.getlist("_include"), spec.includes, "_include", strict)
    revincludes = _honoured(params.getlist("_revinclude"), spec.revincludes, "_revinclude", strict)
    count_only = "count" in summary
    sort = sorts[0] if sorts else ""
    applied = [("_sort", sort)] if sort else []
    if not count_only:
        applied += [("_include", value) for value in includes] + [("_revinclude", value) for value in revincludes]
    return Search(strict=strict, page=page, count_only=count_only, sort=sort, includes=includes,
                  revincludes=revincludes, applied=applied)
