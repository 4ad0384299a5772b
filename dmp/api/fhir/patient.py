"""FHIR Patient: read, and search by identifier (NIR or provisional identifier) or by family
name, given name and birth date (see dmp/api/fhir/__init__.py for the conventions).

The search is the clinician portal's search (`records_found_for`: same matching, same limit,
same FIND_RECORD entries), narrowed to the records the professional may open now: a record
found but closed to them is left out, so the answer never tells that it exists. Searching with
`POST Patient/_search` (form body) keeps the identifier and the name out of URLs and access logs.
"""

from __future__ import annotations

import hashlib
from datetime import date
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import path, re_path, reverse
from django.utils import timezone
from django.utils.http import http_date
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntrySearch, BundleLink
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.patient import Patient
from rest_framework.parsers import FormParser

from ...fhir import INS_NIR_SYSTEM, PROVISIONAL_ID_SYSTEM
from ...fhir import patient as patient_resource
from ...models import ApiToken
from ...models.record import normalise_nir, validate_nir
from ...policy import Actor
from ...selectors.clinician import PROVISIONAL_ID_RE, records_found_for
from ...selectors.document_search import newest_documents_of
from ...selectors.record_versions import record_last_changed
from ...selectors.records import get_record_for
from .base import FHIR_JSON, FhirView, Search, SearchSpec, fhir_response, operation_outcome, search_request

MAX_ID_DIGITS = 18  # a bigint: a longer id cannot exist (and must not reach the database)


def record_pk(value: str) -> int:
    """A FHIR logical id as a record pk; anything else is a resource that does not exist."""
    value = (value or "").strip()
    if value.startswith("Patient/"):
        value = value.removeprefix("Patient/")
    if not value.isascii() or not value.isdigit() or len(value) > MAX_ID_DIGITS:
        raise Http404
    return int(value)


class SearchError(ValueError):
    """A search parameter is missing or invalid (400 OperationOutcome)."""


def patient_identifier(token: str) -> str:
    """`system|value` or `value`: the normalised NIR or provisional identifier."""
    system, _sep, value = token.rpartition("|")
    value = normalise_nir(value)
    if not value or len(value) > 30:
        raise SearchError("identifier: a value is required (system|value).")
    if system and system not in (INS_NIR_SYSTEM, PROVISIONAL_ID_SYSTEM):
        raise SearchError(f"identifier: unsupported system; use {INS_NIR_SYSTEM} (NIR) or "
                          f"{PROVISIONAL_ID_SYSTEM} (provisional identifier).")
    provisional = bool(PROVISIONAL_ID_RE.match(value))
    if system == PROVISIONAL_ID_SYSTEM and not provisional:
        raise SearchError("identifier: a provisional identifier is P followed by 11 letters or digits.")
    if system == INS_NIR_SYSTEM or not provisional:
        try:
            validate_nir(value)
        except ValidationError:
            raise SearchError("identifier: not a valid NIR (13 characters and the 2-digit key).") from None
    return value


def _birthdate(value: str) -> date:
    value = value.strip().removeprefix("eq")  # the only date comparison a lookup needs
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise SearchError("birthdate: a full date is required (YYYY-MM-DD).") from None


def search_criteria(params) -> dict:
    """The lookup's keyword arguments from the search parameters, or SearchError."""
    if params.get("identifier", "").strip():
        return {"identifier": patient_identifier(params["identifier"].strip())}
    family, given = params.get("family", "").strip(), params.get("given", "").strip()
    birthdate = params.get("birthdate", "").strip()
    if not (family and given and birthdate):
        raise SearchError("Search by identifier (system|value), or by family, given and birthdate together.")
    if len(family) > 100 or len(given) > 150:
        raise SearchError("family or given: too long.")
    return {"family_name": family, "given_names": given, "birth_date": _birthdate(birthdate)}


