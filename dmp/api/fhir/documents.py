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
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.reference import Reference
from pydantic import ValidationError
from rest_framework import status

from ... import access_log, fhir
from ...file_safety import check_file, sniff_mime_type
from ...http import document_file_name, protected_file_response
from ...models import ApiToken, Document, DocumentType, Record
from ...models.documents import SPACE_OF_TYPE
from ...policy import Action, Actor, decide
from ...selectors import DocumentFilters, documents_matching, get_document_for, get_record_for
from ...selectors.clinician import records_found_for
from ...services import AccessRefused, InvalidInput, InvalidInputCode, document_add
from ...storage import cipher
from .base import FHIR_JSON, FhirView, SearchError, SearchSpec, fhir_response, operation_outcome, search_request
from .patient import SearchError as PatientSearchError
from .patient import patient_identifier

CONTENT_HASH_SYSTEM = "urn:dmp:content-sha256"
WITHHELD_UNTIL_URL = "urn:dmp:withheld-until"
OUTCOME_SYSTEM = "urn:dmp:api-outcome"
LOINC_SYSTEM = "http://loinc.org"
ACCEPTED_TYPES = ("application/pdf", "image/png", "image/jpeg")
BINARY_TTL = 3600  # seconds an uploaded Binary waits for its DocumentReference
_BINARY_PREFIX = "upload-"
_BINARY_ID = re.compile(r"upload-[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PG_MAX_INT = 2**31 - 1  # the primary keys are 32-bit integers
DEFAULT_COUNT = 50  # DocumentReferences per search page (`_count`), and the most there can be:
MAX_COUNT = 100  # a whole record in one answer was megabytes and seconds (issue 16)

# A few common LOINC document codes practice software sends, and the type they mean here.
LOINC_TYPES = {
    "11488-4": DocumentType.CONSULTATION_REPORT,  # Consult note
    "34117-2": DocumentType.CONSULTATION_REPORT,  # History and physical note
    "18842-5": DocumentType.DISCHARGE_LETTER,  # Discharge summary
    "11502-2": DocumentType.LAB_REPORT,  # Laboratory report
    "11526-1": DocumentType.PATHOLOGY_REPORT,  # Pathology study
    "18748-4": DocumentType.IMAGING_REPORT,  # Diagnostic imaging study
    "11504-8": DocumentType.OPERATIVE_REPORT,  # Surgical operation note
    "57833-6": DocumentType.MEDICATION_PRESCRIPTION,  # Prescription for medication
    "60591-5": DocumentType.RECORD_SYNTHESIS,  # Patient summary
    "34133-9": DocumentType.EPISODE_SYNTHESIS,  # Summary of episode note
}


class FhirError(Exception):
    """An answer other than success, as an OperationOutcome with its status."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _max_request_bytes() -> int:
    # base64 makes a file 4/3 as large; the JSON around it is small.
    return settings.DOCUMENT_MAX_BYTES * 4 // 3 + 64 * 1024


def _too_large() -> FhirError:
    limit = {"mb": settings.DOCUMENT_MAX_BYTES // 2**20}
    return FhirError(413, _("The file is too large (at most %(mb)d MB).") % limit)


def _check_request_size(request) -> None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > _max_request_bytes():
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


def document_resource(document: Document, *, duplicate: bool = False) -> DocumentReference:
    """A document as the API gives it: dmp/fhir.py's DocumentReference, with REST references
    (Patient/…, Practitioner/…, Binary/…) and the content hash as master identifier."""
    subject = fhir.patient(document.record)
    author = fhir.practitioner(document.author_professional) if document.author_professional_id else None
    resource = fhir.document_reference(document, subject=subject, url=f"Binary/{document.pk}", author=author)
    resource.subject = Reference(reference=f"Patient/{document.record_id}")
    if author is not None:
        resource.author = [Reference(reference=f"Practitioner/{author.id}", display=author.name[0].text)]
    elif document.author_kind == Document.AuthorKind.PATIENT:
        resource.author = [Reference(reference=f"Patient/{document.record_id}")]
    resource.masterIdentifier = Identifier(system=CONTENT_HASH_SYSTEM, value=document.content_hash)
    if duplicate:
        tags = list(resource.meta.tag) if resource.meta and resource.meta.tag else []
        tags.append(fhir._coding(OUTCOME_SYSTEM, "duplicate", "This file was already in the record: "
                                                                 "the existing DocumentReference is returned."))
        resource.meta = Meta(tag=tags)
    return resource


def _document_answer(request, document: Document, *, created: bool = False, duplicate: bool = False):
    headers = {"Location": request.build_absolute_uri(f"/fhir/DocumentReference/{document.pk}")}
    if duplicate:
        headers["X-DMP-Outcome"] = "duplicate: this file is already in the record; existing DocumentReference returned"
    return fhir_response(document_resource(document, duplicate=duplicate),
                         status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK, headers=headers)


# --- reading a pushed DocumentReference ------------------------------------------------------


def _doc_type(resource: DocumentReference) -> str:
    codings = (resource.type.coding or []) if resource.type else []
    if not codings:
        raise FhirError(400, _("DocumentReference.type needs a coding (system %(system)s).")
                        % {"system": fhir.DOCUMENT_TYPE_SYSTEM})
    for coding in codings:
        if coding.system == fhir.DOCUMENT_TYPE_SYSTEM and coding.code in DocumentType.values:
            return coding.code
        if coding.system == LOINC_SYSTEM and coding.code in LOINC_TYPES:
            return LOINC_TYPES[coding.code]
    raise FhirError(422, _("Unknown document type: use a code of %(system)s.") % {"system": fhir.DOCUMENT_TYPE_SYSTEM})


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


def _content(resource: DocumentReference, actor: Actor) -> tuple[bytes, str | None, str | None]:
    """The file's bytes, the contentType the client declared, and the staged Binary it came
    from (to forget once stored)."""
    attachment = resource.content[0].attachment if resource.content else None
    if attachment is None:
        raise FhirError(400, _("DocumentReference.content[0].attachment is required."))
    declared = attachment.contentType
    if declared is not None and declared.split(";")[0].strip().lower() not in ACCEPTED_TYPES:
        raise FhirError(415, _("Only PDF files and images (PNG, JPEG) can be added to a record."))
    if attachment.data is not None:
        content = attachment.data
        return (content if isinstance(content, bytes) else _decode(content)), declared, None
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
        raise FhirError(415, _("Only PDF files and images (PNG, JPEG) can be added to a record."))
    if declared is not None and declared.split(";")[0].strip().lower() != sniffed:
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


def _existing_answer(request, actor: Actor, record: Record, digest: str):
    """The document with this content already in the record: returned if the actor may read
    it; otherwise only "already in the record" (409), as the portal says."""
    existing = record.documents.filter(content_hash=digest).values_list("pk", flat=True).first()
    if existing is None:
        return None
    try:
        document = get_document_for(actor, existing)
    except Http404:
        return operation_outcome(409, _("This file is already in the record."))
    return _document_answer(request, document, duplicate=True)


def create_document_reference(request, actor: Actor):
    _check_request_size(request)
    data = _resource_body(request, "DocumentReference")
    try:
        resource = DocumentReference.model_validate(data)
    except ValidationError as exc:
        if any(error.get("type") == "base64_decode" for error in exc.errors()):
            raise FhirError(400, _("The attachment data is not valid base64.")) from None
        raise FhirError(400, _validation_message(exc)) from None
    if resource.subject is None or not resource.subject.reference:
        raise FhirError(400, _("DocumentReference.subject must be a reference to Patient/<id>."))
    record_id = _id_of(resource.subject.reference, "Patient")
    doc_type = _doc_type(resource)
    _check_category(resource, doc_type)
    title = (resource.description or (resource.content[0].attachment.title if resource.content else None)
             or str(DocumentType(doc_type).label)).strip()
    act_date = _act_date(resource)
    withheld_until = _withheld_until(resource)
    record = _record_to_add_to(actor, record_id, doc_type)
    digest = _if_none_exist_hash(request)
    if digest is not None:
        answer = _existing_answer(request, actor, record, digest)
        if answer is not None:
            return answer
    content, declared, binary_id = _content(resource, actor)
    _checked_bytes(content, declared)
    try:
        # Checked once, here: the digest is that of what would be stored (an image is encoded
        # again), so the same file pushed twice finds its document.
        checked = check_file(content)
    except InvalidInput as exc:
        raise FhirError(422, str(exc)) from None
    digest = checked.digest
    answer = _existing_answer(request, actor, record, digest)
    if answer is not None:
        return answer
    try:
        document = document_add(actor=actor, record=record, content=content, doc_type=doc_type, title=title,
                                act_date=act_date, withheld_until=withheld_until, checked=checked)
    except AccessRefused:
        raise Http404 from None
    except InvalidInput as exc:
        if exc.code == InvalidInputCode.DUPLICATE:  # a race with another push of the same file
            answer = _existing_answer(request, actor, record, digest)
            if answer is not None:
                return answer
            raise FhirError(409, str(exc)) from None
        raise FhirError(422, str(exc)) from None
    if binary_id is not None:
        cache.delete(_cache_key(binary_id))
    return _document_answer(request, document, created=True)


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


def _token_codes(values: list[str], system: str) -> set[str]:
    """Codes of a token parameter ("code" or "system|code", comma = or); a code of another
    system matches nothing."""
    codes = set()
    for value in values:
        for item in value.split(","):
            item_system, sep, code = item.rpartition("|")
            if not (sep and item_system and item_system != system):
                codes.add(code.strip())
    return codes


def _name_filter(params, name: str) -> tuple[str, bool] | None:
    """`author.family=Mar` (starts with, case ignored) or `author.family:exact=Martin`."""
    for key, exact in ((f"{name}:exact", True), (name, False)):
        value = params.get(key, "").strip()
        if value:
            if len(value) > 150:
                raise FhirError(400, f"{key}: too long.")
            return value, exact
    return None


def search_filters(params) -> DocumentFilters:
    """The ITI-67 search parameters as the filters of the portals' documents screen: the
    search answers what `documents_matching` lists. `date` is DocumentReference.date (when the
    document was added to the record), `period` the date of the act (context.period)."""
    spaces = doc_types = authors = None
    if params.getlist("category"):
        spaces = frozenset(_token_codes(params.getlist("category"), fhir.SPACE_SYSTEM))
    if params.getlist("type"):
        codes = _token_codes(params.getlist("type"), fhir.DOCUMENT_TYPE_SYSTEM)
        codes |= {LOINC_TYPES[c] for c in _token_codes(params.getlist("type"), LOINC_SYSTEM) if c in LOINC_TYPES}
        doc_types = frozenset(codes)
    if params.getlist("status") and "current" not in _token_codes(params.getlist("status"), STATUS_SYSTEM):
        # Searches list the current documents only: superseded and withdrawn ones match nothing.
        spaces = frozenset()
    if params.getlist("author"):
        ids = {_id_of(value, "Practitioner") for value in params.getlist("author")}
        authors = frozenset(i for i in ids if i is not None)
    act_from, act_to, act_excluded = _date_bounds(params.getlist("period"))
    added_from, added_to, added_excluded = _date_bounds(params.getlist("date"))
    return DocumentFilters(spaces=spaces, doc_types=doc_types, author_professionals=authors,
                           date_from=act_from, date_to=act_to, excluded_periods=act_excluded,
                           added_from=added_from, added_to=added_to, added_excluded=added_excluded,
                           author_family=_name_filter(params, "author.family"),
                           author_given=_name_filter(params, "author.given"))


STATUS_SYSTEM = "http://hl7.org/fhir/document-reference-status"
_DEFINITION = "DocumentReference-"
# What the DocumentReference search accepts (IHE MHD ITI-67 as the ANS PDSm guide profiles it),
# and the ITI-67 parameters our data cannot answer.
SEARCH = SearchSpec(
    parameters=(
        ("patient", "reference", f"{_DEFINITION}patient"), ("subject", "reference", f"{_DEFINITION}subject"),
        ("patient.identifier", "token", "Patient-identifier"), ("status", "token", f"{_DEFINITION}status"),
        ("category", "token", f"{_DEFINITION}category"), ("type", "token", f"{_DEFINITION}type"),
        ("date", "date", f"{_DEFINITION}date"), ("period", "date", f"{_DEFINITION}period"),
        ("author", "reference", f"{_DEFINITION}author"), ("author.given", "string", "individual-given"),
        ("author.family", "string", "individual-family"),
    ),
    modifiers=("author.given:exact", "author.family:exact"),
    default_count=DEFAULT_COUNT, max_count=MAX_COUNT,
    sorts=("date", "-date", "period", "-period"),
    includes=("DocumentReference:patient", "DocumentReference:subject", "DocumentReference:author"),
    unsupported=("setting", "facility", "event", "security-label", "format", "related"),
)
_ORDER = {"": ("-act_date", "-pk"), "-period": ("-act_date", "-pk"), "period": ("act_date", "pk"),
          "date": ("added_at", "pk"), "-date": ("-added_at", "-pk")}
# The parameters the search applies, carried by its Bundle's links as they were given (the
# patient is `patient`, given once as its id); nothing else of the query string is.
_KEPT_SEARCH_PARAMETERS = ("status", "category", "type", "date", "period", "author", "author.family",
                           "author.family:exact", "author.given", "author.given:exact")


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


def _included(base: str, record: Record, documents: list[Document], includes: tuple[str, ...]) -> list[BundleEntry]:
    """The resources `_include` asks for, once each: the patient, the professional authors
    (of documents the professional may read, so theirs to see)."""
    entries = []
    if {"DocumentReference:patient", "DocumentReference:subject"} & set(includes):
        entries.append(BundleEntry(fullUrl=f"{base}Patient/{record.pk}", resource=fhir.patient(record),
                                   search={"mode": "include"}))
    if "DocumentReference:author" in includes:
        authors = {d.author_professional_id: d.author_professional for d in documents if d.author_professional_id}
        entries += [BundleEntry(fullUrl=f"{base}Practitioner/{pk}", resource=fhir.practitioner(pro),
                                search={"mode": "include"}) for pk, pro in sorted(authors.items())]
    return entries


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
    filters = search_filters(params)
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
    documents = documents_matching(actor, record, filters).order_by(*_ORDER[search.sort])
    total = documents.count()
    entries = []
    if not search.count_only:
        page = list(search.page.of(documents.select_related("record", "author_professional__user")))
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
        return fhir_response(document_resource(document))


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
            raise FhirError(415, _("Only PDF files and images (PNG, JPEG) can be added to a record."))
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
    path("Binary", BinaryTypeView.as_view(), name="binary"),
    path("Binary/<str:resource_id>", BinaryInstanceView.as_view(), name="binary_read"),
]
