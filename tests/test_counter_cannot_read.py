"""Issue 6, "Done means": a counter agent requests every URL of every app that returns medical
content for a record they onboarded, and is refused each time, including for a document they
deposited themself. The URLs are enumerated from the resolver, so a URL added later to one of
these apps is swept automatically; the only URLs left out are listed below with the reason."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from dmp.models import Document, DocumentType, RecordExport
from tests.personas import make_document
from tests.sample_files import text_pdf

SWEPT_NAMESPACES = ("portal_patient", "portal_pro", "fhir", "api")

# URLs that return no medical content by design (the only ones not swept).
NO_MEDICAL_CONTENT = {
    "fhir:metadata": "the server's CapabilityStatement, the same for everyone, no record",
    "fhir:openapi": "the API's description, no record",
}

REFUSED = {401, 403, 404}
DEPOSITED_TEXT = "Deposited letter cardiology zzqx"


def _patterns(patterns, namespace=None):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _patterns(p.url_patterns, p.namespace or namespace)
        elif isinstance(p, URLPattern) and namespace in SWEPT_NAMESPACES and p.name:
            yield f"{namespace}:{p.name}", str(p.pattern), list(p.pattern.regex.groupindex)


def swept_routes() -> list[tuple[str, str, list[str]]]:
    return sorted({r[0]: r for r in _patterns(get_resolver().url_patterns)}.values())


def _kwargs(route: str, params: list[str], ids: dict) -> dict:
    values = {}
    for name in params:
        if name == "pk":
            values[name] = ids["document"] if re.search(r"documents/<int:pk>", route) else ids["record"]
        elif name in ("doc", "document", "resource_id"):
            values[name] = ids["document"]
        elif name == "export_pk":
            values[name] = ids["export"]
        elif name == "rid":
            values[name] = str(ids["record"])
        elif name in ("version", "version_id"):
            values[name] = 1
        elif name == "purpose":  # finding a professional by name, for one of the manage page's actions
            values[name] = "grant"
        else:
            raise AssertionError(f"The sweep does not know how to fill <{name}> in {route}: teach it.")
    return values


@pytest.fixture
def agent_client(world) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(world.agent.user)
    return client


@pytest.fixture
def targets(world, agent_client):
    """Alice's record, a document in it, one the agent deposited, and an export of hers."""
    written = make_document(world.record, "Cardiology letter qqwx", doc_type=DocumentType.CONSULTATION_REPORT)
    response = agent_client.post(reverse("social_workers:counter_deposit", args=[world.record.pk]), {
        "files": [SimpleUploadedFile("scan.pdf", text_pdf(DEPOSITED_TEXT))],
        "file_type": [DocumentType.DISCHARGE_LETTER], "file_date": ["2025-04-01"],
    })
    assert "1 document was deposited" in response.content.decode()
    deposited = Document.objects.get(record=world.record, added_by=world.agent.user)
    export = RecordExport.objects.create(record=world.record, requested_by=world.alice,
                                         status=RecordExport.Status.READY)
    return {"record": world.record.pk, "written": written, "deposited": deposited, "export": export.pk}


def _forbidden_text(doc: Document) -> list[str]:
    return [doc.title, doc.file.name.rsplit("/", 1)[-1]] + ([DEPOSITED_TEXT] if "zzqx" in doc.extracted_text else [])


def test_the_sweep_knows_every_app():
    names = {name.split(":")[0] for name, _, _ in swept_routes()}
    assert set(SWEPT_NAMESPACES) <= names
    assert set(NO_MEDICAL_CONTENT) <= {name for name, _, _ in swept_routes()}


@pytest.mark.parametrize("which", ["written", "deposited"])
def test_counter_agent_is_refused_every_medical_url(world, agent_client, targets, which):
    document = targets[which]
    ids = {"record": targets["record"], "document": document.pk, "export": targets["export"]}
    query = {"patient": str(ids["record"]), "subject": f"Patient/{ids['record']}",
             "identifier": world.record.identifier}
    forbidden = _forbidden_text(document)
    failures = []
    swept = 0
    for name, route, params in swept_routes():
        if name in NO_MEDICAL_CONTENT:
            continue
        url = reverse(name, kwargs=_kwargs(route, params, ids))
        reached = False
        for method in ("get", "post"):
            response = getattr(agent_client, method)(url, query if method == "get" else {})
            swept += 1
            body = response.content.decode(errors="replace") if not getattr(response, "streaming", False) \
                else b"".join(response.streaming_content).decode(errors="replace")
            if response.status_code == 405:
                continue  # the view does not accept this method: nothing done, nothing shown
            reached = True
            if response.status_code not in REFUSED:
                failures.append(f"{method.upper()} {url} ({name}) -> {response.status_code}")
            leaked = [text for text in forbidden if text and text in body]
            if leaked:
                failures.append(f"{method.upper()} {url} ({name}) shows {leaked}")
        if not reached:
            failures.append(f"{url} ({name}) accepts neither GET nor POST: the sweep tested nothing")
    assert swept > 100
    assert not failures, "\n".join(failures)


def test_the_agent_cannot_read_what_they_deposited(world, agent_client, targets):
    doc = targets["deposited"]
    urls = [
        reverse("portal_patient:document_file", args=[doc.pk]),
        reverse("portal_pro:document_file", args=[doc.pk]),
        reverse("portal_patient:document", args=[world.record.pk, doc.pk]),
        reverse("portal_patient:document_download", args=[world.record.pk, doc.pk]),
        reverse("portal_patient:document_thumbnail", args=[world.record.pk, doc.pk]),
        f"/fhir/Binary/{doc.pk}",
        f"/fhir/DocumentReference/{doc.pk}",
    ]
    for url in urls:
        response = agent_client.get(url)
        assert response.status_code in REFUSED, url
        if not getattr(response, "streaming", False):
            assert DEPOSITED_TEXT.encode() not in response.content and doc.title.encode() not in response.content
    # Nor does the counter's own dashboard name it.
    body = agent_client.get(reverse("social_workers:dashboard")).content.decode()
    assert doc.title not in body and str(doc.pk) not in re.findall(r"documents/(\d+)", body)
