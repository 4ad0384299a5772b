"""FHIR Practitioner and Organization: read, and search by `_id` or `identifier` (see
dmp/api/fhir/__init__.py for the conventions).

Only the professionals and facilities the records you may read point to, yourself and your own
facility (dmp/selectors/professionals.py): every DocumentReference's `author` can be followed,
and no search lists a directory — there is no search by name, and a professional you may not
see is missing (404 on a read, an empty Bundle on a search)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import Http404, QueryDict
from django.urls import path, re_path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.organization import Organization

from ... import fhir
from ...models import Organisation, Professional
from ...policy import Actor
from ...selectors.professionals import documents_by_seen_by, organisation_seen_by, professional_seen_by
from .base import FhirView, SearchError, SearchSpec, fhir_response, operation_outcome, search_request
from .documents import REVINCLUDE_MAX, revincluded

FINESS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
_MAX_ID_DIGITS = 10

PRACTITIONER_SEARCH = SearchSpec(
    parameters=(("_id", "token", "Resource-id"), ("identifier", "token", "Practitioner-identifier")),
    default_count=10, max_count=10, revincludes=("DocumentReference:author",),
)
ORGANIZATION_SEARCH = SearchSpec(
    parameters=(("_id", "token", "Resource-id"), ("identifier", "token", "Organization-identifier")),
    default_count=10, max_count=10,
)


def _pk(value: str) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= _MAX_ID_DIGITS else None


def organization(organisation: Organisation) -> Organization:
    return Organization(
        id=str(organisation.pk), name=organisation.name,
        identifier=[Identifier(system=FINESS_SYSTEM, value=organisation.finess)] if organisation.finess else None,
        address=[{"city": organisation.city}] if organisation.city else None,
    )


def _token(value: str, system: str) -> str | None:
    """The value of `system|value` or `value`; None for another system."""
    item_system, sep, code = value.strip().rpartition("|")
    return None if sep and item_system and item_system != system else code.strip()


def _practitioner_candidate(params) -> int | None:
    if params.get("_id"):
        return _pk(params["_id"])
    code = _token(params["identifier"], fhir.IDNPS_SYSTEM) or ""
    rpps = code[1:] if len(code) == 12 and code.startswith("8") else code
    if not (rpps.isascii() and rpps.isdigit() and len(rpps) == 11):
        return None
    return Professional.objects.filter(rpps=rpps).values_list("pk", flat=True).first()


def _organization_candidate(params) -> int | None:
    if params.get("_id"):
        return _pk(params["_id"])
    finess = _token(params["identifier"], FINESS_SYSTEM) or ""
    if not (finess.isascii() and finess.isalnum() and len(finess) == 9):
        return None
    return Organisation.objects.filter(finess=finess).values_list("pk", flat=True).first()


_NOT_FOUND = OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome: missing, or not one you may see")
_BUNDLE = OpenApiResponse(OpenApiTypes.OBJECT, description="Bundle (searchset): none or one")
_SEARCH_PARAMETERS = [OpenApiParameter("_id", str, description="The logical id."),
                      OpenApiParameter("identifier", str, description="system|value")]


class _TypeSearch(FhirView):
    """A search by `_id` or `identifier`: at most the one resource the candidate id names, if
    the actor may see it. Each type says how to find the candidate and how to load it."""

    spec: SearchSpec
    name = ""
    candidate: Callable[[QueryDict], int | None]
    resource: Callable[[Actor, int], object | None]

    def revincluded(self, request, pk: int, search) -> list[BundleEntry]:
        """The entries `_revinclude` adds after the one found (none unless the type says)."""
        return []

    def get(self, request):
        params = request.query_params
        try:
            search = search_request(request, params, self.spec)
        except SearchError as error:
            return operation_outcome(400, str(error))
        if not (params.get("_id") or params.get("identifier")):
            return operation_outcome(400, f"Search {self.name} by _id or identifier (there is no directory).")
        pk = self.candidate(params)
        found = self.resource(Actor.from_request(request), pk) if pk is not None else None
        url = request.build_absolute_uri(reverse(f"fhir:{self.name.lower()}-search"))
        kept = [(name, params[name]) for name in ("_id", "identifier") if params.get(name)]
        entries = [] if found is None or search.count_only or not search.page.count or search.page.offset else [
            BundleEntry(fullUrl=f"{url}/{found.id}", resource=found, search={"mode": "match"}),
            *self.revincluded(request, pk, search)]
        total = 0 if found is None else 1
        return fhir_response(Bundle(type="searchset", total=total, link=search.links(url, kept, total),
                                    entry=entries or None))


def _practitioner(actor: Actor, pk: int):
    professional = professional_seen_by(actor, pk)
    return fhir.practitioner(professional) if professional is not None else None


def _organization(actor: Actor, pk: int):
    organisation = organisation_seen_by(actor, pk)
    return organization(organisation) if organisation is not None else None


class PractitionerSearch(_TypeSearch):
    """`GET /fhir/Practitioner?_id=…` or `?identifier=urn:oid:1.2.250.1.71.4.2.1|8<RPPS>`;
    `_revinclude=DocumentReference:author` adds their newest documents you may read."""

    spec = PRACTITIONER_SEARCH
    name = "Practitioner"
    candidate = staticmethod(_practitioner_candidate)
    resource = staticmethod(_practitioner)

    def revincluded(self, request, pk: int, search) -> list[BundleEntry]:
        if not search.revincludes:
            return []
        actor = Actor.from_request(request)
        professional = professional_seen_by(actor, pk)
        return revincluded(request, documents_by_seen_by(actor, professional, limit=REVINCLUDE_MAX))

    @extend_schema(operation_id="Practitioner_search", summary="Find a professional you may see",
                   tags=["Practitioner"], parameters=_SEARCH_PARAMETERS, responses={200: _BUNDLE, 400: _NOT_FOUND})
    def get(self, request):
        return super().get(request)


class OrganizationSearch(_TypeSearch):
    """`GET /fhir/Organization?_id=…` or `?identifier=urn:oid:1.2.250.1.71.4.2.2|<FINESS>`."""

    spec = ORGANIZATION_SEARCH
    name = "Organization"
    candidate = staticmethod(_organization_candidate)
    resource = staticmethod(_organization)

    @extend_schema(operation_id="Organization_search", summary="Find your facility", tags=["Organization"],
                   parameters=_SEARCH_PARAMETERS, responses={200: _BUNDLE, 400: _NOT_FOUND})
    def get(self, request):
        return super().get(request)


class _TypeRead(FhirView):
    """A read: the resource if the actor may see it, else the same 404 as a missing one."""

    resource: Callable[[Actor, int], object | None]

    def get(self, request, resource_id: str):
        pk = _pk(resource_id)
        found = self.resource(Actor.from_request(request), pk) if pk is not None else None
        if found is None:
            raise Http404
        return fhir_response(found)


class PractitionerRead(_TypeRead):
    resource = staticmethod(_practitioner)

    @extend_schema(operation_id="Practitioner_read", summary="Read a professional you may see",
                   tags=["Practitioner"], responses={200: OpenApiTypes.OBJECT, 404: _NOT_FOUND})
    def get(self, request, resource_id: str):
        return super().get(request, resource_id)


class OrganizationRead(_TypeRead):
    resource = staticmethod(_organization)

    @extend_schema(operation_id="Organization_read", summary="Read your facility", tags=["Organization"],
                   responses={200: OpenApiTypes.OBJECT, 404: _NOT_FOUND})
    def get(self, request, resource_id: str):
        return super().get(request, resource_id)


urlpatterns = [
    path("Practitioner", PractitionerSearch.as_view(), name="practitioner-search"),
    re_path(r"^Practitioner/(?P<resource_id>[A-Za-z0-9\-.]{1,64})$", PractitionerRead.as_view(),
            name="practitioner-read"),
    path("Organization", OrganizationSearch.as_view(), name="organization-search"),
    re_path(r"^Organization/(?P<resource_id>[A-Za-z0-9\-.]{1,64})$", OrganizationRead.as_view(),
            name="organization-read"),
]
