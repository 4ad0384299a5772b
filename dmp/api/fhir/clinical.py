"""FHIR clinical endpoints (see dmp/api/fhir/__init__.py for the conventions): AllergyIntolerance,
Condition, MedicationStatement and Immunization, read and searched by patient.

What each resource type needs from the policy (a refusal is the 404 a missing patient gets):
- Condition, AllergyIntolerance, MedicationStatement come from the medical synthesis:
  `Action.VIEW_SYNTHESIS` (the matrix cell of the "record_synthesis" type), asked through
  `synthesis_for`. A patient whose record is readable but whose synthesis is not is refused,
  not answered with an empty Bundle: an empty Bundle would say "no problems, no allergies",
  which is a clinical statement, and would differ from what the portal shows (no synthesis
  panel at all). AllergyIntolerance adds the allergies the patient declared (personal data,
  `Action.VIEW_PERSONAL_DATA`); MedicationStatement adds the medicines dispensed in the last
  24 months when `Action.VIEW_REIMBURSEMENTS` allows it, as the portal's patient screen does.
- Immunization is the vaccination record, personal data: `Action.VIEW_PERSONAL_DATA`.

A read by id finds the patient the id belongs to, asks the same questions as a search on that
patient and returns the resource only if that search would list it: a read never shows more
than a search, and a superseded synthesis' items are not found.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Model
from django.http import Http404
from django.urls import re_path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.resource import Resource
from rest_framework.exceptions import ParseError

from ... import fhir
from ...access_log import authorise_read
from ...models import Record, ReimbursementLine, SelfDeclaredItem, Synthesis, SynthesisProblem, Vaccination
from ...policy import Action, Actor
from ...selectors.patient_data import declared_allergies, dispensed_medicines, vaccinations_of
from ...selectors.records import synthesis_for
from .base import (
    FhirView,
    Search,
    SearchError,
    SearchSpec,
    fhir_response,
    operation_outcome,
    resource_data,
    search_request,
)

# --- references -------------------------------------------------------------------------------
# The builders of dmp/fhir.py reference resources by the urn:uuid full URLs of a Bundle. A REST
# answer references them as "Patient/12", "Practitioner/3", as a FHIR client expects.

def rest_references(resource: Resource, *targets: Resource | None) -> Resource:
    """`resource` with its references to `targets` written as relative REST references."""
    names = {fhir.full_url(t.get_resource_type(), t.id): f"{t.get_resource_type()}/{t.id}" for t in targets if t}

    def rewrite(value):
        if isinstance(value, dict):
            return {k: (names.get(v, v) if k == "reference" else rewrite(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [rewrite(v) for v in value]
        return value

    return type(resource).model_validate(rewrite(resource_data(resource)))


# --- what the actor may read of one patient ---------------------------------------------------

def _subject_and_author(record: Record, synthesis: Synthesis | None):
    subject = fhir.patient(record)
    author = fhir.practitioner(synthesis.author) if synthesis is not None else None
    return subject, author


def _latest_synthesis(actor: Actor, record: Record) -> Synthesis | None:
    # synthesis_for asks VIEW_SYNTHESIS, writes the audit entry and raises Http404 if refused.
    return synthesis_for(actor, record)


def _personal_data(actor: Actor, record: Record) -> None:
    if not authorise_read(actor, Action.VIEW_PERSONAL_DATA, record):
        raise Http404


def conditions_for(actor: Actor, record: Record) -> list[Resource]:
    synthesis = _latest_synthesis(actor, record)
    if synthesis is None:
        return []
    subject, author = _subject_and_author(record, synthesis)
    return [rest_references(c, subject, author) for c in fhir.conditions(synthesis, subject=subject, recorder=author)]


def allergies_for(actor: Actor, record: Record) -> list[Resource]:
    synthesis = _latest_synthesis(actor, record)
    _personal_data(actor, record)
    declared = declared_allergies(record)
    subject, author = _subject_and_author(record, synthesis)
    return [rest_references(a, subject, author)
            for a in fhir.allergies(subject=subject, synthesis=synthesis, recorder=author, declared=declared)]


def medications_for(actor: Actor, record: Record) -> list[Resource]:
    synthesis = _latest_synthesis(actor, record)
    dispensed = dispensed_medicines(actor, record)
    subject, author = _subject_and_author(record, synthesis)
    return [rest_references(m, subject, author) for m in fhir.medication_statements(
        subject=subject, synthesis=synthesis, recorder=author, dispensed=dispensed)]


def immunizations_for(actor: Actor, record: Record) -> list[Resource]:
    _personal_data(actor, record)
    subject = fhir.patient(record)
    return [rest_references(fhir.immunization(v, subject=subject), subject)
            for v in vaccinations_of(record)]


# --- ids -> the patient they belong to ----------------------------------------------------------

def _record_of(model: type[Model], pk: str, path: str) -> int | None:
    return model.objects.filter(pk=int(pk)).values_list(path, flat=True).first()


def _locate_condition(rid: str) -> int | None:
    return _record_of(SynthesisProblem, rid, "synthesis__record_id") if rid.isdigit() else None


def _locate_immunization(rid: str) -> int | None:
    return _record_of(Vaccination, rid, "record_id") if rid.isdigit() else None


_SYNTHESIS_ITEM = re.compile(r"synthesis-(\d{1,18})-\d{1,6}")
_DECLARED = re.compile(r"declared-(\d{1,18})")
_DISPENSED = re.compile(r"dispensed-(\d{1,18})")


def _locate_allergy(rid: str) -> int | None:
    if m := _SYNTHESIS_ITEM.fullmatch(rid):
        return _record_of(Synthesis, m[1], "record_id")
    if m := _DECLARED.fullmatch(rid):
        return _record_of(SelfDeclaredItem, m[1], "record_id")
    return None


def _locate_medication(rid: str) -> int | None:
    if m := _SYNTHESIS_ITEM.fullmatch(rid):
        return _record_of(Synthesis, m[1], "record_id")
    if m := _DISPENSED.fullmatch(rid):
        return _record_of(ReimbursementLine, m[1], "record_id")
    return None


@dataclass(frozen=True)
class ResourceType:
    name: str
    action: str  # the action a refused or missing attempt is logged under
    collect: Callable[[Actor, Record], list[Resource]]
    locate: Callable[[str], int | None]
    patient_params: tuple[str, ...]
    description: str


TYPES = {
    t.name: t for t in (
        ResourceType("Condition", Action.VIEW_SYNTHESIS, conditions_for, _locate_condition, ("patient", "subject"),
                     "The current problems of the patient's medical synthesis, ICD-10 coded."),
        ResourceType("AllergyIntolerance", Action.VIEW_SYNTHESIS, allergies_for, _locate_allergy, ("patient",),
                     "Allergies: the synthesis' (confirmed) and those the patient declared (unconfirmed)."),
        ResourceType("MedicationStatement", Action.VIEW_SYNTHESIS, medications_for, _locate_medication,
                     ("patient", "subject"),
                     "Current treatments from the synthesis, and medicines dispensed in the last 24 months "
                     "when the matrix lets the professional read the reimbursement history."),
        ResourceType("Immunization", Action.VIEW_PERSONAL_DATA, immunizations_for, _locate_immunization,
                     ("patient",), "The patient's vaccination record."),
    )
}


def _record_or_404(actor: Actor, pk: int | None, action: str, object_id: str) -> Record:
    """The record, or Http404 with the attempt logged: the same answer for a missing record as
    for one the policy refuses (which the collecting functions log and refuse themselves)."""
    record = Record.objects.filter(pk=pk).first() if pk is not None else None
    if record is None:
        authorise_read(actor, action, None, object_id=object_id)
        raise Http404
    return record


_PATIENT_REF = re.compile(r"(?:(?:.*/)?Patient/)?([0-9]{1,18})")


def patient_id(request, names: tuple[str, ...]) -> int | None:
    """The patient a search is about, from `patient=` (or `subject=`): `12`, `Patient/12` or an
    absolute URL ending in `Patient/12`. None for a value that cannot name a patient (→ 404)."""
    values = [request.query_params.get(n) for n in names if request.query_params.get(n)]
    if not values:
        raise ParseError(f"A search needs the patient: ?{names[0]}=<Patient id>.")
    m = _PATIENT_REF.fullmatch(values[0].strip())
    return int(m[1]) if m else None


DEFAULT_COUNT = 100  # a patient's problems, allergies, medicines or vaccines: one page as a rule
MAX_COUNT = 500


def search_spec(kind: ResourceType) -> SearchSpec:
    """What the search of one clinical type accepts: the patient, and the paging."""
    definitions = {"patient": "clinical-patient", "subject": f"{kind.name}-subject"}
    return SearchSpec(parameters=tuple((name, "reference", definitions[name]) for name in kind.patient_params),
                      default_count=DEFAULT_COUNT, max_count=MAX_COUNT)


def searchset(request, resources: list[Resource], search: Search, record: Record, name: str) -> Bundle:
    """A page of `resources` (built in full: they come from one synthesis and a few lists),
    with the total and the links, which carry the patient and the paging only."""
    url = request.build_absolute_uri(reverse(f"fhir:{name.lower()}-search"))
    page = [] if search.count_only else search.page.of(resources)
    return Bundle(
        type="searchset",
        total=len(resources),
        link=search.links(url, [("patient", str(record.pk))], len(resources)),
        entry=[BundleEntry(
            fullUrl=request.build_absolute_uri(reverse(f"fhir:{r.get_resource_type().lower()}-read",
                                                       kwargs={"rid": r.id})),
            resource=r, search={"mode": "match"},
        ) for r in page] or None,
    )


_NOT_FOUND = OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome: no such patient or resource, "
                                                                "or the policy refuses it (the same answer).")
COMMON_ERRORS = {
    401: OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome: no valid bearer token."),
    403: OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome: not a professional with a second "
                                                          "factor."),
    404: _NOT_FOUND,
}
class ClinicalSearchView(FhirView):
    """GET /fhir/{type}?patient={id}: a searchset Bundle of the patient's resources of that type."""

    resource_type = ""

    def get(self, request):
        kind = TYPES[self.resource_type]
        try:
            search = search_request(request, request.query_params, search_spec(kind))
        except SearchError as error:
            return operation_outcome(400, str(error))
        pk = patient_id(request, kind.patient_params)
        actor = Actor.from_request(request)
        record = _record_or_404(actor, pk, kind.action, f"record:{pk}" if pk is not None else "record:?")
        return fhir_response(searchset(request, kind.collect(actor, record), search, record, kind.name))


