"""FHIR metadata: the CapabilityStatement (`GET /fhir/metadata`) and the OpenAPI 3 description
of the API (`GET /fhir/openapi.json`, drf-spectacular). Both are public, as a FHIR server's
metadata usually is: they describe the API, never a record (see dmp/api/fhir/__init__.py).

The CapabilityStatement lists what the resource modules offer, written from their search specs; a module that adds an
interaction or a search parameter says so here too."""

from __future__ import annotations

from django.urls import path, reverse
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularJSONAPIView
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from rest_framework.permissions import AllowAny

from . import audit, clinical, documents, patient, practitioner, results
from .base import FHIR_JSON, FhirView, SearchSpec, fhir_response

FHIR_VERSION = "4.0.1"
SEARCH_PARAM_BASE = "http://hl7.org/fhir/SearchParameter"
IPS_SUMMARY = "http://hl7.org/fhir/uv/ips/OperationDefinition/summary"

# What each resource offers: interactions, and the search each search module declares (its
# SearchSpec: the parameters it accepts, its `_sort` and `_include` values). A test walks the
# routes and the specs and compares them with the statement.
RESOURCES: dict[str, dict] = {
    "Patient": {
        "interactions": ["read", "search-type"],
        "search": patient.SEARCH,
        "operations": [("summary", IPS_SUMMARY)],
        "documentation": "Read, and search by identifier (NIR: urn:oid:1.2.250.1.213.1.4.8, provisional "
                         "identifier: urn:dmp:provisional-identifier) or by family, given and birthdate together "
                         "(also POST Patient/_search). Only the patients you may open are returned. One page "
                         "(_count at most 50) and no next link: the criteria are never put in a link.",
    },
    "DocumentReference": {
        "interactions": ["create", "read", "search-type"],
        "search": documents.SEARCH,
        "conditional_create": True,
        "documentation": "Create with the file inline (base64 attachment) or as a Binary created first; the same "
                         "content pushed twice for the same patient returns the existing DocumentReference. "
                         "If-None-Exist is supported. Category: the nine spaces (urn:dmp:space). Search (IHE MHD "
                         "ITI-67): date is when the document was added to the record, period the date of the "
                         "act; status lists current documents only; setting, facility, event and format match the "
                         "codings the client sent (format also the mime type, urn:ietf:bcp:13); security-label the "
                         "visibility (TRE_A07 codes, v3-Confidentiality N); related the version a document "
                         "replaces. Tokens: code, system|code, |code, system|, :not, :missing; names: starts with "
                         "(case and accents ignored), :exact, :contains.",
    },
    "Binary": {"interactions": ["create", "read"],
               "documentation": "A document's file."},
    **{name: {"interactions": ["read", "search-type"], "search": clinical.search_spec(kind),
              "documentation": kind.description} for name, kind in clinical.TYPES.items()},
    "AuditEvent": {"interactions": ["search-type"], "search": audit.SEARCH,
                   "documentation": "The patient's access history: for the médecin traitant only among "
                                    "professionals."},
    "Practitioner": {"interactions": ["read", "search-type"], "search": practitioner.PRACTITIONER_SEARCH,
                     "documentation": "Yourself, the authors of the documents you may read and of the syntheses "
                                      "you may read; no search by name (not a directory). _revinclude "
                                      "DocumentReference:author adds their newest documents you may read "
                                      "(at most 50)."},
    "Organization": {"interactions": ["read", "search-type"], "search": practitioner.ORGANIZATION_SEARCH,
                     "documentation": "Your own facility."},
}

# --- laboratory results: dmp/api/fhir/results.py ---------------------------------------------
RESOURCES["Observation"] = {
    "interactions": ["read", "search-type"], "search": results.OBSERVATION_SEARCH,
    "documentation": "Laboratory values, each visible exactly where its report's document is. Search by patient "
                     "(required), code (LOINC), date (effective) and category (laboratory); newest first. Created "
                     "with their DiagnosticReport in a transaction Bundle at the base."}
RESOURCES["DiagnosticReport"] = {
    "interactions": ["read", "search-type"], "search": results.REPORT_SEARCH,
    "documentation": "Laboratory reports (category LAB); presentedForm is the report's document (Binary/<id>), "
                     "the legal copy. A laboratory posts a transaction Bundle at the base: DiagnosticReport, its "
                     "Observations (a quantity needs its UCUM unit) and its PDF as presentedForm or a "
                     "DocumentReference (+ Binary); without a PDF one is rendered from the values. The same report "
                     "twice (identifier, or content) is stored once."}
# --- end of the laboratory results block -----------------------------------------------------

