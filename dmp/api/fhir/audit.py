"""FHIR AuditEvent: `GET /fhir/AuditEvent?patient={id}`, the record's access history (see
dmp/api/fhir/__init__.py for the conventions).

Built on `access_history_for()`: the policy's VIEW_ACCESS_HISTORY decides (among professionals,
the médecin traitant only) and the read is logged. A refusal is the 404 of a missing patient.
Each entry says who, when, what (the action), how (the access mode) and whether it was refused;
never a document's title or anything medical."""

from __future__ import annotations

from django.http import Http404
from django.urls import path, reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from fhir.resources.R4B.auditevent import AuditEvent, AuditEventAgent, AuditEventEntity, AuditEventSource
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntrySearch
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.reference import Reference

from ...models import AuditEntry
from ...policy import Action, Actor
from ...selectors.history import ACTION_WORDS, MODE_WORDS, ROLE_WORDS
from ...selectors.records import access_history_for, get_record_for
from .base import FHIR_JSON, FhirView, SearchError, SearchSpec, fhir_response, operation_outcome, search_request
from .patient import record_pk

DICOM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
ACTION_SYSTEM = "urn:dmp:audit-action"
MODE_SYSTEM = "urn:dmp:access-mode"
ROLE_SYSTEM = "urn:dmp:role"
DEFAULT_COUNT = 100
MAX_COUNT = 500
# Newest first, the one order (`_sort=-date` says so and changes nothing).
SEARCH = SearchSpec(parameters=(("patient", "reference", "AuditEvent-patient"),),
                    default_count=DEFAULT_COUNT, max_count=MAX_COUNT, sorts=("-date",))

# FHIR AuditEvent.action: C create, R read, U update, D delete, E execute.
_READS = {Action.VIEW_RECORD, Action.VIEW_DOCUMENT, Action.VIEW_SYNTHESIS, Action.VIEW_PERSONAL_DATA,
          Action.VIEW_REIMBURSEMENTS, Action.VIEW_ACCESS_HISTORY, Action.EXPORT_RECORD, Action.FIND_RECORD,
          Action.VIEW_ADMIN_STATUS}
_CREATES = {Action.ADD_DOCUMENT, Action.DEPOSIT_DOCUMENT, Action.CREATE_RECORD, Action.REPLACE_DOCUMENT}
_UPDATES = {Action.EDIT_SYNTHESIS, Action.EDIT_PERSONAL_DATA, Action.ATTACH_NIR, Action.HIDE_DOCUMENT,
            Action.HIDE_FROM_REPRESENTATIVES, Action.ARCHIVE_DOCUMENT, Action.RELEASE_DOCUMENT}


def fhir_action(action: str) -> str:
    if action in _READS:
        return "R"
    if action in _CREATES:
        return "C"
    if action in _UPDATES:
        return "U"
    return "E"


def audit_event(entry: AuditEntry, *, patient_reference: str) -> AuditEvent:
    role = ROLE_WORDS.get(entry.role)
    return AuditEvent(
        id=str(entry.seq),
        type=Coding(system=DICOM_SYSTEM, code="110110", display="Patient Record"),
        subtype=[Coding(system=ACTION_SYSTEM, code=entry.action,
                        display=str(ACTION_WORDS.get(entry.action, "")) or None)],
        action=fhir_action(entry.action),
        recorded=entry.at,
        # 0 success, 4 minor failure: a refusal is an attempt that did not happen.
        outcome="0" if entry.allowed else "4",
        outcomeDesc=None if entry.allowed else "Refused",
        purposeOfEvent=[CodeableConcept(coding=[Coding(system=MODE_SYSTEM, code=entry.mode,
                                                       display=str(MODE_WORDS.get(entry.mode, "")) or None)])],
        agent=[AuditEventAgent(
            who=Reference(display=entry.actor_label or "—"),
            type=CodeableConcept(coding=[Coding(system=ROLE_SYSTEM, code=entry.role, display=str(role))])
            if role and entry.role else None,
            requestor=True,
        )],
        source=AuditEventSource(observer=Reference(display="DMP")),
        entity=[AuditEventEntity(what=Reference(reference=patient_reference))],
    )


class AuditEventSearch(FhirView):
    """`GET /fhir/AuditEvent?patient={id}[&_count=&_offset=]`: newest first, a searchset Bundle."""

    @extend_schema(
        operation_id="AuditEvent_search", summary="The patient's access history", tags=["AuditEvent"],
        parameters=[
            OpenApiParameter("patient", str, required=True, description="The Patient's id (or Patient/{id})"),
            OpenApiParameter("_count", int, description=f"Entries per page (default {DEFAULT_COUNT}, "
                                                        f"at most {MAX_COUNT}: more is brought down to it)"),
            OpenApiParameter("_offset", int, description="Entries to skip"),
        ],
        responses={
            (200, FHIR_JSON): OpenApiResponse(OpenApiTypes.OBJECT, description="Bundle (searchset) of AuditEvent"),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome: missing or invalid parameter"),
            401: OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome"),
            403: OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome"),
            404: OpenApiResponse(OpenApiTypes.OBJECT,
                                 description="OperationOutcome: no such patient, or its history is not yours to read"),
        },
    )
    def get(self, request):
        params = request.query_params
        try:
            search = search_request(request, params, SEARCH)
        except SearchError as error:
            return operation_outcome(400, str(error))
        patient = params.get("patient", "").strip()
        if not patient:
            return operation_outcome(400, "The patient search parameter is required.")
        try:
            pk = record_pk(patient)
        except Http404:
            return operation_outcome(404, "Resource not found.")
        actor = Actor.from_request(request)
        record = get_record_for(actor, pk)
        entries = access_history_for(actor, record)
        total = entries.count()
        patient_url = f"Patient/{record.pk}"
        base = request.build_absolute_uri(reverse("fhir:auditevent-search"))
        bundle = Bundle(
            type="searchset",
            timestamp=timezone.now(),
            total=total,
            link=search.links(base, [("patient", str(record.pk))], total),
            entry=[
                BundleEntry(fullUrl=f"{base}/{entry.seq}", resource=audit_event(entry, patient_reference=patient_url),
                            search=BundleEntrySearch(mode="match"))
                for entry in ([] if search.count_only else search.page.of(entries))
            ] or None,
        )
        return fhir_response(bundle)


urlpatterns = [
    path("AuditEvent", AuditEventSearch.as_view(), name="auditevent-search"),
]