class ClinicalReadView(FhirView):
    """GET /fhir/{type}/{id}: one resource, if the search on its patient would list it."""

    resource_type = ""

    def get(self, request, rid: str):
        kind = TYPES[self.resource_type]
        actor = Actor.from_request(request)
        record = _record_or_404(actor, kind.locate(rid), kind.action, f"{kind.name.lower()}:{rid}"[:40])
        for resource in kind.collect(actor, record):
            if resource.id == rid:
                return fhir_response(resource)
        raise Http404


def _views(kind: ResourceType):
    """The search and read views of one resource type, each described in the OpenAPI schema."""
    patient_params = [
        OpenApiParameter(name, str, OpenApiParameter.QUERY, required=False,
                         description="The Patient id (`12` or `Patient/12`)."
                         + (" Required." if len(kind.patient_params) == 1 else " `patient` or `subject` is required."))
        for name in kind.patient_params
    ]
    search = extend_schema_view(get=extend_schema(
        operation_id=f"fhir_{kind.name.lower()}_search", summary=f"Search {kind.name} by patient",
        description=kind.description, parameters=patient_params, tags=["FHIR clinical"],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description=f"Bundle of type searchset of {kind.name}."),
                   400: OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome: no patient given."),
                   **COMMON_ERRORS},
    ))(type(f"{kind.name}SearchView", (ClinicalSearchView,), {"resource_type": kind.name}))
    read = extend_schema_view(get=extend_schema(
        operation_id=f"fhir_{kind.name.lower()}_read", summary=f"Read a {kind.name}",
        description=kind.description, tags=["FHIR clinical"],
        parameters=[OpenApiParameter("rid", str, OpenApiParameter.PATH, pattern=r"^[A-Za-z0-9\-\.]{1,64}$",
                                     description="The resource id, as a search returns it.")],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description=f"The {kind.name}."), **COMMON_ERRORS},
    ))(type(f"{kind.name}ReadView", (ClinicalReadView,), {"resource_type": kind.name}))
    return search, read


urlpatterns: list = []
for _kind in TYPES.values():
    _search, _read = _views(_kind)
    _name = _kind.name.lower()
    urlpatterns += [
        re_path(rf"^{_kind.name}$", _search.as_view(), name=f"{_name}-search"),
        re_path(rf"^{_kind.name}/(?P<rid>[A-Za-z0-9\-\.]{{1,64}})$", _read.as_view(), name=f"{_name}-read"),
    ]