# --- IHE MHD publishing (PDSm) and versions: dmp/api/fhir/mhd.py, documents.py ---------------
# POST /fhir/ takes transaction and batch Bundles (ITI-65 Provide Document Bundle); a
# DocumentReference is updated only to withdraw it (entered-in-error), and its versions chain
# is its history (`_history/<vid>`, meta.versionId, ETag, If-Match).
SYSTEM_INTERACTIONS = ["transaction", "batch"]
RESOURCES["DocumentReference"]["interactions"] += ["update", "vread", "history-instance"]
RESOURCES["DocumentReference"]["versioning"] = "versioned-update"
RESOURCES["Patient"]["interactions"] += ["vread", "history-instance"]
RESOURCES["Patient"]["versioning"] = "versioned"
RESOURCES["Patient"]["documentation"] += (
    " Versions: the current one only (meta.versionId is a digest of the resource, ETag the same; lastUpdated "
    "and Last-Modified when the identity last changed); _history holds it alone. _revinclude "
    "DocumentReference:patient adds the newest documents you may read (at most 50).")
RESOURCES["DocumentReference"]["documentation"] += (
    " IHE MHD (ANS PDSm): publish with a transaction Bundle at the base (List submission set, DocumentReference, "
    "Binary); masterIdentifier, identifiers, LOINC and DMP type codes and DMP visibility labels are kept; "
    "relatesTo replaces makes a new version; PUT with status entered-in-error withdraws your own document.")
# --- end of the MHD block ------------------------------------------------------------------


def _search_params(spec: SearchSpec | None) -> list[dict] | None:
    if spec is None:
        return None
    return [{"name": n, "type": t, "definition": f"{SEARCH_PARAM_BASE}/{d}"} for n, t, d in spec.parameters] or None


def capability_statement(base_url: str) -> CapabilityStatement:
    resources = []
    for name, spec in RESOURCES.items():
        search = spec.get("search")
        entry = {
            "type": name,
            "documentation": spec["documentation"],
            "interaction": [{"code": code} for code in spec["interactions"]],
            "searchParam": _search_params(search),
            "searchInclude": list(search.includes) or None if search else None,
            "searchRevInclude": list(search.revincludes) or None if search else None,
            "operation": [{"name": n, "definition": d} for n, d in spec.get("operations", [])] or None,
        }
        if spec.get("conditional_create"):
            entry["conditionalCreate"] = True
        if spec.get("versioning"):
            entry["versioning"] = spec["versioning"]
        resources.append({k: v for k, v in entry.items() if v is not None})
    return CapabilityStatement(
        status="active",
        date=timezone.now(),
        publisher="DMP",
        kind="instance",
        software={"name": "DMP"},
        implementation={"description": "DMP – practice-software FHIR API", "url": base_url},
        fhirVersion=FHIR_VERSION,
        format=["json"],
        rest=[{
            "mode": "server",
            "documentation": "Every request passes through the same access policy and writes the same audit log "
                             "as the portals. What you may not see is answered 404, like what does not exist. "
                             "Searches: _count (each search has its maximum), next/previous links, "
                             "_summary=count, total; unknown parameters are ignored (and not repeated in the "
                             "links) unless Prefer: handling=strict, which makes them a 400. JSON only: "
                             "_format=xml is 406.",
            "security": {"description": "Authorization: Bearer <API token>, created in the professional portal "
                                        "(health professionals with a second factor only). Each token has its own "
                                        "hourly request limit (429 with Retry-After beyond)."},
            "resource": resources,
            "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
        }],
    )


class Metadata(FhirView):
    """`GET /fhir/metadata`: public."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="metadata", summary="The server's CapabilityStatement", tags=["metadata"], auth=[],
        responses={(200, FHIR_JSON): OpenApiResponse(OpenApiTypes.OBJECT, description="CapabilityStatement")},
    )
    def get(self, request):
        base = request.build_absolute_uri(reverse("fhir:metadata")).removesuffix("/metadata")
        return fhir_response(capability_statement(base))


class OpenApiSchema(SpectacularJSONAPIView):
    """`GET /fhir/openapi.json`: the OpenAPI 3 description of the FHIR API, public."""

    authentication_classes: list = []
    permission_classes = [AllowAny]


def fhir_endpoints_only(endpoints):
    """drf-spectacular preprocessing hook: describe the FHIR API only, not its own schema URL."""
    return [(path_, regex, method, callback) for path_, regex, method, callback in endpoints
            if path_.startswith("/fhir/") and path_ != "/fhir/openapi.json"]


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """The API tokens, as an OpenAPI security scheme."""

    target_class = "dmp.api.authentication.ApiTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "An API token (dmp_…) created in the professional portal."}


urlpatterns = [
    path("metadata", Metadata.as_view(), name="metadata"),
    path("openapi.json", OpenApiSchema.as_view(), name="openapi"),
]