# A lookup matches a handful of patients: one page holds them all (`_count` can make it
# smaller). There is no next link: the criteria are personal data, never put in a link.
MAX_COUNT = 50
SEARCH = SearchSpec(
    parameters=(("identifier", "token", "Patient-identifier"), ("family", "string", "individual-family"),
                ("given", "string", "individual-given"), ("birthdate", "date", "individual-birthdate")),
    default_count=MAX_COUNT, max_count=MAX_COUNT,
    revincludes=("DocumentReference:patient", "DocumentReference:subject"),
)


def _revincluded(request, actor: Actor, records: list, search: Search) -> list[BundleEntry]:
    """`_revinclude=DocumentReference:patient`: the newest documents the professional may read
    of the patients of the page (each record read in its history like a documents search)."""
    if not search.revincludes or search.count_only:
        return []
    # Here, not at the top: the documents module reads patient identifiers from this one.
    from .documents import REVINCLUDE_MAX, revincluded

    return revincluded(request, newest_documents_of(actor, records[:search.page.count], limit=REVINCLUDE_MAX))


def searchset(request, resources, *, self_url: str, search: Search, included=()) -> Bundle:
    """A searchset Bundle of `resources` (the first `_count` of them), each with its absolute
    URL, and the `included` entries after them."""
    page = [] if search.count_only else resources[:search.page.count]
    applied = [*search.applied, ("_summary", "count")] if search.count_only else search.applied
    query = f"?{urlencode(applied)}" if applied else ""
    return Bundle(
        type="searchset",
        timestamp=timezone.now(),
        total=len(resources),
        link=[BundleLink(relation="self", url=self_url + query)],
        entry=[
            BundleEntry(fullUrl=request.build_absolute_uri(f"{reverse('fhir:patient-search')}/{r.id}"), resource=r,
                        search=BundleEntrySearch(mode="match"))
            for r in page
        ] + list(included) or None,
    )


OUTCOME = OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome")
ERRORS = {
    401: OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome: no token, or not a valid one"),
    403: OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome: not a professional with a second factor"),
    404: OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome: missing, or not open to you (the same)"),
}
SEARCH_PARAMETERS = [
    OpenApiParameter("identifier", str, description=f"`{INS_NIR_SYSTEM}|<NIR>` or `{PROVISIONAL_ID_SYSTEM}|<id>`"),
    OpenApiParameter("family", str, description="Family name (with given and birthdate)"),
    OpenApiParameter("given", str, description="Given name (with family and birthdate)"),
    OpenApiParameter("birthdate", str, description="Birth date, YYYY-MM-DD (with family and given)"),
]


def versioned_patient(record) -> tuple[Patient, dict[str, str]]:
    """The Patient with `meta.versionId` and `meta.lastUpdated`, and its ETag and Last-Modified.
    The record keeps its current identity only: the version is a digest of what the resource
    says, so it changes whenever the identity does, and the only version is the current one."""
    resource = patient_resource(record)
    digest = hashlib.sha256(resource.model_dump_json(exclude_none=True).encode()).hexdigest()[:16]
    changed = record_last_changed(record)
    resource.meta = Meta(versionId=digest, lastUpdated=changed)
    return resource, {"ETag": f'W/"{digest}"', "Last-Modified": http_date(changed.timestamp())}


class PatientRead(FhirView):
    """`GET /fhir/Patient/{id}`."""

    @extend_schema(
        operation_id="Patient_read", summary="Read a Patient", tags=["Patient"],
        parameters=[OpenApiParameter("id", str, OpenApiParameter.PATH, description="The Patient's logical id")],
        responses={(200, FHIR_JSON): OpenApiResponse(OpenApiTypes.OBJECT, description="Patient"), **ERRORS},
    )
    def get(self, request, pk: str):
        resource, headers = versioned_patient(get_record_for(Actor.from_request(request), record_pk(pk)))
        return fhir_response(resource, headers=headers)


class PatientVersionRead(FhirView):
    """`GET /fhir/Patient/{id}/_history/{vid}`: the current version only (the one we keep)."""

    @extend_schema(operation_id="Patient_vread", summary="Read a version of a Patient (the current one)",
                   tags=["Patient"], responses={(200, FHIR_JSON): OpenApiTypes.OBJECT, **ERRORS})
    def get(self, request, pk: str, version_id: str):
        resource, headers = versioned_patient(get_record_for(Actor.from_request(request), record_pk(pk)))
        if version_id != resource.meta.versionId:
            raise Http404
        return fhir_response(resource, headers=headers)


