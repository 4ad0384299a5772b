"""FHIR metadata: the CapabilityStatement (`GET /fhir/metadata`) and the OpenAPI 3 description
of the API (`GET /fhir/openapi.json`, drf-spectacular). Both are public, as a FHIR server's
metadata usually is: they describe the API, never a record (see dmp/api/fhir/__init__.py).

The CapabilityStatement lists what the three resource modules offer; a module that adds an
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

from .base import FHIR_JSON, FhirView, fhir_response

FHIR_VERSION = "4.0.1"
SEARCH_PARAM_BASE = "http://hl7.org/fhir/SearchParameter"
IPS_SUMMARY = "http://hl7.org/fhir/uv/ips/OperationDefinition/summary"

# What each resource offers: interactions, search parameters (name, type, definition).
_PATIENT_REFERENCE = ("patient", "reference", "clinical-patient")
RESOURCES: dict[str, dict] = {
    "Patient": {
        "interactions": ["read", "search-type"],
        "search": [("identifier", "token", "Patient-identifier"), ("family", "string", "individual-family"),
                   ("given", "string", "individual-given"), ("birthdate", "date", "individual-birthdate")],
        "operations": [("summary", IPS_SUMMARY)],
        "documentation": "Read, and search by identifier (NIR: urn:oid:1.2.250.1.213.1.4.8, provisional "
                         "identifier: urn:dmp:provisional-identifier) or by family, given and birthdate together "
                         "(also POST Patient/_search). Only the patients you may open are returned.",
    },
    "DocumentReference": {
        "interactions": ["create", "read", "search-type"],
        "search": [_PATIENT_REFERENCE, ("category", "token", "DocumentReference-category"),
                   ("type", "token", "clinical-type"), ("date", "date", "DocumentReference-date"),
                   ("author", "reference", "DocumentReference-author")],
        "conditional_create": True,
        "documentation": "Create with the file inline (base64 attachment) or as a Binary created first; the same "
                         "content pushed twice for the same patient returns the existing DocumentReference. "
                         "If-None-Exist is supported. Category: the nine spaces (urn:dmp:space).",
    },
    "Binary": {"interactions": ["create", "read"], "search": [],
               "documentation": "A document's file."},
    "AllergyIntolerance": {"interactions": ["read", "search-type"], "search": [_PATIENT_REFERENCE],
                           "documentation": "From the synthesis and the patient's declarations."},
    "Condition": {"interactions": ["read", "search-type"], "search": [_PATIENT_REFERENCE],
                  "documentation": "The synthesis' problems, ICD-10 coded."},
    "MedicationStatement": {"interactions": ["read", "search-type"], "search": [_PATIENT_REFERENCE],
                            "documentation": "From the synthesis."},
    "Immunization": {"interactions": ["read", "search-type"], "search": [_PATIENT_REFERENCE],
                     "documentation": "The vaccination record."},
    "AuditEvent": {"interactions": ["search-type"], "search": [("patient", "reference", "AuditEvent-patient")],
                   "documentation": "The patient's access history: for the médecin traitant only among "
                                    "professionals."},
}

# --- IHE MHD publishing (PDSm) and versions: dmp/api/fhir/mhd.py, documents.py ---------------
# POST /fhir/ takes transaction and batch Bundles (ITI-65 Provide Document Bundle); a
# DocumentReference is updated only to withdraw it (entered-in-error), and its versions chain
# is its history (`_history/<vid>`, meta.versionId, ETag, If-Match).
SYSTEM_INTERACTIONS = ["transaction", "batch"]
RESOURCES["DocumentReference"]["interactions"] += ["update", "vread"]
RESOURCES["DocumentReference"]["versioning"] = "versioned-update"
RESOURCES["DocumentReference"]["documentation"] += (
    " IHE MHD (ANS PDSm): publish with a transaction Bundle at the base (List submission set, DocumentReference, "
    "Binary); masterIdentifier, identifiers, LOINC and DMP type codes and DMP visibility labels are kept; "
    "relatesTo replaces makes a new version; PUT with status entered-in-error withdraws your own document.")
# --- end of the MHD block ------------------------------------------------------------------


def capability_statement(base_url: str) -> CapabilityStatement:
    resources = []
    for name, spec in RESOURCES.items():
        entry = {
            "type": name,
            "documentation": spec["documentation"],
            "interaction": [{"code": code} for code in spec["interactions"]],
            "searchParam": [{"name": n, "type": t, "definition": f"{SEARCH_PARAM_BASE}/{d}"}
                            for n, t, d in spec["search"]] or None,
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
                             "as the portals. What you may not see is answered 404, like what does not exist.",
            "security": {"description": "Authorization: Bearer <API token>, created in the professional portal "
                                        "(health professionals with a second factor only)."},
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
