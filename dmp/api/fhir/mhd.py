"""`POST /fhir/`: a Bundle of type transaction or batch, and with it IHE MHD's ITI-65 "Provide
Document Bundle" as the ANS PDSm guide profiles it (docs/api.md, "Publishing documents with
IHE MHD (PDSm)").

- A transaction is all or nothing: every entry is read and checked first (the policy, the
  file checks, the types), then every write happens in one database transaction
  (`documents_publish`); any refusal refuses the whole Bundle with its OperationOutcome, and
  nothing is stored, files included. The answer is a transaction-response Bundle, an entry
  per entry, in order, with `response.status` and `location`.
- A batch answers each entry on its own: one refused entry does not stop the others.
- What an entry may be: `POST DocumentReference` (a document; its file inline, or a
  `Binary` entry of the same Bundle named by its fullUrl, or `Binary/<id>` uploaded before),
  `POST Binary` (the file of a DocumentReference of the Bundle), `POST List` (the MHD
  submission set: read, checked against its documents, not kept), `PUT DocumentReference/<id>`
  with status entered-in-error (withdraw), and `PATCH DocumentReference/<id>` setting the
  status to superseded when a DocumentReference of the same Bundle replaces it (the PDSm
  guide's replacement Bundle: the replacement does it). Anything else is refused by name.
- The same Bundle twice stores nothing the second time: each document is recognised by its
  masterIdentifier or its content and answered `200 OK` with its location.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field

from django.db import transaction
from django.http import Http404
from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntryResponse
from fhir.resources.R4B.operationoutcome import OperationOutcome
from pydantic import ValidationError

from ...models import Document
from ...policy import Actor
from ...selectors import get_document_for
from ...services import AccessRefused, InvalidInput, documents_publish
from . import results
from .base import FHIR_JSON, FhirView, fhir_response, operation_outcome
from .documents import (
    ACCEPTED_TYPES,
    FhirError,
    _check_request_size,
    _decode,
    _int_id,
    _validation_message,
    check_if_match,
    parse_document_reference,
    prepare_document,
    service_refusal,
    unsupported_format,
    version_tag,
    withdraw,
)

MHD_LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
MAX_ENTRIES = 100  # entries of one Bundle: a submission set is a few documents
MAX_DOCUMENTS = 10  # files of one Bundle (the request is at most this many files large)


@dataclass
class _Entry:
    """One entry of the Bundle and what it came to."""

    index: int
    method: str
    url: str
    full_url: str
    resource: dict | None
    if_match: str | None = None
    status: str = ""
    location: str | None = None
    etag: str | None = None
    outcome: OperationOutcome | None = None
    document: Document | None = None


@dataclass
class _Plan:
    """The writes a Bundle asks for, checked, in order."""

    publish: list[tuple[_Entry, object]] = field(default_factory=list)  # (entry, Prepared)
    withdraw: list[tuple[_Entry, Document]] = field(default_factory=list)
    superseded: list[tuple[_Entry, int]] = field(default_factory=list)
    binaries: dict[str, _Entry] = field(default_factory=dict)
    lists: list[_Entry] = field(default_factory=list)


def _entries(data: dict) -> list[_Entry]:
    entries = data.get("entry") or []
    if not isinstance(entries, list) or not entries:
        raise FhirError(400, _("The Bundle has no entry."))
    if len(entries) > MAX_ENTRIES:
        raise FhirError(413, _("A Bundle holds at most %(n)d entries.") % {"n": MAX_ENTRIES})
    files = sum(1 for e in entries if isinstance(e, dict) and (e.get("request") or {}).get("url") == "Binary")
    if files > MAX_DOCUMENTS:
        raise FhirError(413, _("A Bundle holds at most %(n)d files.") % {"n": MAX_DOCUMENTS})
    result = []
    for index, entry in enumerate(entries):
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or not request.get("method") or not request.get("url"):
            raise _at(index, FhirError(400, _("Each entry needs request.method and request.url.")))
        resource = entry.get("resource")
        result.append(_Entry(index=index, method=str(request["method"]).upper(), url=str(request["url"]).strip("/"),
                             full_url=str(entry.get("fullUrl") or ""), if_match=request.get("ifMatch"),
                             resource=resource if isinstance(resource, dict) else None))
    return result


def _at(index: int, error: FhirError) -> FhirError:
    """The error, naming the entry it is about."""
    return FhirError(error.status_code, f"entry[{index}]: {error.message}")


def _binaries(entries: list[_Entry]) -> dict[str, tuple[bytes, str]]:
    """The Bundle's Binary entries by fullUrl: their bytes and contentType."""
    found = {}
    for entry in entries:
        if entry.method == "POST" and entry.url == "Binary":
            try:
                binary = Binary.model_validate(entry.resource or {})
            except ValidationError as exc:
                raise _at(entry.index, FhirError(400, _validation_message(exc))) from None
            if binary.data is None:
                raise _at(entry.index, FhirError(400, _("Binary.data (base64) is required.")))
            if binary.contentType.split(";")[0].strip().lower() not in ACCEPTED_TYPES:
                raise _at(entry.index, unsupported_format())
            try:
                content = binary.data if isinstance(binary.data, bytes) else _decode(binary.data)
            except (binascii.Error, ValueError):
                raise _at(entry.index, FhirError(400, _("The attachment data is not valid base64."))) from None
            if entry.full_url:
                found[entry.full_url] = (content, binary.contentType)
    return found


