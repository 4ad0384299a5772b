"""FHIR documents endpoints: DocumentReference create, read and search, Binary create and read
(see dmp/api/fhir/__init__.py for the conventions).

- A document is pushed as a DocumentReference whose `content[0].attachment` carries the file
  inline (`data`, base64) or points with `url` "Binary/<id>" at a file uploaded first with
  `POST /fhir/Binary`. An uploaded Binary is kept, encrypted, in the cache for BINARY_TTL
  seconds, for the professional who uploaded it only; it becomes a document when a
  DocumentReference points at it.
- The same file twice in a record is never stored twice: the existing DocumentReference comes
  back (200) with a `meta.tag` and an `X-DMP-Outcome` header that say so. `If-None-Exist`
  takes `identifier=urn:dmp:content-sha256|<sha256>` (the `masterIdentifier` every
  DocumentReference carries) or `_content-hash=<sha256>`.
- Reads go through `get_record_for` / `get_document_for` / `documents_matching` (the listing
  of the portals' documents screens, with the same `DocumentFilters`): the policy
  decides, the audit log records, and a refused resource is the same 404 as a missing one.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import parse_qs

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.http import http_date
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.reference import Reference
from pydantic import ValidationError
from rest_framework import status

from ... import access_log, fhir
from ...file_safety import check_file, sniff_mime_type
from ...http import document_file_name, protected_file_response
from ...models import ApiToken, Document, DocumentType, Professional, Record
from ...models.documents import SPACE_OF_TYPE, documents_kept_once
from ...policy import Action, Actor, decide
from ...selectors import DocumentFilters, documents_matching, get_document_for, get_record_for
from ...selectors.clinician import records_found_for
from ...selectors.document_search import NameTest, documents_by_author_name, documents_where
from ...services import (
    AccessRefused,
    ClientMetadata,
    InvalidInput,
    InvalidInputCode,
    Publication,
    document_withdraw,
    documents_publish,
)
from ...storage import cipher
from .base import FHIR_JSON, FhirView, SearchError, SearchSpec, fhir_response, operation_outcome, search_request
from .patient import SearchError as PatientSearchError
from .patient import patient_identifier

CONTENT_HASH_SYSTEM = "urn:dmp:content-sha256"
WITHHELD_UNTIL_URL = "urn:dmp:withheld-until"
OUTCOME_SYSTEM = "urn:dmp:api-outcome"
LOINC_SYSTEM = "http://loinc.org"
# A document's format (`content.format`, the XDS formatCode): the client's, else IHE's "the
# mime type says it all" (PDF, PNG, JPEG carry no structure of their own); and the mime type.
FORMAT_SYSTEM = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
_MIME_TYPE_SUFFICIENT = (FORMAT_SYSTEM, "urn:ihe:iti:xds:2017:mimeTypeSufficient")
MIME_SYSTEM = "urn:ietf:bcp:13"
# CDA R2 documents come as XML (IHE: application/xml, also text/xml): docs/cda.md.
ACCEPTED_TYPES = ("application/pdf", "image/png", "image/jpeg", "application/xml", "text/xml")
BINARY_TTL = 3600  # seconds an uploaded Binary waits for its DocumentReference
_BINARY_PREFIX = "upload-"
_BINARY_ID = re.compile(r"upload-[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PG_MAX_INT = 2**31 - 1  # the primary keys are 32-bit integers
DEFAULT_COUNT = 50  # DocumentReferences per search page (`_count`), and the most there can be:
MAX_COUNT = 100  # a whole record in one answer was megabytes and seconds (issue 16)

_T = DocumentType
# The document types of the DMP's value set (ANS, JDV_J07-XdsTypeCode-CISIS: LOINC and the
# French TRE_A05-TypeDocComplementaire codes) that are types of ours, and a few more LOINC
# codes practice software sends. A code that is not here is refused by name (422), never
# filed under a guess.
LOINC_TYPES = {
    "11488-4": _T.CONSULTATION_REPORT,  # CR ou fiche de consultation ou de visite
    "34108-1": _T.CONSULTATION_REPORT,  # Outpatient note
    "34117-2": _T.CONSULTATION_REPORT,  # History and physical note
    "78513-9": _T.CONSULTATION_REPORT,  # CR de consultation en ophtalmologie
    "29274-8": _T.CONSULTATION_REPORT,  # Mesures de signes vitaux (CSE-MDE: a child's measures at a consultation)
    "11490-0": _T.DISCHARGE_LETTER,  # Lettre de liaison à la sortie d'un établissement de soins
    "18842-5": _T.DISCHARGE_LETTER,  # Discharge summary
    "11502-2": _T.LAB_REPORT,  # CR d'examens biologiques
    "96173-0": _T.LAB_REPORT,  # Test rapide d'orientation diagnostique (TROD: the ANS's BIO-TROD model)
    "11505-5": _T.THERAPEUTIC_ACT_REPORT,  # CR d'acte thérapeutique (autre)
    "11506-3": _T.AUXILIARY_CARE_REPORT,  # CR ou fiche de suivi de soins par auxiliaire médical
    "15507-7": _T.EMERGENCY_REPORT,  # CR de passage aux urgences
    "15508-5": _T.DELIVERY_REPORT,  # CR d'accouchement
    "18776-5": _T.CARE_PLAN,  # Plan personnalisé de soins
    "18748-4": _T.IMAGING_REPORT,  # CR d'imagerie médicale
    "68604-8": _T.IMAGING_REPORT,  # Radiology diagnostic study note
    "18761-7": _T.TRANSFER_NOTE,  # Note de transfert
    "34112-3": _T.HOSPITAL_STAY_REPORT,  # CR hospitalier (séjour)
    "34133-9": _T.EPISODE_SYNTHESIS,  # Synthèse d'épisode de soins
    "34749-2": _T.PRE_ANAESTHESIA_REPORT,  # CR de consultation pré-anesthésique
    "34794-8": _T.MDT_MEETING_REPORT,  # CR de réunion de concertation pluridisciplinaire
    "34874-8": _T.OPERATIVE_REPORT,  # CR opératoire
    "11504-8": _T.OPERATIVE_REPORT,  # Surgical operation note
    "47420-5": _T.FUNCTIONAL_ASSESSMENT,  # CR de bilan fonctionnel
    "51969-4": _T.MOLECULAR_GENETICS,  # CR de génétique moléculaire
    "52040-3": _T.NON_DICOM_IMAGE,  # Document encapsulant une image d'illustration non DICOM
    "57828-6": _T.OTHER_PRESCRIPTION,  # Prescription (autre)
    "57832-8": _T.CARE_PRESCRIPTION,  # Prescription de soins
    "57833-6": _T.MEDICATION_PRESCRIPTION,  # Prescription de produits de santé
    "60568-3": _T.PATHOLOGY_REPORT,  # CR d'anatomie et de cytologie pathologiques
    "11526-1": _T.PATHOLOGY_REPORT,  # Pathology study
    "60591-5": _T.RECORD_SYNTHESIS,  # Synthèse médicale
    "60593-1": _T.MEDICATION_DISPENSING,  # Dispensation médicamenteuse
    "67851-6": _T.ADMISSION_REPORT,  # CR d'admission
    "70004-7": _T.DIAGNOSTIC_ACT_REPORT,  # CR d'acte diagnostique (autre)
    "75482-0": _T.PREVENTIVE_THERAPY_REPORT,  # CR d'acte thérapeutique à visée préventive
    "75492-9": _T.SCREENING_REPORT,  # CR d'acte diagnostique à visée préventive ou de dépistage
    "77436-4": _T.ANAESTHESIA_REPORT,  # CR d'anesthésie
    "80565-5": _T.ADMINISTRATION_REPORT,  # CR d'administration de médicaments
    "85208-7": _T.TELEMEDICINE_REPORT,  # CR de télémédecine
    "89601-9": _T.CERTIFICATE,  # Certificat médical
}
# TRE_A05-TypeDocComplementaire, by its FHIR URL or its OID.
FR_TYPE_SYSTEMS = ("https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire",
                   "urn:oid:1.2.250.1.213.1.1.4.12")
FR_TYPES = {
    "BIL_AUTO": _T.AUTONOMY_ASSESSMENT, "CERT_DECL": _T.CERTIFICATE, "DISP_AUT": _T.OTHER_DISPENSING,
    "PROT_ALD": _T.ALD_PROTOCOL, "REMB": _T.REIMBURSEMENT_DATA, "SYNTH": _T.SYNTHESIS,
    "EXPPAT_1": _T.PATIENT_DOCUMENT, "EXPPAT_2": _T.PATIENT_DOCUMENT, "EXPPAT_3": _T.ADVANCE_DIRECTIVES,
    **dict.fromkeys(["PRESC-KINE", "PRESC-INF", "PRESC-PEDI", "PRESC-ORTHOPHO", "PRESC-ORTHOPTIE"],
                    _T.CARE_PRESCRIPTION),
    **dict.fromkeys(["PRESC-BIO", "PRESC-AAT"], _T.OTHER_PRESCRIPTION),
}
# The document's visibility as the DMP codes it (TRE_A07-StatutVisibiliteDocument), and the
# HL7 confidentiality code every DMP document carries (N).
VISIBILITY_SYSTEMS = ("https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument",
                      "urn:oid:1.2.250.1.213.1.1.4.13")
CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
NOT_VISIBLE_TO_PATIENT = "INVISIBLE_PATIENT"
HIDDEN_FROM_PROFESSIONALS = "MASQUE_PS"
HIDDEN_FROM_REPRESENTATIVES = "INVISIBLE_REP_LEGAUX"
# A result "not yet visible to the patient" without a date of its own becomes visible by itself
# after this many days, as the professional portal's default.
DEFAULT_WITHHELD_DAYS = 15


class FhirError(Exception):
    """An answer other than success, as an OperationOutcome with its status."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _max_request_bytes(files: int = 1) -> int:
    # base64 makes a file 4/3 as large; the JSON around it is small.
    return files * (settings.DOCUMENT_MAX_BYTES * 4 // 3 + 64 * 1024)


def unsupported_format() -> FhirError:
    """The 415 of a file in none of ACCEPTED_TYPES: one message wherever a file comes in."""
    return FhirError(415, _("Only PDF files, images (PNG, JPEG) and CDA R2 documents (XML) can be added "
                            "to a record."))


def _too_large() -> FhirError:
    limit = {"mb": settings.DOCUMENT_MAX_BYTES // 2**20}
    return FhirError(413, _("The file is too large (at most %(mb)d MB).") % limit)


def _check_request_size(request, *, files: int = 1) -> None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > _max_request_bytes(files):
        raise _too_large()


def _resource_body(request, resource_type: str) -> dict:
    data = request.data
    if not isinstance(data, dict) or not data:
        raise FhirError(400, _("The body must be a FHIR %(type)s resource in JSON.") % {"type": resource_type})
    if data.get("resourceType") != resource_type:
        raise FhirError(400, _("The resource must be a %(type)s.") % {"type": resource_type})
    return data


def _validation_message(exc: ValidationError) -> str:
    # Where and what, never the submitted value (it may be the file, or medical words).
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "__root__")
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", "invalid"))
    return _("Invalid resource: %(errors)s") % {"errors": "; ".join(parts)}


def _id_of(reference: str | None, resource_type: str) -> int | None:
    """The numeric id of "Patient/12" (or a full URL ending so); None if it is not one."""
    match = re.search(rf"(?:^|/){resource_type}/(\d{{1,10}})$", (reference or "").strip())
    if match is None:
        match = re.fullmatch(r"(\d{1,10})", (reference or "").strip())
    if match is None or int(match.group(1)) > _PG_MAX_INT:
        return None
    return int(match.group(1))


def _int_id(value: str) -> int:
    if not value.isdigit() or len(value) > 10 or int(value) > _PG_MAX_INT:
        raise Http404
    return int(value)


# --- building what the API returns -----------------------------------------------------------


def version_tag(document: Document) -> str:
    """The ETag of a DocumentReference: its version in the document's versions chain."""
    return f'W/"{document.version}"'


def _status(document: Document) -> str:
    if document.status == Document.Status.ENTERED_IN_ERROR:
        return "entered-in-error"
    # Archived by the patient is not superseded: the document stays valid, out of sight.
    return "current" if document.is_latest_version else "superseded"


def _security_labels(document: Document) -> list[CodeableConcept]:
    labels = [CodeableConcept(coding=[fhir._coding(CONFIDENTIALITY_SYSTEM, "N", "normal")])]
    marks = ((document.is_withheld_from_patient(), NOT_VISIBLE_TO_PATIENT, "Non visible par le patient"),
             (document.hidden_from_professionals, HIDDEN_FROM_PROFESSIONALS, "Masqué aux professionnels de santé"),
             (document.hidden_from_representatives, HIDDEN_FROM_REPRESENTATIVES,
              "Non visible par les représentants légaux du patient"))
    labels += [CodeableConcept(coding=[fhir._coding(VISIBILITY_SYSTEMS[0], code, display)])
               for marked, code, display in marks if marked]
    return labels


def _with_client_codings(concept: CodeableConcept, codings: list[dict]) -> CodeableConcept:
    ours = {(c.system, c.code) for c in concept.coding or []}
    extra = [Coding(**c) for c in codings if (c.get("system"), c.get("code")) not in ours]
    return CodeableConcept(coding=[*(concept.coding or []), *extra], text=concept.text)


def _with_client_context(resource: DocumentReference, codings: dict) -> None:
    """The context and format codings the client sent, where it put them; the format is IHE's
    "mime type sufficient" when it sent none."""
    for key, element in (("setting", "practiceSetting"), ("facility", "facilityType")):
        if codings.get(key):
            setattr(resource.context, element, CodeableConcept(coding=[Coding(**c) for c in codings[key]]))
    if codings.get("event"):
        resource.context.event = [CodeableConcept(coding=[Coding(**c)]) for c in codings["event"]]
    formats = codings.get("format") or [dict(zip(("system", "code"), _MIME_TYPE_SUFFICIENT, strict=True))]
    resource.content[0].format = Coding(**formats[0])


def document_resource(document: Document, *, duplicate: bool = False) -> DocumentReference:
    """A document as the API gives it: dmp/fhir.py's DocumentReference, with REST references
    (Patient/…, Practitioner/…, Binary/…), the client's masterIdentifier (else the content
    hash), identifiers and codings as it sent them, the status of its version (current,
    superseded, entered-in-error), the version it replaces, its visibility as security labels,
    and `meta.versionId` (its version in the chain) and `meta.lastUpdated`."""
    subject = fhir.patient(document.record)
    author = fhir.practitioner(document.author_professional) if document.author_professional_id else None
    resource = fhir.document_reference(document, subject=subject, url=f"Binary/{document.pk}", author=author)
    resource.subject = Reference(reference=f"Patient/{document.record_id}")
    if author is not None:
        resource.author = [Reference(reference=f"Practitioner/{author.id}", display=author.name[0].text)]
        if document.author_professional.facility_id:  # the author's institution, as PDSm gives it
            resource.author.append(Reference(reference=f"PractitionerRole/{author.id}", type="PractitionerRole"))
    elif document.author_kind == Document.AuthorKind.PATIENT:
        resource.author = [Reference(reference=f"Patient/{document.record_id}")]
    content_hash = Identifier(system=CONTENT_HASH_SYSTEM, value=document.content_hash)
    if document.master_identifier:
        resource.masterIdentifier = Identifier(system=document.master_identifier_system or None,
                                               value=document.master_identifier)
        resource.identifier = [*(Identifier(**i) for i in document.identifiers), content_hash]
    else:
        resource.masterIdentifier = content_hash
        resource.identifier = [Identifier(**i) for i in document.identifiers] or None
    codings = document.codings or {}
    resource.type = _with_client_codings(resource.type, codings.get("type", []))
    resource.category = [_with_client_codings(resource.category[0], codings.get("category", []))]
    _with_client_context(resource, codings)
    resource.status = _status(document)
    resource.securityLabel = _security_labels(document)
    if document.replaces_id:
        target = {"reference": f"DocumentReference/{document.replaces_id}"}
        resource.relatesTo = [{"code": "replaces", "target": target}]
    tags = list(resource.meta.tag) if resource.meta and resource.meta.tag else []
    if duplicate:
        tags.append(fhir._coding(OUTCOME_SYSTEM, "duplicate", "This file was already in the record: "
                                                              "the existing DocumentReference is returned."))
    resource.meta = Meta(versionId=str(document.version), lastUpdated=document.last_changed(), tag=tags or None)
    return resource


def version_headers(document: Document) -> dict[str, str]:
    """ETag and Last-Modified of a DocumentReference read."""
    return {"ETag": version_tag(document), "Last-Modified": http_date(document.last_changed().timestamp())}


def _document_answer(request, document: Document, *, created: bool = False, duplicate: bool = False):
    headers = {"Location": request.build_absolute_uri(f"/fhir/DocumentReference/{document.pk}"),
               **version_headers(document)}
    if duplicate:
        headers["X-DMP-Outcome"] = "duplicate: this file is already in the record; existing DocumentReference returned"
    return fhir_response(document_resource(document, duplicate=duplicate),
                         status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK, headers=headers)


# --- reading a pushed DocumentReference ------------------------------------------------------


def _doc_type(resource: DocumentReference) -> str:
    """Our type for the pushed `type`: a code of ours, a LOINC code or a French DMP code of the
    maps above (the first coding that maps). None that maps is refused, naming the codes."""
    codings = (resource.type.coding or []) if resource.type else []
    if not codings:
        raise FhirError(400, _("DocumentReference.type needs a coding (system %(system)s).")
                        % {"system": fhir.DOCUMENT_TYPE_SYSTEM})
    for coding in codings:
        if coding.system == fhir.DOCUMENT_TYPE_SYSTEM and coding.code in DocumentType.values:
            return coding.code
        if coding.system == LOINC_SYSTEM and coding.code in LOINC_TYPES:
            return LOINC_TYPES[coding.code]
        if coding.system in FR_TYPE_SYSTEMS and coding.code in FR_TYPES:
            return FR_TYPES[coding.code]
    codes = ", ".join(f"{c.system or '?'}|{c.code or '?'}" for c in codings)
    raise FhirError(422, _("Document type %(codes)s cannot be filed under a type of the record: use a LOINC code "
                           "of the DMP's value set or a code of %(system)s.")
                    % {"codes": codes, "system": fhir.DOCUMENT_TYPE_SYSTEM})


def _client_codings(resource: DocumentReference) -> dict:
    """The codings the client sent, as given (system, code, display), to be read back and
    searched: type and class, the context's practice setting, facility type and events, the
    content's format; ours (urn:dmp:…) are not kept twice."""
    def kept(codings) -> list[dict]:
        return [{k: v for k, v in (("system", c.system), ("code", c.code), ("display", c.display)) if v}
                for c in codings if c is not None and c.system not in (fhir.DOCUMENT_TYPE_SYSTEM, fhir.SPACE_SYSTEM)
                and c.code]

    def of(concepts) -> list:
        return [coding for concept in concepts if concept is not None for coding in concept.coding or []]

    context = resource.context
    codings = {"type": kept(of([resource.type])), "category": kept(of(resource.category or [])),
               "setting": kept(of([context.practiceSetting] if context else [])),
               "facility": kept(of([context.facilityType] if context else [])),
               "event": kept(of(context.event or [] if context else [])),
               "format": kept([content.format for content in resource.content or []])}
    return {key: value for key, value in codings.items() if value}


def _visibility(resource: DocumentReference) -> tuple[bool, bool, bool]:
    """(not yet visible to the patient, hidden from professionals, hidden from the legal
    representatives) from `securityLabel`. The HL7 confidentiality "N" and the DMP's visibility
    codes are understood; any other label is refused by name rather than ignored: the client
    would believe a restriction that nothing enforces."""
    withheld = hidden_pro = hidden_reps = False
    for concept in resource.securityLabel or []:
        for coding in concept.coding or []:
            if coding.system == CONFIDENTIALITY_SYSTEM and coding.code == "N":
                continue
            if coding.system in VISIBILITY_SYSTEMS and coding.code == NOT_VISIBLE_TO_PATIENT:
                withheld = True
            elif coding.system in VISIBILITY_SYSTEMS and coding.code == HIDDEN_FROM_PROFESSIONALS:
                hidden_pro = True
            elif coding.system in VISIBILITY_SYSTEMS and coding.code == HIDDEN_FROM_REPRESENTATIVES:
                hidden_reps = True
            else:
                raise FhirError(422, _("Security label %(code)s is not supported.")
                                % {"code": f"{coding.system or '?'}|{coding.code or '?'}"})
    return withheld, hidden_pro, hidden_reps


def _check_category(resource: DocumentReference, doc_type: str) -> None:
    for concept in resource.category or []:
        for coding in concept.coding or []:
            if coding.system == fhir.SPACE_SYSTEM and coding.code != SPACE_OF_TYPE[doc_type]:
                raise FhirError(422, _("The category does not match the document type (space %(space)s).")
                                % {"space": SPACE_OF_TYPE[doc_type]})


def _act_date(resource: DocumentReference) -> date:
    period = resource.context.period if resource.context else None
    value = (period.start if period else None) or resource.date
    if value is None:
        return timezone.localdate()
    if isinstance(value, datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


def _withheld_until(resource: DocumentReference) -> datetime | None:
    for extension in resource.extension or []:
        if extension.url == WITHHELD_UNTIL_URL:
            value = extension.valueDateTime
            if not isinstance(value, datetime):
                raise FhirError(400, _("%(url)s needs a valueDateTime with a time.") % {"url": WITHHELD_UNTIL_URL})
            return value if timezone.is_aware(value) else timezone.make_aware(value)
    return None


def _content(resource: DocumentReference, actor: Actor,
             bundled: dict[str, tuple[bytes, str]] | None = None) -> tuple[bytes, str | None, str | None]:
    """The file's bytes, the contentType the client declared, and the staged Binary it came
    from (to forget once stored). In a Bundle, `attachment.url` may name one of its Binary
    entries by fullUrl (`bundled`: urn:uuid:… → bytes and contentType)."""
    attachment = resource.content[0].attachment if resource.content else None
    if attachment is None:
        raise FhirError(400, _("DocumentReference.content[0].attachment is required."))
    declared = attachment.contentType
    if declared is not None and declared.split(";")[0].strip().lower() not in ACCEPTED_TYPES:
        raise unsupported_format()
    if attachment.data is not None:
        content = attachment.data
        return (content if isinstance(content, bytes) else _decode(content)), declared, None
    if attachment.url and bundled is not None and attachment.url.strip() in bundled:
        content, content_type = bundled[attachment.url.strip()]
        return content, declared or content_type, None
    if attachment.url:
        binary_id = attachment.url.strip().removeprefix("Binary/")
        staged = _staged_binary(binary_id, actor)
        if staged is None:
            raise FhirError(422, _("The attachment url must be \"Binary/<id>\" of a Binary you uploaded in the "
                                   "last hour."))
        return staged, declared, binary_id
    raise FhirError(400, _("The attachment needs `data` (base64) or `url` (Binary/<id>)."))


def _decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise FhirError(400, _("The attachment data is not valid base64.")) from None


def _checked_bytes(content: bytes, declared: str | None) -> None:
    if not content:
        raise FhirError(400, _("The file is empty."))
    if len(content) > settings.DOCUMENT_MAX_BYTES:
        raise _too_large()
    sniffed = sniff_mime_type(content)
    if sniffed is None:
        raise unsupported_format()
    declared_type = (declared or "").split(";")[0].strip().lower().replace("text/xml", "application/xml")
    if declared is not None and declared_type != sniffed:
        raise FhirError(422, _("The content is not what contentType says (%(declared)s).") % {"declared": declared})


# --- staged Binary uploads --------------------------------------------------------------------


def _cache_key(binary_id: str) -> str:
    return f"fhir:binary:{binary_id}"


def _stage_binary(content: bytes, actor: Actor) -> str:
    binary_id = f"{_BINARY_PREFIX}{secrets.token_hex(16)}"
    cache.set(_cache_key(binary_id), {"professional": actor.professional.pk, "data": cipher().encrypt(content)},
              timeout=BINARY_TTL)
    return binary_id


def _staged_binary(binary_id: str, actor: Actor) -> bytes | None:
    if not _BINARY_ID.fullmatch(binary_id):
        return None
    entry = cache.get(_cache_key(binary_id))
    if not entry or entry.get("professional") != actor.professional.pk:
        return None
    return cipher().decrypt(entry["data"])


# --- the create itself ---------------------------------------------------------------------


def _record_to_add_to(actor: Actor, record_id: int | None, doc_type: str) -> Record:
    """The record, if the actor may add this type to it. Refused and missing are the same 404
    (logged); a professional who may read the record but not write to it (emergency access is
    read-only, the personal space is the patient's) gets 403 with the policy's reason."""
    record = Record.objects.filter(pk=record_id).first() if record_id is not None else None
    decision = decide(actor, Action.ADD_DOCUMENT, record, doc_type=doc_type)
    if not decision.allowed:
        # The refusal, in the access log at once; the allowed add is written by the service,
        # with the document, once it is stored.
        access_log.refusal(actor, Action.ADD_DOCUMENT, decision, None, record=record,
                           object_id="" if record is not None else f"record:{record_id}")
        if record is None:
            raise Http404
        if decide(actor, Action.VIEW_RECORD, record).allowed:
            raise FhirError(403, str(decision.reason) or _("This action is not allowed."))
        raise Http404
    return record


def _if_none_exist_hash(request) -> str | None:
    criteria = request.headers.get("If-None-Exist", "").strip()
    if not criteria:
        return None
    for part in criteria.lstrip("?").split("&"):
        name, _sep, value = part.partition("=")
        value = value.strip().lower()
        if name == "_content-hash" and _SHA256.fullmatch(value):
            return value
        if name == "identifier" and value.startswith(f"{CONTENT_HASH_SYSTEM}|"):
            digest = value.split("|", 1)[1]
            if _SHA256.fullmatch(digest):
                return digest
    raise FhirError(400, _("If-None-Exist takes identifier=%(system)s|<sha256> or _content-hash=<sha256>.")
                    % {"system": CONTENT_HASH_SYSTEM})


def _subject_record_id(subject: Reference | None) -> int | None:
    """The record a pushed document is for: `Patient/<id>`, a conditional reference
    `Patient?identifier=<system>|<value>` (as the PDSm guide's Bundles give it) or an
    `identifier`, with the INS-NIR or our provisional identifier. None when nothing matches:
    the caller answers it like a record it may not open."""
    if subject is None or not (subject.reference or subject.identifier):
        raise FhirError(400, _("DocumentReference.subject must be a reference to Patient/<id>."))
    reference = (subject.reference or "").strip()
    system = value = None
    if reference.startswith("Patient?"):
        params = parse_qs(reference.removeprefix("Patient?"))
        system, _sep, value = (params.get("identifier") or [""])[0].rpartition("|")
    elif subject.identifier is not None and not reference:
        system, value = subject.identifier.system, subject.identifier.value
    else:
        return _id_of(reference, "Patient")
    value = (value or "").strip().upper()
    if system == fhir.INS_NIR_SYSTEM and value:
        return Record.objects.filter(nir=value).values_list("pk", flat=True).first()
    if system == fhir.PROVISIONAL_ID_SYSTEM and value:
        return Record.objects.filter(provisional_id=value).values_list("pk", flat=True).first()
    raise FhirError(400, _("A subject identifier must be an INS-NIR (%(nir)s) or a provisional identifier "
                           "(%(provisional)s).")
                    % {"nir": fhir.INS_NIR_SYSTEM, "provisional": fhir.PROVISIONAL_ID_SYSTEM})


def _master_identifier(resource: DocumentReference) -> tuple[str, str]:
    """The client's own id of the document (system, value); ("", "") if it sent none, or only
    our content hash (which is what it read from us)."""
    master = resource.masterIdentifier
    if master is None or not master.value or master.system == CONTENT_HASH_SYSTEM:
        return "", ""
    if len(master.value) > 255 or len(master.system or "") > 255:
        raise FhirError(400, _("The masterIdentifier is too long."))
    return master.system or "", master.value


def _identifiers(resource: DocumentReference) -> tuple[dict, ...]:
    return tuple({k: v for k, v in (("system", i.system), ("value", i.value), ("use", i.use)) if v}
                 for i in resource.identifier or [] if i.value and i.system != CONTENT_HASH_SYSTEM)


def _replaced(actor: Actor, resource: DocumentReference, record: Record,
              created: dict[str, Document] | None = None) -> Document | None:
    """The document a `relatesTo` replaces points at (`DocumentReference/<id>`), in this record,
    if the actor may read it (else the same 404 as a missing one). Whether they may replace it
    is the policy's question, asked by the service."""
    targets = [r.target for r in resource.relatesTo or [] if r.code == "replaces"]
    if not targets:
        return None
    if len(targets) > 1:
        raise FhirError(422, _("A document replaces one document at most."))
    document_id = _id_of(targets[0].reference, "DocumentReference")
    if document_id is None:
        raise FhirError(400, _("relatesTo.target must be a reference to DocumentReference/<id>."))
    try:
        document = get_document_for(actor, document_id)
    except Http404:
        raise Http404 from None
    if document.record_id != record.pk:
        raise Http404
    return document


@dataclass
class Prepared:
    """A pushed DocumentReference, read and checked, ready for the service; or the document
    already in the record that it is (the same file, or the same masterIdentifier)."""

    publication: Publication | None = None
    existing: Document | None = None
    staged_binary: str | None = None


def _existing(actor: Actor, record: Record, *, digest: str | None = None,
              master: tuple[str, str] = ("", "")) -> Document | None:
    """The document of the record with this content or this client masterIdentifier, if the
    actor may read it; a 409 if it is there but not theirs to read, or if the masterIdentifier
    is already another file's. A withdrawn document is no copy (`documents_kept_once`)."""
    documents = documents_kept_once(record)
    found = None
    if master[1]:
        found = documents.filter(master_identifier_system=master[0], master_identifier=master[1]).first()
        if found is not None and digest is not None and found.content_hash != digest:
            raise FhirError(409, _("This masterIdentifier is already another document's in the record."))
    if found is None and digest is not None:
        found = documents.filter(content_hash=digest).first()
    if found is None:
        return None
    try:
        return get_document_for(actor, found.pk)
    except Http404:
        raise FhirError(409, _("This file is already in the record.")) from None


def prepare_document(actor: Actor, resource: DocumentReference, *, if_none_exist: str | None = None,
                     bundled: dict[str, tuple[bytes, str]] | None = None) -> Prepared:
    """Read a pushed DocumentReference into what `document_add` takes: the record (the policy's
    ADD_DOCUMENT, refusal logged), the type from its codings, the title and dates, the file
    (checked once, here), what the client said of it and the version it replaces. Raises
    FhirError (or Http404) for anything refused; nothing is written."""
    if resource.status not in (None, "current"):
        raise FhirError(422, _("A new document has the status current."))
    record_id = _subject_record_id(resource.subject)
    doc_type = _doc_type(resource)
    _check_category(resource, doc_type)
    title = (resource.description or (resource.content[0].attachment.title if resource.content else None)
             or str(DocumentType(doc_type).label)).strip()
    act_date = _act_date(resource)
    withheld_until = _withheld_until(resource)
    withheld, hidden_pro, hidden_reps = _visibility(resource)
    if withheld and withheld_until is None:
        withheld_until = timezone.now() + timedelta(days=DEFAULT_WITHHELD_DAYS)
    record = _record_to_add_to(actor, record_id, doc_type)
    master = _master_identifier(resource)
    if if_none_exist is not None and (existing := _existing(actor, record, digest=if_none_exist)) is not None:
        return Prepared(existing=existing)
    content, declared, binary_id = _content(resource, actor, bundled)
    _checked_bytes(content, declared)
    try:
        # Checked once, here: the digest is that of what would be stored (an image is encoded
        # again), so the same file pushed twice finds its document.
        checked = check_file(content)
    except InvalidInput as exc:
        raise FhirError(422, str(exc)) from None
    existing = _existing(actor, record, digest=checked.digest, master=master)
    if existing is not None:
        return Prepared(existing=existing, staged_binary=binary_id)
    client = ClientMetadata(
        master_identifier_system=master[0], master_identifier=master[1], identifiers=_identifiers(resource),
        codings=_client_codings(resource), hidden_from_professionals=hidden_pro,
        hidden_from_representatives=hidden_reps,
    )
    publication = Publication(record=record, content=content, doc_type=doc_type, title=title, act_date=act_date,
                              withheld_until=withheld_until, replaces=_replaced(actor, resource, record),
                              checked=checked, client=client)
    return Prepared(publication=publication, staged_binary=binary_id)


def service_refusal(exc: AccessRefused) -> Exception:
    """A service's refusal as the API answers it: a document or record the actor may not see is
    the same 404 as a missing one; a rule that refuses what they can see (replacing someone
    else's document) is 403 with the policy's reason."""
    decision = exc.decision
    if decision.rule in ("document_not_visible", "no_standing") or decision.mode == "none":
        return Http404()
    return FhirError(403, str(decision.reason) or _("This action is not allowed."))


def parse_document_reference(data: dict) -> DocumentReference:
    try:
        return DocumentReference.model_validate(data)
    except ValidationError as exc:
        if any(error.get("type") == "base64_decode" for error in exc.errors()):
            raise FhirError(400, _("The attachment data is not valid base64.")) from None
        raise FhirError(400, _validation_message(exc)) from None


def create_document_reference(request, actor: Actor):
    _check_request_size(request)
    resource = parse_document_reference(_resource_body(request, "DocumentReference"))
    prepared = prepare_document(actor, resource, if_none_exist=_if_none_exist_hash(request))
    if prepared.existing is None:
        try:
            document = documents_publish(actor=actor, publications=[prepared.publication])[0]
        except AccessRefused as exc:
            raise service_refusal(exc) from None
        except InvalidInput as exc:
            if exc.code == InvalidInputCode.DUPLICATE:  # a race with another push of the same file
                publication = prepared.publication
                existing = _existing(actor, publication.record, digest=publication.checked.digest)
                if existing is not None:
                    return _document_answer(request, existing, duplicate=True)
                raise FhirError(409, str(exc)) from None
            raise FhirError(422, str(exc)) from None
        created = True
    else:
        document, created = prepared.existing, False
    if prepared.staged_binary is not None:
        cache.delete(_cache_key(prepared.staged_binary))
    return _document_answer(request, document, created=created, duplicate=not created)


def update_document_reference(request, actor: Actor, document_id: int):
    """An update (PUT) may change one thing: the status, to entered-in-error, which withdraws the
    author's document (`document_withdraw`: the policy's rule for replacing). A new content is
    a new version (`relatesTo` replaces); anything else is refused. `If-Match` guards it."""
    document = get_document_for(actor, document_id)
    resource = parse_document_reference(_resource_body(request, "DocumentReference"))
    if resource.id is not None and resource.id != str(document.pk):
        raise FhirError(400, _("The resource id does not match the URL."))
    check_if_match(request.headers.get("If-Match"), document)
    if resource.status != "entered-in-error":
        raise FhirError(422, _("An update can only set the status to entered-in-error; publish a new version with "
                               "relatesTo replaces to change a document."))
    return fhir_response(document_resource(withdraw(actor, document)), headers=version_headers(document))


def withdraw(actor: Actor, document: Document) -> Document:
    try:
        return document_withdraw(actor=actor, document=document)
    except AccessRefused as exc:
        raise service_refusal(exc) from None
    except InvalidInput as exc:
        raise FhirError(409, str(exc)) from None


def check_if_match(value: str | None, document: Document) -> None:
    """`If-Match: W/"<version>"` (or the bare version): 412 if the document is no longer that."""
    if value is None:
        return
    wanted = value.strip().removeprefix("W/").strip('"')
    if wanted != str(document.version) or not document.is_latest_version:
        raise FhirError(412, _("The document has changed since you read it (version %(version)s now).")
                        % {"version": document.version})


def document_version(actor: Actor, document: Document, version_id: str) -> Document:
    """Version `version_id` of the document's versions chain (the history `_history/<vid>`
    reads), if the actor may read it; 404 otherwise."""
    if not version_id.isdigit() or len(version_id) > 6:
        raise Http404
    wanted = int(version_id)
    current = document
    while current.version > wanted and current.replaces_id is not None:
        current = Document.objects.only("pk", "version", "replaces_id").get(pk=current.replaces_id)
    while current.version < wanted:
        newer = Document.objects.filter(replaces_id=current.pk).only("pk", "version", "replaces_id").first()
        if newer is None:
            raise Http404
        current = newer
    if current.version != wanted:
        raise Http404
    return current if current.pk == document.pk else get_document_for(actor, current.pk)


MAX_HISTORY = 100  # versions a history Bundle holds at most (a chain is a few versions long)


def document_history(actor: Actor, document: Document) -> list[Document]:
    """The versions of the document's chain the actor may read, newest first: what we keep of
    its history. Each version is its own DocumentReference (its own id, `relatesTo` replaces
    the one before); a change of status or visibility is not a version, only its state now."""
    latest = document
    while (newer := Document.objects.filter(replaces_id=latest.pk).only("pk", "version").first()) is not None:
        latest = newer
    versions = []
    for version_id in range(latest.version, max(latest.version - MAX_HISTORY, 0), -1):
        try:
            versions.append(document_version(actor, document, str(version_id)))
        except Http404:
            continue  # a version the actor may not read is not in their history
    return versions


def history_bundle(request, resources: list[tuple[object, dict[str, str]]]) -> Bundle:
    """A Bundle of type history: each (resource, its version headers), newest first."""
    base = request.build_absolute_uri("/fhir/")
    return Bundle(type="history", total=len(resources), entry=[
        BundleEntry(fullUrl=f"{base}{resource.get_resource_type()}/{resource.id}", resource=resource,
                    request={"method": "POST" if resource.meta.versionId == "1" else "PUT",
                             "url": f"{resource.get_resource_type()}/{resource.id}"},
                    response={"status": "200 OK", "etag": headers["ETag"]})
        for resource, headers in resources] or None)


# --- search ----------------------------------------------------------------------------------

_DATE_VALUE = re.compile(r"(eq|ne|gt|lt|ge|le|sa|eb)?(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(T.*)?")


def _date_range(raw: str) -> tuple[str, date, date]:
    match = _DATE_VALUE.fullmatch(raw.strip())
    if match is None:
        raise FhirError(400, _("Invalid date parameter: use [ge|le|gt|lt|eq|ne]YYYY[-MM[-DD]]."))
    prefix, year, month, day, _time = match.groups()
    try:
        if day:
            start = end = date(int(year), int(month), int(day))
        elif month:
            start = date(int(year), int(month), 1)
            end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        else:
            start, end = date(int(year), 1, 1), date(int(year), 12, 31)
    except ValueError:
        raise FhirError(400, _("Invalid date parameter: use [ge|le|gt|lt|eq|ne]YYYY[-MM[-DD]].")) from None
    return prefix or "eq", start, end


def _date_bounds(values: list[str]) -> tuple[date | None, date | None, tuple[tuple[date, date], ...]]:
    """FHIR date parameters (each one more condition) as bounds: the latest start, the
    earliest end, and the periods excluded by `ne`."""
    date_from, date_to, excluded = None, None, []
    for raw in values:
        prefix, start, end = _date_range(raw)
        low = high = None
        if prefix == "eq":
            low, high = start, end
        elif prefix == "ne":
            excluded.append((start, end))
        elif prefix == "ge":
            low = start
        elif prefix in ("gt", "sa"):
            low = end + timedelta(days=1)
        elif prefix == "le":
            high = end
        else:  # lt, eb
            high = start - timedelta(days=1)
        if low and (date_from is None or low > date_from):
            date_from = low
        if high and (date_to is None or high < date_to):
            date_to = high
    return date_from, date_to, tuple(excluded)


@dataclass(frozen=True)
class _Token:
    """One value of a token parameter: `code` (any system), `system|code`, `|code` (a coding
    without a system) or `system|` (any code of the system). None: anything goes."""

    system: str | None
    code: str | None

    def matches(self, codings: set[tuple[str, str]]) -> bool:
        return any((self.system is None or system == self.system) and (self.code is None or code == self.code)
                   for system, code in codings)


def _tokens(value: str, name: str) -> tuple[_Token, ...]:
    """The values of one occurrence of a token parameter (comma = or)."""
    tokens = []
    for item in value.split(","):
        system, sep, code = item.strip().rpartition("|")
        if not code and not system or len(item) > 300:
            raise FhirError(400, f"{name}: a code, system|code, |code or system| is required.")
        tokens.append(_Token(system=system if sep else None, code=code or None))
    return tuple(tokens)


def _missing(value: str, name: str) -> bool:
    if value not in ("true", "false"):
        raise FhirError(400, f"{name}:missing takes true or false.")
    return value == "true"


# The codings each token parameter of the search compares, per document: ours (the space, the
# type and the LOINC and French codes that are filed under it, the visibility flags, the file's
# type), and those the client sent, kept as given (category, type, context, format).
_CODES_OF_TYPE: dict[str, set[tuple[str, str]]] = {}
for _code, _type in LOINC_TYPES.items():
    _CODES_OF_TYPE.setdefault(_type, set()).add((LOINC_SYSTEM, _code))
for _code, _type in FR_TYPES.items():
    _CODES_OF_TYPE.setdefault(_type, set()).update((system, _code) for system in FR_TYPE_SYSTEMS)


def _kept(document: Document, key: str) -> set[tuple[str, str]]:
    return {(c.get("system", ""), c.get("code", "")) for c in (document.codings or {}).get(key, [])}


def _labels(document: Document) -> set[tuple[str, str]]:
    return {(label.coding[0].system, label.coding[0].code) for label in _security_labels(document)}


_DOCUMENT_CODINGS: dict[str, Callable[[Document], set[tuple[str, str]]]] = {
    "status": lambda d: {(STATUS_SYSTEM, _status(d))},
    "category": lambda d: {(fhir.SPACE_SYSTEM, d.space)} | _kept(d, "category"),
    "type": lambda d: {(fhir.DOCUMENT_TYPE_SYSTEM, d.doc_type)} | _CODES_OF_TYPE.get(d.doc_type, set())
    | _kept(d, "type"),
    "security-label": _labels,
    "setting": lambda d: _kept(d, "setting"),
    "facility": lambda d: _kept(d, "facility"),
    "event": lambda d: _kept(d, "event"),
    "format": lambda d: {(MIME_SYSTEM, d.mime_type), *(_kept(d, "format") or {_MIME_TYPE_SUFFICIENT})},
}
TOKEN_PARAMETERS = tuple(_DOCUMENT_CODINGS)
_TOKEN_MODIFIERS = ("not", "missing")


@dataclass(frozen=True)
class _TokenTest:
    """One occurrence of a token parameter on a document's codings: any token matches (plain),
    none does (`:not`), or it has no coding at all (`:missing=true`) or some (`false`)."""

    codings_of: Callable[[Document], set[tuple[str, str]]]
    tokens: tuple[_Token, ...] = ()
    negated: bool = False
    missing: bool | None = None

    def __call__(self, document: Document) -> bool:
        codings = self.codings_of(document)
        if self.missing is not None:
            return (not codings) == self.missing
        return any(token.matches(codings) for token in self.tokens) != self.negated


def _token_tests(params) -> list[_TokenTest]:
    """One test per occurrence of a token parameter (repeated = and)."""
    tests = []
    for name, codings_of in _DOCUMENT_CODINGS.items():
        tests += [_TokenTest(codings_of, _tokens(value, name)) for value in params.getlist(name)]
        tests += [_TokenTest(codings_of, _tokens(value, name), negated=True) for value in params.getlist(f"{name}:not")]
        tests += [_TokenTest(codings_of, missing=_missing(value, name)) for value in params.getlist(f"{name}:missing")]
    return tests


_NAME_FIELDS = {"author.family": "last_name", "author.given": "first_name"}
_NAME_MODIFIERS = ("", "exact", "contains")


def _name_tests(params) -> list[NameTest]:
    """`author.family=mar` (starts with, case and accents ignored), `:exact` (the whole name,
    as written), `:contains` (anywhere, case and accents ignored)."""
    tests = []
    for name, field in _NAME_FIELDS.items():
        for modifier in _NAME_MODIFIERS:
            key = f"{name}:{modifier}" if modifier else name
            for value in params.getlist(key):
                if len(value) > 150:
                    raise FhirError(400, f"{key}: too long.")
                if value.strip():
                    tests.append(NameTest(field=field, value=value.strip(), modifier=modifier))
    return tests


def _related_ids(params) -> frozenset[int] | None:
    """`related`: the documents that replace DocumentReference/<id> (relatesTo)."""
    values = [item for value in params.getlist("related") for item in value.split(",")]
    if not values:
        return None
    return frozenset(i for i in (_id_of(v, "DocumentReference") for v in values) if i is not None)


def search_filters(params) -> DocumentFilters:
    """The search parameters SQL answers, as the filters of the portals' documents screen:
    `date` is DocumentReference.date (when the document was added to the record), `period`
    the date of the act (context.period). The token and name parameters are `narrowed`."""
    authors = None
    if params.getlist("author"):
        ids = {_id_of(value, "Practitioner") for value in params.getlist("author")}
        authors = frozenset(i for i in ids if i is not None)
    act_from, act_to, act_excluded = _date_bounds(params.getlist("period"))
    added_from, added_to, added_excluded = _date_bounds(params.getlist("date"))
    return DocumentFilters(author_professionals=authors, date_from=act_from, date_to=act_to,
                           excluded_periods=act_excluded, added_from=added_from, added_to=added_to,
                           added_excluded=added_excluded)


def narrowing(params) -> Callable[[QuerySet[Document]], QuerySet[Document]]:
    """What keeps a listing to the token, name and `related` parameters: read and checked
    here, before anything is (a malformed one is a 400), applied to the listing later."""
    tokens, names, related = _token_tests(params), _name_tests(params), _related_ids(params)
    missing = params.get("related:missing")
    no_predecessor = None if missing is None else _missing(missing, "related")

    def narrowed(documents: QuerySet[Document]) -> QuerySet[Document]:
        if no_predecessor is not None:
            documents = documents.filter(replaces__isnull=no_predecessor)
        if related is not None:
            documents = documents.filter(replaces_id__in=related)
        if names:
            documents = documents_by_author_name(documents, names)
        if tokens:
            documents = documents_where(documents, lambda d: all(test(d) for test in tokens))
        return documents

    return narrowed


STATUS_SYSTEM = "http://hl7.org/fhir/document-reference-status"
_DEFINITION = "DocumentReference-"
# What the DocumentReference search accepts (IHE MHD ITI-67 as the ANS PDSm guide profiles it).
SEARCH = SearchSpec(
    parameters=(
        ("patient", "reference", f"{_DEFINITION}patient"), ("subject", "reference", f"{_DEFINITION}subject"),
        ("patient.identifier", "token", "Patient-identifier"), ("status", "token", f"{_DEFINITION}status"),
        ("category", "token", f"{_DEFINITION}category"), ("type", "token", f"{_DEFINITION}type"),
        ("date", "date", f"{_DEFINITION}date"), ("period", "date", f"{_DEFINITION}period"),
        ("author", "reference", f"{_DEFINITION}author"), ("author.given", "string", "individual-given"),
        ("author.family", "string", "individual-family"),
        ("setting", "token", f"{_DEFINITION}setting"), ("facility", "token", f"{_DEFINITION}facility"),
        ("event", "token", f"{_DEFINITION}event"), ("security-label", "token", f"{_DEFINITION}security-label"),
        ("format", "token", f"{_DEFINITION}format"), ("related", "reference", f"{_DEFINITION}related"),
    ),
    modifiers=(*(f"{name}:{modifier}" for name in TOKEN_PARAMETERS for modifier in _TOKEN_MODIFIERS),
               *(f"{name}:{modifier}" for name in _NAME_FIELDS for modifier in _NAME_MODIFIERS if modifier),
               "related:missing"),
    default_count=DEFAULT_COUNT, max_count=MAX_COUNT,
    sorts=("date", "-date", "period", "-period"),
    includes=("DocumentReference:patient", "DocumentReference:subject", "DocumentReference:author"),
)
_ORDER = {"": ("-act_date", "-pk"), "-period": ("-act_date", "-pk"), "period": ("act_date", "pk"),
          "date": ("added_at", "pk"), "-date": ("-added_at", "-pk")}
# The parameters the search applies, carried by its Bundle's links as they were given (the
# patient is `patient`, given once as its id); nothing else of the query string is.
_KEPT_SEARCH_PARAMETERS = tuple(name for name, _type, _definition in SEARCH.parameters
                                if name not in ("patient", "subject", "patient.identifier")) + SEARCH.modifiers


def _searched_record(request, actor: Actor, params) -> Record | None:
    """The record of `patient` (or `subject`): 404 if missing or refused. Or the record of
    `patient.identifier` (NIR or provisional identifier): found as the Patient search finds
    it, None when nothing the professional may open matches (an empty Bundle, as there)."""
    patient = params.get("patient") or params.get("subject")
    identifier = params.get("patient.identifier", "").strip()
    if patient and identifier:
        raise FhirError(400, "Search by patient or by patient.identifier, not both.")
    if identifier:
        try:
            criteria = {"identifier": patient_identifier(identifier)}
        except PatientSearchError as error:
            raise FhirError(400, str(error)) from None
        found = records_found_for(actor, **criteria, human_limit=not isinstance(request.auth, ApiToken))
        if found.limited:
            raise FhirError(429, "Too many searches in the last hour; try again later.")
        return found.records[0] if found.records else None
    if not patient:
        raise FhirError(400, _("Search DocumentReference by patient: ?patient=<id>."))
    record_id = _id_of(patient, "Patient")
    if record_id is None:
        raise Http404
    return get_record_for(actor, record_id)  # the one audit entry of this search


def author_role(professional: Professional) -> PractitionerRole:
    """The PractitionerRole a DocumentReference's `author` points to: the professional in their
    facility (loaded with them), with REST references."""
    organization = Reference(reference=f"Organization/{professional.facility_id}",
                             display=professional.facility.name) if professional.facility_id else None
    return fhir.practitioner_role(professional, organization=organization, practitioner=Reference(
        reference=f"Practitioner/{professional.pk}", display=professional.user.get_full_name() or None))


def _author_entries(base: str, documents: list[Document]) -> list[BundleEntry]:
    """What `DocumentReference:author` points to, once each: the professional authors, their
    roles and their facilities (PDSm's author is a PractitionerRole whose organization is the
    author's institution). Authors of documents the asker may read, so theirs to see."""
    authors = sorted({d.author_professional_id: d.author_professional
                      for d in documents if d.author_professional_id}.items())
    facilities = dict(sorted({pro.facility_id: pro.facility for _pk, pro in authors if pro.facility_id}.items()))
    resources = [("Practitioner", fhir.practitioner(pro)) for _pk, pro in authors]
    resources += [("PractitionerRole", author_role(pro)) for _pk, pro in authors if pro.facility_id]
    resources += [("Organization", fhir.organization(facility)) for facility in facilities.values()]
    return [BundleEntry(fullUrl=f"{base}{kind}/{resource.id}", resource=resource, search={"mode": "include"})
            for kind, resource in resources]


def _included(base: str, record: Record, documents: list[Document], includes: tuple[str, ...]) -> list[BundleEntry]:
    """The resources `_include` asks for, once each: the patient, what the authors point to."""
    entries = []
    if {"DocumentReference:patient", "DocumentReference:subject"} & set(includes):
        entries.append(BundleEntry(fullUrl=f"{base}Patient/{record.pk}", resource=fhir.patient(record),
                                   search={"mode": "include"}))
    if "DocumentReference:author" in includes:
        entries += _author_entries(base, documents)
    return entries


# The documents `_revinclude` adds to a Patient or Practitioner search, at most (newest first):
# the rest is one DocumentReference search away.
REVINCLUDE_MAX = 50


def revincluded(request, documents: list[Document]) -> list[BundleEntry]:
    """Documents a search adds with `_revinclude` (search.mode include), read already."""
    base = request.build_absolute_uri("/fhir/")
    return [BundleEntry(fullUrl=f"{base}DocumentReference/{document.pk}", resource=document_resource(document),
                        search={"mode": "include"}) for document in documents]


def search_documents(request, actor: Actor):
    """A page of the record's documents the professional may read: the portals' listing
    (`documents_matching`) under the search's filters, newest act first unless `_sort` says
    otherwise, `_count` at a time (DEFAULT_COUNT, at most MAX_COUNT) from `_offset`, with the
    total, the paging links and the `_include`d resources."""
    params = request.query_params
    try:
        search = search_request(request, params, SEARCH)
    except SearchError as error:
        raise FhirError(400, str(error)) from None
    filters, narrowed = search_filters(params), narrowing(params)
    record = _searched_record(request, actor, params)
    base = request.build_absolute_uri("/fhir/")
    kept = [("patient", str(record.pk))] if record is not None else []
    kept += [(name, value) for name in _KEPT_SEARCH_PARAMETERS for value in params.getlist(name)]
    if record is None:
        if params.get("patient.identifier"):  # no NIR in a URL: the self link says nothing of it
            kept = [(name, value) for name, value in kept if name != "patient.identifier"]
        return fhir_response(Bundle(type="searchset", total=0,
                                    link=search.links(f"{base}DocumentReference", kept, 0)))
    # Ordered explicitly, whatever the selector's default: the pages must not overlap.
    documents = narrowed(documents_matching(actor, record, filters)).order_by(*_ORDER[search.sort])
    total = documents.count()
    entries = []
    if not search.count_only:
        page = list(search.page.of(documents.select_related("record", "author_professional__user",
                                                            "author_professional__facility")))
        entries = [BundleEntry(fullUrl=f"{base}DocumentReference/{document.pk}",
                               resource=document_resource(document), search={"mode": "match"})
                   for document in page]
        entries += _included(base, record, page, search.includes)
    bundle = Bundle(type="searchset", total=total, link=search.links(f"{base}DocumentReference", kept, total),
                    entry=entries or None)
    return fhir_response(bundle)


# --- views -----------------------------------------------------------------------------------

_FHIR_OBJECT = OpenApiResponse(OpenApiTypes.OBJECT, description="A FHIR resource (application/fhir+json).")
_OUTCOME = OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome.")


class _Errors:
    """Turn FhirError into its OperationOutcome."""

    def handle_exception(self, exc):
        if isinstance(exc, FhirError):
            return operation_outcome(exc.status_code, exc.message)
        return super().handle_exception(exc)


class DocumentReferenceTypeView(_Errors, FhirView):
    """DocumentReference search (by patient, category, type, date, author) and create."""

    @extend_schema(
        operation_id="fhir_documentreference_search", tags=["FHIR"],
        summary="Search the DocumentReferences of a patient that the professional may read",
        parameters=[
            OpenApiParameter("patient", str, required=True, description="Patient id (or Patient/<id>)."),
            OpenApiParameter("category", str, description=f"Space code ({fhir.SPACE_SYSTEM}), comma = or."),
            OpenApiParameter("type", str, description=f"Type code ({fhir.DOCUMENT_TYPE_SYSTEM} or LOINC)."),
            OpenApiParameter("date", str, many=True, description="Date added to the record (DocumentReference.date), "
                                                                 "e.g. ge2024-01-01 (repeatable)."),
            OpenApiParameter("period", str, many=True, description="Date of the act (context.period), e.g. "
                                                                   "ge2024-01-01 (repeatable)."),
            OpenApiParameter("patient.identifier", str, description="urn:oid:1.2.250.1.213.1.4.8|<NIR> or "
                                                                    "urn:dmp:provisional-identifier|<id>."),
            OpenApiParameter("status", str, description="current (searches list current documents only)."),
            OpenApiParameter("author", str, description="Practitioner/<id>."),
            OpenApiParameter("author.family", str, description="Author's family name (starts with; :exact)."),
            OpenApiParameter("author.given", str, description="Author's given name (starts with; :exact)."),
            OpenApiParameter("_sort", str, description="date, -date (added), period, -period (act; default)."),
            OpenApiParameter("_summary", str, description="count: the total only."),
            OpenApiParameter("_include", str, many=True,
                             description="DocumentReference:patient, DocumentReference:author."),
            OpenApiParameter("_count", int, description=f"Documents per page (default {DEFAULT_COUNT}, "
                                                        f"at most {MAX_COUNT}: more is brought down to it)."),
            OpenApiParameter("_offset", int, description="Documents to skip (follow the Bundle's next link)."),
        ],
        responses={200: _FHIR_OBJECT, 400: _OUTCOME, 401: _OUTCOME, 403: _OUTCOME, 404: _OUTCOME},
    )
    def get(self, request):
        return search_documents(request, Actor.from_request(request))

    @extend_schema(
        operation_id="fhir_documentreference_create", tags=["FHIR"],
        summary="Push a document (base64 attachment, or url Binary/<id>)",
        description="The same file twice returns the existing DocumentReference (200, meta.tag "
                    f"{OUTCOME_SYSTEM}|duplicate). If-None-Exist: identifier={CONTENT_HASH_SYSTEM}|<sha256> "
                    "or _content-hash=<sha256>.",
        parameters=[OpenApiParameter("If-None-Exist", str, OpenApiParameter.HEADER)],
        request={FHIR_JSON: OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
        responses={200: _FHIR_OBJECT, 201: _FHIR_OBJECT, 400: _OUTCOME, 401: _OUTCOME, 403: _OUTCOME,
                   404: _OUTCOME, 409: _OUTCOME, 413: _OUTCOME, 415: _OUTCOME, 422: _OUTCOME},
    )
    def post(self, request):
        return create_document_reference(request, Actor.from_request(request))


class DocumentReferenceInstanceView(_Errors, FhirView):
    """One DocumentReference; a refused one is the same 404 as a missing one."""

    @extend_schema(
        operation_id="fhir_documentreference_read", tags=["FHIR"], summary="Read one DocumentReference",
        responses={200: _FHIR_OBJECT, 401: _OUTCOME, 403: _OUTCOME, 404: _OUTCOME},
    )
    def get(self, request, resource_id: str):
        document = get_document_for(Actor.from_request(request), _int_id(resource_id))
        return fhir_response(document_resource(document), headers=version_headers(document))

    @extend_schema(
        operation_id="fhir_documentreference_update", tags=["FHIR"],
        summary="Withdraw your document as entered in error (status entered-in-error); If-Match supported",
        parameters=[OpenApiParameter("If-Match", str, OpenApiParameter.HEADER)],
        request={FHIR_JSON: OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
        responses={200: _FHIR_OBJECT, 400: _OUTCOME, 401: _OUTCOME, 403: _OUTCOME, 404: _OUTCOME,
                   409: _OUTCOME, 412: _OUTCOME, 422: _OUTCOME},
    )
    def put(self, request, resource_id: str):
        return update_document_reference(request, Actor.from_request(request), _int_id(resource_id))


class DocumentReferenceVersionView(_Errors, FhirView):
    """`DocumentReference/<id>/_history/<vid>`: version <vid> of the document's versions chain."""

    @extend_schema(
        operation_id="fhir_documentreference_vread", tags=["FHIR"],
        summary="Read one version of a document (its versions chain: 1 is the first)",
        responses={200: _FHIR_OBJECT, 401: _OUTCOME, 403: _OUTCOME, 404: _OUTCOME},
    )
    def get(self, request, resource_id: str, version_id: str):
        actor = Actor.from_request(request)
        version = document_version(actor, get_document_for(actor, _int_id(resource_id)), version_id)
        headers = {**version_headers(version),
                   "Content-Location": request.build_absolute_uri(
                       f"/fhir/DocumentReference/{version.pk}/_history/{version.version}")}
        return fhir_response(document_resource(version), headers=headers)


class DocumentReferenceHistoryView(_Errors, FhirView):
    """`DocumentReference/<id>/_history`: the versions of its chain the professional may read."""

    @extend_schema(
        operation_id="fhir_documentreference_history", tags=["FHIR"],
        summary="The versions of a document's chain you may read (a Bundle of type history)",
        responses={200: _FHIR_OBJECT, 401: _OUTCOME, 403: _OUTCOME, 404: _OUTCOME},
    )
    def get(self, request, resource_id: str):
        actor = Actor.from_request(request)
        versions = document_history(actor, get_document_for(actor, _int_id(resource_id)))
        return fhir_response(history_bundle(request, [(document_resource(v), version_headers(v)) for v in versions]))


def _wants_resource(request) -> bool:
    accept = request.META.get("HTTP_ACCEPT", "").lower()
    fmt = request.query_params.get("_format", "").lower()
    return "fhir+json" in accept or "application/json" in accept or fmt in ("json", "application/fhir+json")


class BinaryTypeView(_Errors, FhirView):
    """Upload a file (a Binary resource, base64) for a DocumentReference to point at."""

    @extend_schema(
        operation_id="fhir_binary_create", tags=["FHIR"],
        summary="Upload a file for a DocumentReference to point at (kept one hour, for you only)",
        request={FHIR_JSON: OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
        responses={201: _FHIR_OBJECT, 400: _OUTCOME, 401: _OUTCOME, 403: _OUTCOME, 413: _OUTCOME,
                   415: _OUTCOME, 422: _OUTCOME},
    )
    def post(self, request):
        actor = Actor.from_request(request)
        _check_request_size(request)
        data = _resource_body(request, "Binary")
        try:
            binary = Binary.model_validate(data)
        except ValidationError as exc:
            raise FhirError(400, _validation_message(exc)) from None
        if binary.data is None:
            raise FhirError(400, _("Binary.data (base64) is required."))
        if binary.contentType.split(";")[0].strip().lower() not in ACCEPTED_TYPES:
            raise unsupported_format()
        content = binary.data if isinstance(binary.data, bytes) else _decode(binary.data)
        _checked_bytes(content, binary.contentType)
        binary_id = _stage_binary(content, actor)
        answer = Binary(id=binary_id, contentType=binary.contentType)
        return fhir_response(answer, status_code=status.HTTP_201_CREATED,
                             headers={"Location": request.build_absolute_uri(f"/fhir/Binary/{binary_id}")})


class BinaryInstanceView(_Errors, FhirView):
    """A document's file, decrypted: raw bytes, or a Binary resource for a FHIR Accept."""

    def perform_content_negotiation(self, request, force=False):
        # The file's own type (application/pdf…) is a valid Accept here: answered in get().
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        operation_id="fhir_binary_read", tags=["FHIR"],
        summary="A document's file: its own type, or a Binary resource (Accept: application/fhir+json)",
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, (200, "image/png"): OpenApiTypes.BINARY,
                   (200, "image/jpeg"): OpenApiTypes.BINARY, (200, FHIR_JSON): OpenApiTypes.OBJECT,
                   (404, FHIR_JSON): OpenApiTypes.OBJECT, (401, FHIR_JSON): OpenApiTypes.OBJECT},
    )
    def get(self, request, resource_id: str):
        document = get_document_for(Actor.from_request(request), _int_id(resource_id))
        with document.file.open("rb") as stored:
            content = stored.read()
        if _wants_resource(request):
            binary = Binary(id=str(document.pk), contentType=document.mime_type,
                            securityContext=Reference(reference=f"DocumentReference/{document.pk}"),
                            data=base64.b64encode(content).decode())
            return fhir_response(binary)
        return protected_file_response(HttpResponse(content, content_type=document.mime_type),
                                       document_file_name(document))


urlpatterns = [
    path("DocumentReference", DocumentReferenceTypeView.as_view(), name="documentreference"),
    path("DocumentReference/<str:resource_id>", DocumentReferenceInstanceView.as_view(),
         name="documentreference_read"),
    path("DocumentReference/<str:resource_id>/_history", DocumentReferenceHistoryView.as_view(),
         name="documentreference_history"),
    path("DocumentReference/<str:resource_id>/_history/<str:version_id>", DocumentReferenceVersionView.as_view(),
         name="documentreference_vread"),
    path("Binary", BinaryTypeView.as_view(), name="binary"),
    path("Binary/<str:resource_id>", BinaryInstanceView.as_view(), name="binary_read"),
]
