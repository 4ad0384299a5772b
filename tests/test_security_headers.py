"""Security headers on each kind of response (docs/security.md): a strict Content-Security-
Policy (no inline script), a Permissions-Policy switching browser features off, and
`Cache-Control: no-store` on everything Django answers; static files keep their caching."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse
from django.utils.module_loading import import_string

from dmp import celery_app
from dmp.models import RecordExport
from dmp.policy import Actor
from dmp.services import api_token_create


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part}


def _assert_protected(response, what: str, *, uploaded_file: bool = False) -> None:
    csp = _policy(response)
    if uploaded_file:
        # A file (a document, the record's ZIP) under the policy its view set: a sandbox
        # allowing nothing (no script), as an attachment.
        assert csp["sandbox"] == [] and csp["default-src"] == ["'none'"], what
        assert response["Content-Disposition"].startswith("attachment"), what
    else:
        assert csp["script-src"] == ["'self'"], what  # no 'unsafe-inline', no 'unsafe-eval', no host
        assert csp["default-src"] == ["'none'"] and csp["object-src"] == ["'none'"], what
        assert csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'none'"], what
    assert "'unsafe-inline'" not in response["Content-Security-Policy"], what
    assert "no-store" in response["Cache-Control"], what
    features = dict(part.strip().split("=") for part in response["Permissions-Policy"].split(","))
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert features[feature] == "()", (what, feature)


def _logged_in(client, user):
    client.force_login(user)
    return client


def _export(client, world, monkeypatch, capture):
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    with capture(execute=True):
        client.post(reverse("portal_patient:export", args=[world.record.pk]))
    export = RecordExport.objects.get(record=world.record)
    return reverse("portal_patient:export_download", args=[world.record.pk, export.pk])


def _fhir(world, path):
    _token, raw = api_token_create(actor=Actor(world.dr_house.user), label="Logiciel")
    return path, {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


# (what, who is logged in, how to get the URL and extra headers, expected status, content type)
RESPONSES = [
    ("login page", None, lambda w: ("/accounts/login/", {}), 200, "text/html"),
    ("landing page", None, lambda w: ("/", {}), 200, "text/html"),
    ("patient record page", "alice", lambda w: (reverse("portal_patient:record", args=[w.record.pk]), {}),
     200, "text/html"),
    ("patient documents", "alice", lambda w: (reverse("portal_patient:documents", args=[w.record.pk]), {}),
     200, "text/html"),
    ("patient document file", "alice",
     lambda w: (reverse("portal_patient:document_file", args=[w.docs["consultation"].pk]), {}), 200, ""),
    ("clinician home", "dr_house", lambda w: (reverse("portal_pro:home"), {}), 200, "text/html"),
    ("clinician patient screen", "dr_house", lambda w: (reverse("portal_pro:record", args=[w.record.pk]), {}),
     200, "text/html"),
    ("clinician patient screen PDF", "dr_house",
     lambda w: (reverse("portal_pro:record_pdf", args=[w.record.pk]), {}), 200, "application/pdf"),
    ("clinician document file", "dr_house",
     lambda w: (reverse("portal_pro:document_file", args=[w.docs["consultation"].pk]), {}), 200, ""),
    ("counter dashboard", "agent", lambda w: (reverse("social_workers:dashboard"), {}), 200, "text/html"),
    ("admin", "admin", lambda w: ("/" + settings.ADMIN_URL, {}), 200, "text/html"),
    ("FHIR Patient", None, lambda w: _fhir(w, f"/fhir/Patient/{w.record.pk}"), 200, "application/fhir+json"),
    ("FHIR error OperationOutcome", None, lambda w: _fhir(w, "/fhir/Patient/999999999"), 404,
     "application/fhir+json"),
    ("a missing page", None, lambda w: ("/no/such/page/", {}), 404, "text/html"),
]


@pytest.mark.parametrize(("what", "who", "where", "status", "content_type"), RESPONSES, ids=[r[0] for r in RESPONSES])
def test_every_kind_of_response_carries_the_security_headers(client, world, what, who, where, status, content_type):
    people = {"alice": world.alice, "dr_house": world.dr_house.user, "agent": world.agent.user, "admin": world.admin}
    if who:
        _logged_in(client, people[who])
    url, extra = where(world)
    response = client.get(url, **extra)
    assert response.status_code == status, what
    assert response["Content-Type"].startswith(content_type), what
    _assert_protected(response, what, uploaded_file=content_type == "")


def test_the_record_export_download_carries_the_security_headers(client, world, monkeypatch,
                                                                django_capture_on_commit_callbacks):
    _logged_in(client, world.alice)
    response = client.get(_export(client, world, monkeypatch, django_capture_on_commit_callbacks))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    _assert_protected(response, "export download", uploaded_file=True)


def test_a_policy_the_view_set_itself_is_kept_and_the_file_still_not_stored():
    """Document files are served with their own `sandbox` policy: the site's policy must not
    replace it, and the file must still not be cached."""
    def file_view(request):
        response = HttpResponse(b"%PDF-1.7", content_type="application/pdf")
        response["Content-Security-Policy"] = "sandbox"
        response["Content-Disposition"] = 'attachment; filename="document.pdf"'
        response["Cache-Control"] = "max-age=3600"  # whatever a view says, files are not kept
        return response

    ours = ("csp.middleware.CSPMiddleware", "dmp.headers.SecurityHeadersMiddleware")
    handler = file_view
    for path in reversed([m for m in settings.MIDDLEWARE if m in ours]):
        handler = import_string(path)(handler)
    response = handler(RequestFactory().get("/patient/documents/1/file/"))
    assert response["Content-Security-Policy"] == "sandbox"
    assert response["Cache-Control"] == "no-store"
    assert "camera=()" in response["Permissions-Policy"]


def test_static_files_are_cacheable_and_pass_untouched(client):
    response = client.get("/static/js/dmp.js")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")
    assert "Content-Security-Policy" not in response


def test_no_page_template_holds_inline_script_or_event_handler():
    """The policy forbids them; the browser test shows the main pages run without violation,
    this catches the pages it does not visit. E-mail and PDF templates are not pages."""
    import re

    offenders = []
    for template in settings.BASE_DIR.joinpath("templates").rglob("*.html"):
        relative = template.relative_to(settings.BASE_DIR / "templates").as_posix()
        if relative.startswith(("notifications/", "account/email/")) or "pdf" in relative:
            continue
        text = template.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", text) \
                or re.search(r"\son[a-z]+\s*=", text) or "javascript:" in text or re.search(r"\sstyle=", text):
            offenders.append(relative)
    assert offenders == []