def _superseded_id(entry: _Entry) -> int:
    """The document a PATCH entry marks superseded: only `replace DocumentReference.status
    superseded` is understood (the PDSm replacement Bundle)."""
    resource = entry.resource or {}
    operations = [p for p in resource.get("parameter") or [] if p.get("name") == "operation"]
    parts = [{part.get("name"): part for part in op.get("part") or []} for op in operations]
    if resource.get("resourceType") != "Parameters" or len(parts) != 1 or not (
            parts[0].get("type", {}).get("valueCode") == "replace"
            and parts[0].get("path", {}).get("valueString") == "DocumentReference.status"
            and parts[0].get("value", {}).get("valueCode") == "superseded"):
        raise FhirError(422, _("A PATCH can only set DocumentReference.status to superseded."))
    return _int_id(entry.url.split("/", 1)[1])


def _plan_entry(actor: Actor, entry: _Entry, plan: _Plan, bundled: dict[str, tuple[bytes, str]]) -> None:
    """Read and check one entry (nothing written): Http404 or FhirError if it is refused."""
    kind, _sep, rest = entry.url.partition("/")
    if entry.method == "POST" and entry.url == "Binary":
        plan.binaries[entry.full_url] = entry
    elif entry.method == "POST" and entry.url == "List":
        code = ((entry.resource or {}).get("code") or {}).get("coding") or []
        if (entry.resource or {}).get("resourceType") != "List" or not any(
                c.get("system") == MHD_LIST_TYPES and c.get("code") == "submissionset" for c in code):
            raise FhirError(422, _("A List entry must be an MHD submission set."))
        plan.lists.append(entry)
    elif entry.method == "POST" and entry.url == "DocumentReference":
        if (entry.resource or {}).get("resourceType") != "DocumentReference":
            raise FhirError(400, _("The resource must be a %(type)s.") % {"type": "DocumentReference"})
        plan.publish.append((entry, prepare_document(actor, parse_document_reference(entry.resource),
                                                     bundled=bundled)))
    elif entry.method == "PUT" and kind == "DocumentReference" and rest:
        document = get_document_for(actor, _int_id(rest))
        check_if_match(entry.if_match, document)
        resource = parse_document_reference(entry.resource or {})
        if resource.status != "entered-in-error":
            raise FhirError(422, _("An update can only set the status to entered-in-error; publish a new version "
                                   "with relatesTo replaces to change a document."))
        plan.withdraw.append((entry, document))
    elif entry.method == "PATCH" and kind == "DocumentReference" and rest:
        plan.superseded.append((entry, _superseded_id(entry)))
    else:
        raise FhirError(422, _("Unsupported entry: %(method)s %(url)s.") % {"method": entry.method, "url": entry.url})


def _replaced_in_bundle(plan: _Plan) -> set[int]:
    return {prepared.publication.replaces.pk for _entry, prepared in plan.publish
            if prepared.publication is not None and prepared.publication.replaces is not None}


def _check_plan(plan: _Plan) -> None:
    """What a Bundle's entries say of each other: a PATCH to superseded is the work of a
    replacement in the same Bundle; a Binary is the file of one of its DocumentReferences."""
    replaced = _replaced_in_bundle(plan)
    existing = {prepared.existing.replaces_id for _entry, prepared in plan.publish
                if prepared.existing is not None and prepared.existing.replaces_id}
    for entry, document_id in plan.superseded:
        if document_id not in replaced | existing:
            raise _at(entry.index, FhirError(422, _("A document is superseded by publishing its replacement "
                                                    "(relatesTo replaces) in the same Bundle.")))
    used = {(entry.resource or {}).get("content", [{}])[0].get("attachment", {}).get("url")
            for entry, _prepared in plan.publish}
    for full_url, entry in plan.binaries.items():
        if full_url not in used:
            raise _at(entry.index, FhirError(422, _("This Binary is the file of no DocumentReference of the "
                                                    "Bundle.")))


