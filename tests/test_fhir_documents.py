"""The FHIR documents API (DocumentReference create/read/search, Binary): a document pushed by
practice software lands in the record like one added in the portal, reads it back, never
twice, and every refusal of DOMAIN.md §4 holds through the API exactly as in the portals."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.operationoutcome import OperationOutcome

from dmp.models import AuditEntry, Document, DocumentType
from dmp.policy import Actor
from dmp.selectors import DocumentFilters, documents_matching
from dmp.services import api_token_create, api_token_revoke
from tests.personas import enrol_totp, make_document, make_documents, make_professional
from tests.sample_files import image_bytes, text_pdf

pytestmark = pytest.mark.django_db

DR = "/fhir/DocumentReference"
FHIR_JSON = "application/fhir+json"


def _token(pro) -> str:
    return api_token_create(actor=Actor(pro.user), label="Logiciel de cabinet")[1]


def _headers(raw: str, **extra) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}", **extra}


def _resource(record_pk: int, content: bytes, *, doc_type=DocumentType.CONSULTATION_REPORT,
              content_type="application/pdf", **extra) -> dict:
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": f"Patient/{record_pk}"},
        "type": {"coding": [{"system": "urn:dmp:document-type", "code": doc_type}]},
        "description": "Consultation du 3 mars",
        "context": {"period": {"start": "2026-03-03"}},
        "content": [{"attachment": {"contentType": content_type, "data": base64.b64encode(content).decode()}}],
        **extra,
    }


def _push(client, raw, body, **headers):
    return client.post(DR, body, content_type=FHIR_JSON, **_headers(raw, **headers))


def _outcome(response, status: int) -> str:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith(FHIR_JSON)
    outcome = OperationOutcome.model_validate(response.json())
    return outcome.issue[0].diagnostics


def test_push_a_pdf_creates_the_document_and_reads_it_back(client, world):
    raw = _token(world.dr_house)
    pdf = text_pdf("Compte rendu de consultation")
    response = _push(client, raw, _resource(world.record.pk, pdf))
    assert response.status_code == 201, response.content
    resource = DocumentReference.model_validate(response.json())
    document = Document.objects.get(pk=int(resource.id))
    assert response["Location"].endswith(f"/fhir/DocumentReference/{document.pk}")
    assert document.record == world.record
    assert document.space == "reports" and document.doc_type == DocumentType.CONSULTATION_REPORT
    assert document.author_professional == world.dr_house
    assert document.title == "Consultation du 3 mars" and str(document.act_date) == "2026-03-03"
    assert document.content_hash == hashlib.sha256(pdf).hexdigest()
    assert resource.subject.reference == f"Patient/{world.record.pk}"
    assert resource.author[0].reference == f"Practitioner/{world.dr_house.pk}"
    assert resource.category[0].coding[0].code == "reports"
    assert resource.content[0].attachment.url == f"Binary/{document.pk}"
    assert AuditEntry.objects.filter(actor=world.dr_house.user, action="add_document", allowed=True).count() == 1

    read = client.get(f"{DR}/{document.pk}", **_headers(raw))
    assert read.status_code == 200
    assert DocumentReference.model_validate(read.json()).id == str(document.pk)
    assert AuditEntry.objects.filter(actor=world.dr_house.user, action="view_document",
                                     object_id=str(document.pk)).exists()
    file = client.get(f"/fhir/Binary/{document.pk}", **_headers(raw, HTTP_ACCEPT="application/pdf"))
    assert file.status_code == 200 and file["Content-Type"] == "application/pdf"
    assert file.content == pdf
    as_resource = client.get(f"/fhir/Binary/{document.pk}", **_headers(raw, HTTP_ACCEPT=FHIR_JSON))
    binary = Binary.model_validate(as_resource.json())
    assert binary.contentType == "application/pdf" and binary.data == pdf


def test_a_duplicate_push_returns_the_existing_document_and_says_so(client, world):
    raw = _token(world.dr_house)
    body = _resource(world.record.pk, text_pdf("Une seule fois"))
    first = _push(client, raw, body)
    assert first.status_code == 201
    count = Document.objects.count()
    again = _push(client, raw, body)
    assert again.status_code == 200
    assert Document.objects.count() == count
    resource = DocumentReference.model_validate(again.json())
    assert resource.id == first.json()["id"]
    assert any(tag.code == "duplicate" for tag in resource.meta.tag)
    assert again["X-DMP-Outcome"].startswith("duplicate")
    # Another professional with access pushing the same file: the same answer.
    again = _push(client, _token(world.dr_grant), body)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert Document.objects.count() == count


def test_if_none_exist_returns_the_match_without_reading_the_body(client, world):
    raw = _token(world.dr_house)
    pdf = text_pdf("Conditionnel")
    first = _push(client, raw, _resource(world.record.pk, pdf))
    digest = hashlib.sha256(pdf).hexdigest()
    assert first.json()["masterIdentifier"] == {"system": "urn:dmp:content-sha256", "value": digest}
    count = Document.objects.count()
    for criteria in (f"identifier=urn:dmp:content-sha256|{digest}", f"_content-hash={digest}"):
        # Even with another file in the body: the condition matched, nothing is created.
        response = _push(client, raw, _resource(world.record.pk, text_pdf("Autre")), HTTP_IF_NONE_EXIST=criteria)
        assert response.status_code == 200
        assert DocumentReference.model_validate(response.json()).id == first.json()["id"]
    assert Document.objects.count() == count
    # No match: created.
    other = "0" * 64
    response = _push(client, raw, _resource(world.record.pk, text_pdf("Nouveau")),
                     HTTP_IF_NONE_EXIST=f"_content-hash={other}")
    assert response.status_code == 201
    assert "If-None-Exist" in _outcome(_push(client, raw, _resource(world.record.pk, pdf),
                                             HTTP_IF_NONE_EXIST="name=x"), 400)


def test_push_through_a_binary_uploaded_first(client, world):
    raw = _token(world.dr_house)
    png = image_bytes("PNG")
    upload = client.post("/fhir/Binary", {"resourceType": "Binary", "contentType": "image/png",
                                          "data": base64.b64encode(png).decode()},
                         content_type=FHIR_JSON, **_headers(raw))
    assert upload.status_code == 201
    binary = Binary.model_validate(upload.json())
    body = _resource(world.record.pk, b"", doc_type=DocumentType.NON_DICOM_IMAGE, content_type="image/png")
    body["content"] = [{"attachment": {"contentType": "image/png", "url": f"Binary/{binary.id}"}}]
    # Only its uploader can use it.
    assert _push(client, _token(world.dr_grant), body).status_code == 422
    response = _push(client, raw, body)
    assert response.status_code == 201
    document = Document.objects.get(pk=int(response.json()["id"]))
    assert document.space == "imaging" and document.mime_type == "image/png"
    assert client.get(f"/fhir/Binary/{document.pk}", **_headers(raw, HTTP_ACCEPT="image/png")).content == png
    # Used once, then gone.
    assert _push(client, raw, body).status_code == 422


def test_a_hidden_document_is_404_except_for_the_treating_doctor(client, world):
    # Written by Dr House, hidden by Alice: Dr Grant is not its author, the physiotherapist neither.
    hidden = make_document(world.record, "hidden by alice", author=world.dr_house, hidden_from_professionals=True)
    for pro in (world.dr_grant, world.kine):
        raw = _token(pro)
        assert _outcome(client.get(f"{DR}/{hidden.pk}", **_headers(raw)), 404) == "Resource not found."
        missing = client.get(f"{DR}/999999", **_headers(raw))
        assert missing.json() == client.get(f"{DR}/{hidden.pk}", **_headers(raw)).json()
        assert client.get(f"/fhir/Binary/{hidden.pk}", **_headers(raw)).status_code == 404
        listed = client.get(DR, {"patient": world.record.pk}, **_headers(raw)).json()
        assert str(hidden.pk) not in {e["resource"]["id"] for e in listed.get("entry", [])}
    raw = _token(world.dr_house)
    assert client.get(f"{DR}/{hidden.pk}", **_headers(raw)).status_code == 200
    assert client.get(f"/fhir/Binary/{hidden.pk}", **_headers(raw, HTTP_ACCEPT="*/*")).status_code == 200


@pytest.mark.parametrize("persona", ["blocked_kine", "stranger"])
def test_blocked_and_unauthorised_professionals_get_404_everywhere(client, world, persona):
    pro = getattr(world, persona)
    raw = _token(pro)
    record = world.record
    assert _outcome(client.get(DR, {"patient": record.pk}, **_headers(raw)), 404) == "Resource not found."
    assert client.get(f"{DR}/{world.docs['consultation'].pk}", **_headers(raw)).status_code == 404
    assert client.get(f"/fhir/Binary/{world.docs['imaging'].pk}", **_headers(raw)).status_code == 404
    count = Document.objects.count()
    push = _push(client, raw, _resource(record.pk, text_pdf("Refused"), doc_type=DocumentType.AUXILIARY_CARE_REPORT))
    # The same answer as for a patient that does not exist.
    assert _outcome(push, 404) == _outcome(_push(client, raw, _resource(999999, text_pdf("x"))), 404)
    assert Document.objects.count() == count
    assert AuditEntry.objects.filter(actor=pro.user, action="add_document", allowed=False).exists()


def test_emergency_access_reads_but_does_not_write(client, world):
    raw = _token(world.urgentist)
    assert client.get(DR, {"patient": world.record.pk}, **_headers(raw)).status_code == 200
    count = Document.objects.count()
    message = _outcome(_push(client, raw, _resource(world.record.pk, text_pdf("Urgences"),
                                                    doc_type=DocumentType.EMERGENCY_REPORT)), 403)
    assert "read" in message
    assert Document.objects.count() == count


def test_a_counter_agent_is_refused_and_cannot_hold_a_token(client, world):
    client.force_login(world.agent.user)
    assert client.get(DR, {"patient": world.record.pk}).status_code == 403
    response = client.post(DR, _resource(world.record.pk, text_pdf("Guichet")), content_type=FHIR_JSON)
    assert _outcome(response, 403)
    with pytest.raises(Exception):  # noqa: B017 - the service refuses in its own way
        api_token_create(actor=Actor(world.agent.user), label="guichet")


def test_a_revoked_or_unknown_token_is_401(client, world):
    token, raw = api_token_create(actor=Actor(world.dr_house.user), label="poste")
    api_token_revoke(actor=Actor(world.dr_house.user), token=token)
    response = client.get(DR, {"patient": world.record.pk}, **_headers(raw))
    assert _outcome(response, 401)
    assert response["WWW-Authenticate"] == "Bearer"
    assert _push(client, raw, _resource(world.record.pk, text_pdf("x"))).status_code == 401
    assert client.get(DR, {"patient": world.record.pk}, **_headers("dmp_00000000_nope")).status_code == 401


def test_invalid_resources_are_400_with_a_clear_message(client, world):
    raw = _token(world.dr_house)
    count = Document.objects.count()
    bad_json = client.post(DR, "{not json", content_type=FHIR_JSON, **_headers(raw))
    assert _outcome(bad_json, 400)
    wrong = _resource(world.record.pk, text_pdf("x")) | {"resourceType": "Patient"}
    assert "DocumentReference" in _outcome(_push(client, raw, wrong), 400)
    no_attachment = _resource(world.record.pk, text_pdf("x"))
    no_attachment["content"] = [{}]
    assert "attachment" in _outcome(_push(client, raw, no_attachment), 400)
    no_subject = _resource(world.record.pk, text_pdf("x"))
    del no_subject["subject"]
    assert "subject" in _outcome(_push(client, raw, no_subject), 400)
    bad_base64 = _resource(world.record.pk, b"")
    bad_base64["content"][0]["attachment"]["data"] = "%%%not base64"
    assert "base64" in _outcome(_push(client, raw, bad_base64), 400)
    unknown_type = _resource(world.record.pk, text_pdf("x"), doc_type="tarot_reading")
    assert "type" in _outcome(_push(client, raw, unknown_type), 422)
    assert Document.objects.count() == count


def test_too_large_is_413(client, world, settings):
    settings.DOCUMENT_MAX_BYTES = 2000
    raw = _token(world.dr_house)
    big = text_pdf("x" * 3000)
    assert _outcome(_push(client, raw, _resource(world.record.pk, big)), 413)
    settings.DOCUMENT_MAX_BYTES = 200
    # Refused from its declared length, before the body is read.
    assert _outcome(_push(client, raw, _resource(world.record.pk, big)), 413)


def test_content_that_is_not_what_it_says_is_refused(client, world):
    raw = _token(world.dr_house)
    count = Document.objects.count()
    text_as_pdf = _resource(world.record.pk, b"Ceci n'est pas un PDF")
    assert _push(client, raw, text_as_pdf).status_code in (415, 422)
    png_as_pdf = _resource(world.record.pk, image_bytes("PNG"))
    assert "contentType" in _outcome(_push(client, raw, png_as_pdf), 422)
    word = _resource(world.record.pk, text_pdf("x"), content_type="application/msword")
    assert _outcome(_push(client, raw, word), 415)
    broken_pdf = _resource(world.record.pk, b"%PDF-1.4\nnot really\n%%EOF\n")
    assert "PDF" in _outcome(_push(client, raw, broken_pdf), 422)
    assert Document.objects.count() == count


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.content[:300]
    bundle = Bundle.model_validate(response.json())
    assert bundle.type == "searchset"
    return {int(entry.resource.id) for entry in bundle.entry or []}


def test_search_filters_within_what_the_policy_lets_each_professional_see(client, world):
    docs = world.docs
    house = _token(world.dr_house)
    before = AuditEntry.objects.filter(actor=world.dr_house.user, action="view_record").count()
    everything = _ids(client.get(DR, {"patient": world.record.pk}, **_headers(house)))
    assert AuditEntry.objects.filter(actor=world.dr_house.user, action="view_record").count() == before + 1
    assert {docs["consultation"].pk, docs["hidden"].pk, docs["imaging"].pk} <= everything
    assert docs["archived"].pk not in everything and docs["leo_visit"].pk not in everything

    imaging = _ids(client.get(DR, {"patient": f"Patient/{world.record.pk}", "category": "imaging"}, **_headers(house)))
    assert imaging == {docs["imaging"].pk, docs["hidden_imaging"].pk}
    labs = _ids(client.get(DR, {"patient": world.record.pk, "type": "urn:dmp:document-type|lab_report"},
                           **_headers(house)))
    assert labs == {docs["withheld"].pk, docs["released"].pk}
    assert _ids(client.get(DR, {"patient": world.record.pk, "type": "http://loinc.org|11502-2"},
                           **_headers(house))) == labs
    by_grant = _ids(client.get(DR, {"patient": world.record.pk, "author": f"Practitioner/{world.dr_grant.pk}"},
                               **_headers(house)))
    assert docs["own"].pk not in by_grant and docs["consultation"].pk in by_grant

    # `period` is the date of the act (context.period); `date` is DocumentReference.date, when
    # the document was added to the record.
    old = Document.objects.filter(pk=docs["imaging"].pk)
    old.update(act_date=timezone.localdate().replace(year=2020))
    dated = _ids(client.get(f"{DR}?patient={world.record.pk}&period=ge2020-01-01&period=le2020-12-31",
                            **_headers(house)))
    assert dated == {docs["imaging"].pk}
    assert docs["imaging"].pk not in _ids(client.get(DR, {"patient": world.record.pk, "period": "gt2020"},
                                                     **_headers(house)))
    assert docs["imaging"].pk in _ids(client.get(DR, {"patient": world.record.pk, "date": "gt2020"},
                                                 **_headers(house)))
    assert not _ids(client.get(f"{DR}?patient={world.record.pk}&date=ge2020-01-01&date=le2020-12-31",
                               **_headers(house)))
    assert _outcome(client.get(DR, {"patient": world.record.pk, "date": "yesterday"}, **_headers(house)), 400)
    assert _outcome(client.get(DR, **_headers(house)), 400)

    # The physiotherapist: the matrix's types only, never hidden ones.
    kine = _ids(client.get(DR, {"patient": world.record.pk}, **_headers(_token(world.kine))))
    assert docs["imaging"].pk in kine
    assert not kine & {docs["consultation"].pk, docs["hidden"].pk, docs["hidden_imaging"].pk}
    kine_reports = _ids(client.get(DR, {"patient": world.record.pk, "category": "reports"},
                                   **_headers(_token(world.kine))))
    assert kine_reports == set()
    # Dr Grant sees the hidden imaging report he wrote, not one Dr House wrote; Dr House sees both.
    house_hidden = make_document(world.record, "hidden scan", DocumentType.IMAGING_REPORT, author=world.dr_house,
                                 hidden_from_professionals=True)
    grant = _ids(client.get(DR, {"patient": world.record.pk, "category": "imaging"},
                            **_headers(_token(world.dr_grant))))
    assert grant == {docs["imaging"].pk, docs["hidden_imaging"].pk}
    assert house_hidden.pk in _ids(client.get(DR, {"patient": world.record.pk, "category": "imaging"},
                                              **_headers(house)))


def test_a_professional_without_second_factor_is_refused(client, world):
    pro = make_professional("nina_nofactor", second_factor=False)
    enrol_totp(pro.user)
    raw = _token(pro)
    from allauth.mfa.models import Authenticator

    Authenticator.objects.filter(user=pro.user).delete()
    assert client.get(DR, {"patient": world.record.pk}, **_headers(raw)).status_code in (401, 403)


def test_withheld_until_extension_delays_the_result_for_the_patient(client, world):
    raw = _token(world.dr_house)
    until = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    body = _resource(world.record.pk, text_pdf("Resultat"), doc_type=DocumentType.LAB_REPORT,
                     extension=[{"url": "urn:dmp:withheld-until", "valueDateTime": until.isoformat()}])
    response = _push(client, raw, body)
    assert response.status_code == 201
    document = Document.objects.get(pk=int(response.json()["id"]))
    assert document.withheld_from_patient_until == until
    assert document.is_withheld_from_patient()


def _lose_the_race(monkeypatch, *, code, message="This file is already in the record."):
    """Another push of the same file lands between the API's duplicate check and its add: the
    add then refuses it with `code` and `message`."""
    from dmp.api.fhir import documents as api
    from dmp.services import InvalidInput

    real_publish = api.documents_publish

    def publish_after_the_other_push(**kwargs):
        real_publish(**kwargs)  # the other push wins
        raise InvalidInput(message, code=code)

    monkeypatch.setattr(api, "documents_publish", publish_after_the_other_push)


def test_a_push_that_loses_the_race_to_the_same_file_returns_the_existing_document(client, world, monkeypatch):
    from dmp.services import InvalidInputCode

    # The message is not the one the check used to compare: the code decides, in any language.
    _lose_the_race(monkeypatch, code=InvalidInputCode.DUPLICATE, message="Ce fichier est déjà dans le dossier.")
    count = Document.objects.count()
    response = _push(client, _token(world.dr_house), _resource(world.record.pk, text_pdf("Course")))
    assert response.status_code == 200, response.content[:500]
    assert Document.objects.count() == count + 1
    resource = DocumentReference.model_validate(response.json())
    assert any(tag.code == "duplicate" for tag in resource.meta.tag)
    assert response["X-DMP-Outcome"].startswith("duplicate")


def test_a_push_that_loses_the_race_to_a_file_it_may_not_read_is_a_conflict(client, world, monkeypatch):
    from django.http import Http404

    from dmp.api.fhir import documents as api
    from dmp.services import InvalidInputCode

    def not_readable(actor, pk):
        raise Http404

    _lose_the_race(monkeypatch, code=InvalidInputCode.DUPLICATE)
    monkeypatch.setattr(api, "get_document_for", not_readable)
    response = _push(client, _token(world.dr_house), _resource(world.record.pk, text_pdf("Course cachée")))
    assert _outcome(response, 409) == "This file is already in the record."


def test_another_refusal_worded_like_a_duplicate_is_not_taken_for_one(client, world, monkeypatch):
    from dmp.services import InvalidInputCode

    _lose_the_race(monkeypatch, code=InvalidInputCode.STATE)
    response = _push(client, _token(world.dr_house), _resource(world.record.pk, text_pdf("Pas un doublon")))
    assert _outcome(response, 422) == "This file is already in the record."


# --- paging (issue 16: a whole record in one answer was megabytes and seconds) ----------------


@pytest.fixture
def many_documents(world) -> set[int]:
    """120 more documents in Alice's record that Dr House may read, several on the same act
    date (the ordering must still be total)."""
    start = timezone.localdate() - timedelta(days=400)
    documents = make_documents(world.record, [f"lettre {n}" for n in range(120)], author=world.dr_house,
                               act_dates=[start + timedelta(days=n // 3) for n in range(120)])
    return {document.pk for document in documents}


def _bundle(response) -> Bundle:
    assert response.status_code == 200, response.content[:300]
    return Bundle.model_validate(response.json())


def _link(bundle: Bundle, relation: str) -> str | None:
    return next((link.url for link in bundle.link or [] if link.relation == relation), None)


def test_the_search_is_paged_and_the_next_links_reach_every_document_once(client, world, many_documents):
    raw = _token(world.dr_house)
    first = _bundle(client.get(DR, {"subject": f"Patient/{world.record.pk}"}, **_headers(raw)))
    assert len(first.entry) == 50 and _link(first, "previous") is None
    total = first.total  # the 120, and the documents of the world Dr House may read
    assert total == documents_matching(Actor(world.dr_house.user), world.record, DocumentFilters()).count() > 120
    seen, pages, bundle = [], 1, first
    seen += [int(entry.resource.id) for entry in bundle.entry]
    while (url := _link(bundle, "next")) is not None:
        # Only the paging and the patient's id: not the alias, nothing else of the query string.
        assert url.startswith("http://testserver/fhir/DocumentReference?patient=")
        bundle = _bundle(client.get(url, **_headers(raw)))
        assert bundle.total == total and _link(bundle, "previous") is not None
        seen += [int(entry.resource.id) for entry in bundle.entry]
        pages += 1
    assert len(seen) == len(set(seen)) == total and many_documents <= set(seen)
    assert pages == -(-total // 50)
    # Newest act first, and the most recent of the same day first.
    dates = dict(Document.objects.filter(pk__in=seen).values_list("pk", "act_date"))
    assert seen == sorted(seen, key=lambda pk: (dates[pk], pk), reverse=True)


def test_the_paging_links_keep_the_filters_and_nothing_else(client, world, many_documents):
    raw = _token(world.dr_house)
    url = f"{DR}?patient={world.record.pk}&category=reports&date=ge2000-01-01&_count=40&_format=json&foo=bar"
    first = _bundle(client.get(url, **_headers(raw)))
    assert len(first.entry) == 40
    next_url = _link(first, "next")
    assert "category=reports" in next_url and "date=ge2000-01-01" in next_url
    assert "_count=40&_offset=40" in next_url and "foo" not in next_url and "_format" not in next_url
    second = _bundle(client.get(next_url, **_headers(raw)))
    assert not {e.resource.id for e in first.entry} & {e.resource.id for e in second.entry}
    assert "_offset=0" in _link(second, "previous")
    assert _link(second, "self") == next_url


def test_a_count_above_the_maximum_is_brought_down_to_it(client, world, many_documents):
    raw = _token(world.dr_house)
    bundle = _bundle(client.get(DR, {"patient": world.record.pk, "_count": 500}, **_headers(raw)))
    assert len(bundle.entry) == 100 and bundle.total > 100
    assert "_count=100&_offset=100" in _link(bundle, "next")
    # _count=0: the total only.
    empty = _bundle(client.get(DR, {"patient": world.record.pk, "_count": 0}, **_headers(raw)))
    assert empty.total == bundle.total and not empty.entry and _link(empty, "next") is None


@pytest.mark.parametrize("paging", [{"_count": "-1"}, {"_count": "many"}, {"_count": "1.5"}, {"_offset": "-50"},
                                    {"_offset": "x"}, {"_count": "9" * 12}, {"_count": "٣"}])
def test_bad_paging_values_are_400_with_an_operation_outcome(client, world, paging):
    raw = _token(world.dr_house)
    message = _outcome(client.get(DR, {"patient": world.record.pk, **paging}, **_headers(raw)), 400)
    assert next(iter(paging)) in message


def test_the_number_of_queries_is_the_same_whatever_the_page(client, world, many_documents,
                                                             django_assert_max_num_queries):
    raw = _token(world.dr_house)
    client.get(DR, {"patient": world.record.pk}, **_headers(raw))  # the token's first use, sessions…
    with django_assert_max_num_queries(15) as first:
        _bundle(client.get(DR, {"patient": world.record.pk}, **_headers(raw)))
    with django_assert_max_num_queries(len(first.captured_queries)):
        _bundle(client.get(DR, {"patient": world.record.pk, "_offset": 100, "_count": 100}, **_headers(raw)))
    with django_assert_max_num_queries(len(first.captured_queries)):
        _bundle(client.get(DR, {"patient": world.record.pk, "_offset": 50}, **_headers(raw)))


@pytest.mark.parametrize("persona", ["blocked_kine", "stranger"])
def test_paging_changes_no_refusal(client, world, many_documents, persona):
    raw = _token(getattr(world, persona))
    for paging in ({}, {"_count": 10, "_offset": 50}, {"_count": 500}):
        response = client.get(DR, {"patient": world.record.pk, **paging}, **_headers(raw))
        assert _outcome(response, 404) == "Resource not found."
        assert response.json() == client.get(DR, {"patient": 999999, **paging}, **_headers(raw)).json()