class PatientHistory(FhirView):
    """`GET /fhir/Patient/{id}/_history`: a history Bundle holding the current version alone."""

    @extend_schema(operation_id="Patient_history", summary="The versions of a Patient we keep (the current one)",
                   tags=["Patient"], responses={(200, FHIR_JSON): OpenApiTypes.OBJECT, **ERRORS})
    def get(self, request, pk: str):
        from .documents import history_bundle  # (see _revincluded)

        versioned = versioned_patient(get_record_for(Actor.from_request(request), record_pk(pk)))
        return fhir_response(history_bundle(request, [versioned]))


class _PatientSearchBase(FhirView):
    parser_classes = [FormParser]

    def _search(self, request, params):
        try:
            search = search_request(request, params, SEARCH)
            criteria = search_criteria(params)
        except ValueError as error:  # SearchError, of either kind
            return operation_outcome(400, str(error))
        # Practice software on a token has its own limit (dmp/api/throttling.py); a person
        # searching from the browser's session has the humans' one.
        actor = Actor.from_request(request)
        result = records_found_for(actor, **criteria, human_limit=not isinstance(request.auth, ApiToken))
        if result.limited:
            return operation_outcome(429, "Too many searches in the last hour; try again later.")
        resources = [patient_resource(record) for record in result.records]
        # The self link never repeats the criteria: they are personal data.
        return fhir_response(searchset(request, resources, search=search,
                                       self_url=request.build_absolute_uri(reverse("fhir:patient-search")),
                                       included=_revincluded(request, actor, list(result.records), search)))


class PatientSearch(_PatientSearchBase):
    """`GET /fhir/Patient?identifier=…` or `?family=…&given=…&birthdate=…`."""

    @extend_schema(
        operation_id="Patient_search", summary="Search Patients", tags=["Patient"], parameters=SEARCH_PARAMETERS,
        responses={(200, FHIR_JSON): OpenApiResponse(OpenApiTypes.OBJECT, description="Bundle (searchset)"),
                   400: OUTCOME, 401: ERRORS[401], 403: ERRORS[403], 429: OUTCOME},
    )
    def get(self, request):
        return self._search(request, request.query_params)


class PatientSearchPost(_PatientSearchBase):
    """`POST /fhir/Patient/_search`: the same search, the criteria in a form body."""

    @extend_schema(
        operation_id="Patient_search_post", summary="Search Patients (criteria in the body)", tags=["Patient"],
        request={"application/x-www-form-urlencoded": {
            "type": "object", "properties": {p.name: {"type": "string"} for p in SEARCH_PARAMETERS},
        }},
        responses={(200, FHIR_JSON): OpenApiResponse(OpenApiTypes.OBJECT, description="Bundle (searchset)"),
                   400: OUTCOME, 401: ERRORS[401], 403: ERRORS[403], 415: OUTCOME, 429: OUTCOME},
    )
    def post(self, request):
        return self._search(request, request.data)


urlpatterns = [
    path("Patient", PatientSearch.as_view(), name="patient-search"),
    path("Patient/_search", PatientSearchPost.as_view(), name="patient-search-post"),
    # A FHIR id ([A-Za-z0-9-.]{1,64}): "Patient/$match" and the like fall to the catch-all 404.
    re_path(r"^Patient/(?P<pk>[A-Za-z0-9\-.]{1,64})$", PatientRead.as_view(), name="patient-read"),
    re_path(r"^Patient/(?P<pk>[A-Za-z0-9\-.]{1,64})/_history$", PatientHistory.as_view(), name="patient-history"),
    re_path(r"^Patient/(?P<pk>[A-Za-z0-9\-.]{1,64})/_history/(?P<version_id>[A-Za-z0-9\-.]{1,64})$",
            PatientVersionRead.as_view(), name="patient-vread"),
]