def _answer_entries(request, plan: _Plan, stored: list[Document]) -> None:
    """Fill each entry's answer once the writes are done."""
    base = "DocumentReference"
    for (entry, _prepared), document in zip([p for p in plan.publish if p[1].publication is not None], stored,
                                           strict=True):
        entry.document, entry.status = document, "201 Created"
    for entry, prepared in plan.publish:
        if prepared.existing is not None:
            entry.document, entry.status = prepared.existing, "200 OK"
    files = {}
    for entry, _prepared in plan.publish:
        document = entry.document
        entry.location = f"{base}/{document.pk}/_history/{document.version}"
        entry.etag = version_tag(document)
        files[(entry.resource or {}).get("content", [{}])[0].get("attachment", {}).get("url")] = document
    for full_url, entry in plan.binaries.items():
        document = files[full_url]
        entry.status = "201 Created" if document in stored else "200 OK"
        entry.location = f"Binary/{document.pk}"
    for entry, document in plan.withdraw:
        entry.status, entry.location, entry.etag = "200 OK", f"{base}/{document.pk}", version_tag(document)
    for entry, document_id in plan.superseded:
        entry.status, entry.location = "200 OK", f"{base}/{document_id}"
    for entry in plan.lists:
        # The submission set is read and checked, not kept: its documents are.
        entry.status = "200 OK"
        entry.outcome = OperationOutcome(issue=[{
            "severity": "information", "code": "informational",
            "diagnostics": "The submission set is not kept as a resource; its documents are."}])


def _execute(actor: Actor, plan: _Plan) -> list[Document]:
    """The writes, all or nothing: withdrawals first (rows only), then the new documents
    (`documents_publish` removes its files if it fails), in one database transaction."""
    try:
        with transaction.atomic():
            for _entry, document in plan.withdraw:
                withdraw(actor, document)
            return documents_publish(actor=actor, publications=[
                prepared.publication for _entry, prepared in plan.publish if prepared.publication is not None])
    except AccessRefused as exc:
        raise service_refusal(exc) from None
    except InvalidInput as exc:
        raise FhirError(409 if exc.code == "duplicate" else 422, str(exc)) from None


def _response_bundle(entries: list[_Entry], bundle_type: str) -> Bundle:
    return Bundle(type=bundle_type, entry=[
        BundleEntry(response=BundleEntryResponse(status=entry.status, location=entry.location, etag=entry.etag,
                                                 outcome=entry.outcome))
        for entry in entries
    ])


def _transaction(request, actor: Actor, entries: list[_Entry]):
    bundled = _binaries(entries)
    plan = _Plan()
    for entry in entries:
        try:
            _plan_entry(actor, entry, plan, bundled)
        except FhirError as error:
            raise _at(entry.index, error) from None
        except Http404:
            raise _at(entry.index, FhirError(404, _("Resource not found."))) from None
    _check_plan(plan)
    stored = _execute(actor, plan)
    _answer_entries(request, plan, stored)
    return fhir_response(_response_bundle(entries, "transaction-response"))


def _batch(request, actor: Actor, entries: list[_Entry]):
    """Each entry on its own, as a transaction of one (a Binary with the DocumentReference that
    names it: it is its file)."""
    try:
        bundled = _binaries(entries)
    except FhirError:
        bundled = {}
    for entry in entries:
        if entry.method == "POST" and entry.url == "Binary":
            entry.status, entry.outcome = "200 OK", OperationOutcome(issue=[{
                "severity": "information", "code": "informational",
                "diagnostics": "Kept as the file of the DocumentReference that names it."}])
            continue
        plan = _Plan()
        try:
            _plan_entry(actor, entry, plan, bundled)
            stored = _execute(actor, plan)
            _answer_entries(request, plan, stored)
        except (FhirError, Http404) as error:
            code, message = (error.status_code, error.message) if isinstance(error, FhirError) else (
                404, _("Resource not found."))
            entry.status = str(code)
            entry.outcome = OperationOutcome(issue=[{"severity": "error", "code": "processing",
                                                     "diagnostics": message}])
    return fhir_response(_response_bundle(entries, "batch-response"))


class BundleView(FhirView):
    """POST a transaction or batch Bundle to the base of the API."""

    def handle_exception(self, exc):
        if isinstance(exc, FhirError):
            return operation_outcome(exc.status_code, exc.message)
        return super().handle_exception(exc)

    @extend_schema(
        operation_id="fhir_transaction", tags=["FHIR"],
        summary="A transaction or batch Bundle (IHE MHD ITI-65 Provide Document Bundle)",
        request={FHIR_JSON: OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="transaction-response / batch-response"),
                   400: OpenApiTypes.OBJECT, 401: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT,
                   404: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT, 413: OpenApiTypes.OBJECT,
                   415: OpenApiTypes.OBJECT, 422: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        actor = Actor.from_request(request)
        _check_request_size(request, files=MAX_DOCUMENTS)
        data = request.data
        if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
            raise FhirError(400, _("The body must be a FHIR %(type)s resource in JSON.") % {"type": "Bundle"})
        bundle_type = data.get("type")
        if bundle_type not in ("transaction", "batch"):
            raise FhirError(422, _("Only Bundles of type transaction or batch can be posted here."))
        entries = _entries(data)
        if bundle_type == "transaction" and results.is_lab_transaction(entries):
            return results.lab_transaction(actor, entries)  # a laboratory's report (dmp/api/fhir/results.py)
        if bundle_type == "transaction":
            return _transaction(request, actor, entries)
        return _batch(request, actor, entries)


urlpatterns = [
    path("", BundleView.as_view(), name="bundle"),
]
