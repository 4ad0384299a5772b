"""The patient's documents screen, through the views: the list and its three views, filters
and full-text search, hide / archive / my selection, adding files to the personal space,
"who can see this, and why", the types hidden by default — and every refusal."""

from __future__ import annotations

import io
import re
import shutil
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from dmp.models import AuditEntry, Document, DocumentType, Record
from dmp.policy import Actor
from dmp.services import document_add
from tests.personas import titled, user_of
from tests.sample_files import image_bytes, text_pdf

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
needs_pdftoppm = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm) missing")


def _list(client, record, **params):
    return client.get(reverse("portal_patient:documents", args=[record.pk]), params)


def _page(response) -> str:
    return response.content.decode()


def _doc_url(name, doc, record=None):
    return reverse(f"portal_patient:{name}", args=[(record or doc.record).pk, doc.pk])


def _pro_adds(world, pro, text, title, doc_type=DocumentType.LAB_REPORT, act_date=date(2025, 11, 4),
              record=None):
    return document_add(actor=Actor(pro.user), record=record or world.record, content=text_pdf(text),
                        doc_type=doc_type, title=title, act_date=act_date)


def _upload(client, record, files, **fields):
    data = {"doc_type": DocumentType.PATIENT_DOCUMENT, "act_date": "2025-06-01", "title": "",
            "files": [SimpleUploadedFile(name, content) for name, content in files]} | fields
    return client.post(reverse("portal_patient:documents_add", args=[record.pk]), data)


# -- the list ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_shows_the_patients_documents_hidden_ones_marked_never_withheld(client, world):
    client.force_login(world.alice)
    page = _page(_list(client, world.record))
    for title in ("consultation", "imaging", "hidden", "released", "own"):
        assert f">{title}</a>" in page
    assert re.search(r'>hidden</a> <span class="tag tag-hidden">hidden from professionals</span>', page)
    assert not re.search(r'>consultation</a> <span class="tag tag-hidden">', page)
    assert ">withheld</a>" not in page  # not yet announced: not there at all
    assert ">archived</a>" not in page  # current documents unless asked
    assert "leo" not in page
    archived = _page(_list(client, world.record, status="archived"))
    assert ">archived</a>" in archived and ">consultation</a>" not in archived
    every = _page(_list(client, world.record, status="all"))
    assert ">archived</a>" in every and ">consultation</a>" in every and ">withheld</a>" not in every
    assert not AuditEntry.objects.exists()  # the patient's own reads are not in the access log


@pytest.mark.django_db
def test_representative_list_never_shows_documents_hidden_from_representatives(client, world):
    client.force_login(world.mother)
    page = _page(_list(client, world.leo_record, status="all"))
    assert ">leo visit</a>" in page
    assert ">leo confidential</a>" not in page and ">leo withheld</a>" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("view, marker", [
    ("list", 'class="doc-list"'), ("timeline", 'class="doc-timeline"'), ("thumbnails", 'class="doc-grid"'),
])
def test_each_view_shows_the_documents(client, world, view, marker):
    with_thumbnail = document_add(actor=Actor(world.alice), record=world.record, content=image_bytes(),
                                  doc_type=DocumentType.PATIENT_DOCUMENT, title="photo", act_date=date(2025, 3, 9))
    client.force_login(world.alice)
    page = _page(_list(client, world.record, view=view))
    assert marker in page
    assert ">consultation<" in page and ">photo<" in page and ">withheld<" not in page
    if view == "timeline":  # grouped by month, newest first
        assert page.index("January 2026") < page.index("March 2025")
    if view == "thumbnails":
        assert _doc_url("document_thumbnail", with_thumbnail) in page
        assert 'class="doc-icon"' in page  # the persona documents have none: their type instead


@pytest.mark.django_db
def test_spaces_are_tabs_with_counts_and_filter_the_list(client, world):
    client.force_login(world.alice)
    page = _page(_list(client, world.record))
    for space in ("Summaries", "Laboratory results", "Personal space", "Reimbursement data"):
        assert space in page
    # consultation, imaging, hidden, hidden imaging, released, own: 6 current documents.
    assert re.search(r"All spaces <span class=\"count\">6</span>", page)
    assert re.search(r"Laboratory results <span class=\"count\">1</span>", page)
    biology = _page(_list(client, world.record, space="biology"))
    assert ">released</a>" in biology and ">consultation</a>" not in biology


@pytest.mark.django_db
def test_filters_by_author_profession_and_dates_are_posted_and_kept(client, world):
    _pro_adds(world, world.dr_house, "Radio du genou", "knee", DocumentType.IMAGING_REPORT, date(2024, 5, 2))
    client.force_login(world.alice)
    url = reverse("portal_patient:documents", args=[world.record.pk])
    response = client.post(url, {"author": f"pro:{world.dr_house.pk}", "view": "timeline"})
    assert response.status_code == 302
    assert response["Location"] == f"{url}?view=timeline"  # the author stays out of the URL
    page = _page(client.get(response["Location"]))
    assert ">knee</a>" in page and ">consultation</a>" not in page
    assert "Only the documents that match" in page
    # Another tab keeps the filters (they live in the session for this record).
    assert ">knee</a>" in _page(_list(client, world.record, space="imaging"))

    client.post(url, {"profession": "p:gp", "date_from": "2026-01-01", "date_to": "2026-12-31"})
    page = _page(_list(client, world.record))
    assert ">consultation</a>" in page and ">knee</a>" not in page and ">own</a>" not in page

    client.post(url, {"author": "src:patient:"})
    page = _page(_list(client, world.record))
    assert ">own</a>" in page and ">consultation</a>" not in page

    client.post(url, {"clear": "1"})
    page = _page(_list(client, world.record))
    assert ">own</a>" in page and ">consultation</a>" in page and ">knee</a>" in page


@pytest.mark.django_db
def test_a_period_that_ends_before_it_starts_is_explained(client, world):
    client.force_login(world.alice)
    response = client.post(reverse("portal_patient:documents", args=[world.record.pk]),
                           {"date_from": "2026-02-01", "date_to": "2026-01-01"})
    assert response.status_code == 400
    assert "The end of the period comes before its start." in _page(response)


@pytest.mark.django_db
def test_full_text_search_finds_titles_and_the_words_inside_pdfs_without_putting_them_in_a_url(client, world):
    _pro_adds(world, world.dr_grant, "Hemoglobine glyquee HbA1c 7,2 pour cent", "Bilan sanguin")
    _pro_adds(world, world.dr_grant, "Echographie abdominale normale", "Echo", DocumentType.IMAGING_REPORT)
    client.force_login(world.alice)
    url = reverse("portal_patient:documents", args=[world.record.pk])

    response = client.post(url, {"text": "glyquee"})
    assert response.status_code == 302 and "glyquee" not in response["Location"]
    page = _page(client.get(response["Location"]))
    assert ">Bilan sanguin</a>" in page and ">Echo</a>" not in page and ">consultation</a>" not in page
    assert 'value="glyquee"' in page  # the form shows what was searched

    client.post(url, {"text": "sanguin"})  # a word of the title
    page = _page(_list(client, world.record))
    assert ">Bilan sanguin</a>" in page and ">Echo</a>" not in page

    client.post(url, {"text": "abdominal"})  # French stemming: "abdominale"
    assert ">Echo</a>" in _page(_list(client, world.record))
    client.post(url, {"text": "hemoglo"})  # a word begun
    assert ">Bilan sanguin</a>" in _page(_list(client, world.record))
    client.post(url, {"text": "radiothérapie"})
    assert "No document matches." in _page(_list(client, world.record))


@pytest.mark.django_db
def test_search_never_finds_what_the_patient_may_not_see(client, world):
    withheld = _pro_adds(world, world.dr_grant, "Resultat confidentiel biopsie", "Biopsie")
    Document.objects.filter(pk=withheld.pk).update(withheld_from_patient_until="2999-01-01T00:00:00Z")
    client.force_login(world.alice)
    client.post(reverse("portal_patient:documents", args=[world.record.pk]), {"text": "biopsie"})
    assert ">Biopsie</a>" not in _page(_list(client, world.record))


@pytest.mark.django_db
def test_list_query_count_does_not_grow_with_documents(client, world, django_assert_max_num_queries):
    client.force_login(world.alice)
    _list(client, world.record)  # the session's renewal: not what is measured
    with django_assert_max_num_queries(15) as few:
        assert _list(client, world.record, status="all").status_code == 200
    for n in range(25):
        photo = document_add(actor=Actor(world.alice), record=world.record, content=image_bytes(colour=(n, 1, 2)),
                             doc_type=DocumentType.PATIENT_DOCUMENT, title=f"photo {n}",
                             act_date=date(2025, 1 + n % 12, 3))
        Document.objects.filter(pk=photo.pk).update(hidden_from_professionals=n % 2 == 0)
    with django_assert_max_num_queries(len(few)):
        assert _list(client, world.record, status="all").status_code == 200
    for view in ("list", "timeline", "thumbnails"):
        with django_assert_max_num_queries(15):
            response = _list(client, world.record, view=view, status="all")
        assert response.status_code == 200 and ">photo 24<" in _page(response)
    client.force_login(world.mother)  # a representative's read is logged: one append, 3 queries
    _list(client, world.leo_record)
    with django_assert_max_num_queries(15):
        assert _list(client, world.leo_record).status_code == 200


# -- one document -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_document_page_opens_downloads_and_says_who_can_see_it_and_why(client, world):
    hidden = world.docs["hidden"]
    client.force_login(world.alice)
    page = _page(client.get(_doc_url("document", hidden)))
    assert "<h1 dir=\"auto\">hidden</h1>" in page
    assert reverse("portal_patient:document_file", args=[hidden.pk]) in page
    may, _sep, may_not = page.partition("Cannot see it")
    assert "Gregory House" in may and "Médecin traitant: sees every document" in may  # the médecin traitant
    assert "Anna Grant" in may and "Author of this document" in may  # the author
    assert "Kim Kine" not in may and "Kim Kine" in may_not
    assert "Hidden from professionals: only the médecin traitant and the author still see it." in may_not
    assert "Bob Kine" in may_not and "Blocked by the patient" in may_not
    assert "Hidden documents stay hidden in an emergency." in may_not
    assert "Alice Martin" in may

    download = client.get(_doc_url("document_download", hidden))
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment;")
    assert b"".join(download.streaming_content).startswith(b"%PDF-")


@pytest.mark.django_db
def test_who_can_see_a_visible_document_follows_the_matrix(client, world):
    client.force_login(world.alice)
    may, _sep, may_not = _page(client.get(_doc_url("document", world.docs["consultation"]))).partition("Cannot see it")
    assert "Gregory House" in may and "Anna Grant" in may
    assert "Kim Kine" in may_not and "Their profession may not read this type of document." in may_not


@pytest.mark.django_db
def test_representative_sees_minor_is_hidden_from_them_nowhere_but_the_holder_is_told(client, world):
    client.force_login(world.leo)
    may, _sep, may_not = _page(client.get(_doc_url("document", world.docs["leo_confidential"]))).partition(
        "Cannot see it")
    assert "Marie Parent" in may_not and "Hidden from legal representatives" in may_not


# -- hide, archive, my selection --------------------------------------------------------------


@pytest.mark.django_db
def test_hiding_and_showing_again_changes_what_professionals_read(client, world):
    imaging = world.docs["imaging"]
    pro_file = reverse("portal_pro:document_file", args=[imaging.pk])
    client.force_login(world.kine.user)
    assert client.get(pro_file).status_code == 200

    client.force_login(world.alice)
    response = client.post(_doc_url("document_visibility", imaging), {"hidden": "1"})
    assert response.status_code == 302 and response["Location"] == _doc_url("document", imaging)
    assert Document.objects.get(pk=imaging.pk).hidden_from_professionals
    assert "hidden from professionals" in _page(client.get(_doc_url("document", imaging)))
    client.force_login(world.kine.user)
    assert client.get(pro_file).status_code == 404
    client.force_login(world.dr_house.user)  # the médecin traitant still reads it
    assert client.get(pro_file).status_code == 200

    client.force_login(world.alice)
    client.post(_doc_url("document_visibility", imaging), {"hidden": "0"})
    client.force_login(world.kine.user)
    assert client.get(pro_file).status_code == 200
    assert not AuditEntry.objects.filter(action="hide_document").exists()  # the patient's own acts


@pytest.mark.django_db
def test_hiding_a_document_hides_its_earlier_versions_too(client, world):
    old = world.docs["imaging"]
    new = document_add(actor=Actor(world.dr_grant.user), record=world.record, content=text_pdf("v2"),
                       doc_type=old.doc_type, title="imaging v2", act_date=old.act_date, replaces=old)
    client.force_login(world.alice)
    client.post(_doc_url("document_visibility", new), {"hidden": "1"})
    assert Document.objects.get(pk=old.pk).hidden_from_professionals
    client.force_login(world.kine.user)
    assert client.get(reverse("portal_pro:document_file", args=[old.pk])).status_code == 404


@pytest.mark.django_db
def test_a_representatives_hide_is_in_the_access_history(client, world):
    client.force_login(world.mother)
    visit = world.docs["leo_visit"]
    client.post(_doc_url("document_visibility", visit), {"hidden": "1"})
    entry = AuditEntry.objects.get(action="hide_document")
    assert (entry.mode, entry.allowed, entry.role, entry.record_id_ref) == (
        "representative", True, "representative", world.leo_record.pk)
    assert AuditEntry.objects.count() == 1  # one entry for one action


@pytest.mark.django_db
def test_archive_and_bring_back(client, world):
    consultation = world.docs["consultation"]
    client.force_login(world.alice)
    client.post(_doc_url("document_archive", consultation), {"archived": "1"})
    assert Document.objects.get(pk=consultation.pk).status == "archived"
    assert ">consultation</a>" not in _page(_list(client, world.record))
    assert ">consultation</a>" in _page(_list(client, world.record, status="archived"))
    client.post(_doc_url("document_archive", consultation), {"archived": "0"})
    assert ">consultation</a>" in _page(_list(client, world.record))


@pytest.mark.django_db
def test_my_selection_belongs_to_each_account(client, world):
    visit = world.docs["leo_visit"]
    client.force_login(world.mother)
    here = reverse("portal_patient:documents", args=[world.leo_record.pk])
    response = client.post(_doc_url("document_select", visit), {"selected": "1", "next": here})
    assert response["Location"] == here
    assert ">leo visit</a>" in _page(_list(client, world.leo_record, selected="1"))
    assert "in my selection" in _page(client.get(_doc_url("document", visit)))

    client.force_login(world.leo)  # Léo's selection is his own
    page = _page(_list(client, world.leo_record, selected="1"))
    assert ">leo visit</a>" not in page and "No document matches." in page

    client.force_login(world.mother)
    client.post(_doc_url("document_select", visit), {"selected": "0"})
    assert ">leo visit</a>" not in _page(_list(client, world.leo_record, selected="1"))


@pytest.mark.django_db
def test_a_foreign_next_address_is_ignored(client, world):
    client.force_login(world.alice)
    own = world.docs["own"]
    response = client.post(_doc_url("document_select", own), {"selected": "1", "next": "https://evil.example/"})
    assert response["Location"] == _doc_url("document", own)


# -- adding to the personal space -------------------------------------------------------------


@pytest.mark.django_db
def test_several_files_are_added_at_once_with_one_type_and_date(client, world):
    client.force_login(world.alice)
    response = _upload(client, world.record, [
        ("Directives anticipées.pdf", text_pdf("Mes directives anticipees")),
        ("carte_groupe sanguin.png", image_bytes("PNG")),
        ("ordonnance.jpg", image_bytes("JPEG")),
    ], doc_type=DocumentType.ADVANCE_DIRECTIVES, act_date="2025-06-01")
    assert response.status_code == 302
    assert response["Location"] == reverse("portal_patient:documents", args=[world.record.pk]) + "?space=personal"
    added = Document.objects.filter(record=world.record, doc_type=DocumentType.ADVANCE_DIRECTIVES)
    assert sorted(added.values_list("title", flat=True)) == ["Directives anticipées", "carte groupe sanguin",
                                                             "ordonnance"]
    assert {(d.space, d.act_date, d.author_kind, d.hidden_from_professionals) for d in added} == {
        ("personal", date(2025, 6, 1), "patient", False)}
    assert sorted(added.values_list("mime_type", flat=True)) == ["application/pdf", "image/jpeg", "image/png"]
    assert added.get(mime_type="application/pdf").extracted_text == "Mes directives anticipees"
    assert all(d.thumbnail for d in added.exclude(mime_type="application/pdf"))
    assert "3 documents added to the personal space." in _page(client.get(response["Location"]))


@pytest.mark.django_db
def test_a_title_given_once_is_numbered(client, world):
    client.force_login(world.mother)
    _upload(client, world.leo_record, [("a.png", image_bytes(colour=(1, 1, 1))), ("b.png", image_bytes())],
            title="  Carnet de santé ")
    titles = set(world.leo_record.documents.filter(space="personal").values_list("title", flat=True))
    assert titles == {"Carnet de santé (1/2)", "Carnet de santé (2/2)"}


@pytest.mark.django_db
def test_the_script_gets_json_when_all_went_well(client, world):
    client.force_login(world.alice)
    response = client.post(reverse("portal_patient:documents_add", args=[world.record.pk]), {
        "doc_type": DocumentType.PATIENT_DOCUMENT, "act_date": "2025-06-01",
        "files": [SimpleUploadedFile("x.png", image_bytes())],
    }, headers={"X-Requested-With": "XMLHttpRequest"})
    assert response.json() == {"location": reverse("portal_patient:documents", args=[world.record.pk])
                               + "?space=personal"}


@pytest.mark.django_db
@pytest.mark.parametrize("name, content, message", [
    ("notes.txt", b"Just some words", "Only PDF files, images (PNG, JPEG) and CDA R2 documents (XML)"),
    ("scan.pdf", b"I am text pretending to be a PDF", "Only PDF files, images (PNG, JPEG) and CDA R2 documents (XML)"),
    ("broken.pdf", b"%PDF-1.4\nnothing of a PDF after this line\n%%EOF\n", "This file is not a valid PDF."),
    ("empty.pdf", b"", "The file is empty."),
])
def test_one_refused_file_among_valid_ones_stores_nothing_and_is_named(client, world, name, content, message):
    before = Document.objects.count()
    client.force_login(world.alice)
    response = _upload(client, world.record, [("good.pdf", text_pdf("good")), (name, content),
                                              ("good.png", image_bytes())])
    assert response.status_code == 400
    page = _page(response)
    assert "No file was added." in page
    assert f"<strong><bdi>{name}</bdi></strong>: {message}" in page
    assert "good.pdf</strong>" not in page  # only the refused file is named
    assert Document.objects.count() == before


@pytest.mark.django_db
def test_a_failure_while_storing_leaves_no_row_and_no_file(client, world, settings, monkeypatch):
    """Two uploads of the same file can race past the checks: if the second file of a batch
    loses, the first one is not kept either."""
    from dmp.services import InvalidInput, InvalidInputCode
    from dmp.services import documents as service

    real_store, calls = service._store, []

    def store_then_lose(**kwargs):
        calls.append(kwargs["title"])
        if len(calls) == 2:
            raise InvalidInput("This file is already in the record.", code=InvalidInputCode.DUPLICATE)
        return real_store(**kwargs)

    monkeypatch.setattr(service, "_store", store_then_lose)
    client.force_login(world.alice)
    response = _upload(client, world.record, [("one.png", image_bytes()), ("two.pdf", text_pdf("two"))])
    assert response.status_code == 400 and "This file is already in the record." in _page(response)
    assert calls == ["one", "two"]
    assert not titled(world.record.documents.all(), "one")
    on_disk = {f"records/{world.record.pk}/{path.name}"
               for path in (settings.MEDIA_ROOT / "records" / str(world.record.pk)).iterdir()}
    assert on_disk == set(world.record.documents.values_list("file", flat=True))  # the personas' files only


@pytest.mark.django_db
def test_a_file_over_the_size_limit_is_refused(client, world, settings):
    settings.DOCUMENT_MAX_BYTES = 2000
    client.force_login(world.alice)
    big = text_pdf("x" * 3000)
    response = _upload(client, world.record, [("big.pdf", big)])
    assert response.status_code == 400
    assert "<strong><bdi>big.pdf</bdi></strong>: The file is too large" in _page(response)
    assert not titled(world.record.documents.all(), "big")


@pytest.mark.django_db
def test_the_same_file_is_never_stored_twice(client, world):
    client.force_login(world.alice)
    content = text_pdf("once")
    assert _upload(client, world.record, [("once.pdf", content)]).status_code == 302
    again = _upload(client, world.record, [("again.pdf", content)])
    assert "<strong><bdi>again.pdf</bdi></strong>: This file is already in the record." in _page(again)
    twice = _upload(client, world.record, [("one.png", image_bytes()), ("two.png", image_bytes())])
    assert "<strong><bdi>two.png</bdi></strong>: This is the same file as one.png." in _page(twice)
    assert len(titled(world.record.documents.all(), "once", "again", "one", "two")) == 1


@pytest.mark.django_db
def test_patients_add_to_the_personal_space_only(client, world):
    client.force_login(world.alice)
    response = _upload(client, world.record, [("lab.pdf", text_pdf("lab"))], doc_type=DocumentType.LAB_REPORT)
    assert response.status_code == 400 and "Select a valid choice." in _page(response)
    response = _upload(client, world.record, [])
    assert "Choose at least one file." in _page(response)
    response = _upload(client, world.record, [("later.png", image_bytes())], act_date="2999-01-01")
    assert "The date cannot be in the future." in _page(response)
    assert not titled(world.record.documents.all(), "lab", "later")


@pytest.mark.django_db
def test_the_add_page_works_without_javascript_and_loads_its_script(client, world):
    client.force_login(world.alice)
    page = _page(client.get(reverse("portal_patient:documents_add", args=[world.record.pk])))
    assert 'enctype="multipart/form-data"' in page
    assert re.search(r'<input type="file" name="files"[^>]* multiple', page)
    assert "/static/js/documents.js" in page


# -- thumbnails and extracted text ------------------------------------------------------------


@pytest.mark.django_db
@needs_pdftoppm
def test_pdf_thumbnails_are_made_stored_encrypted_and_served_through_the_policy(client, world):
    doc = _pro_adds(world, world.dr_grant, "Compte rendu", "report")
    assert doc.extracted_text == "Compte rendu" and doc.thumbnail
    with open(doc.thumbnail.storage.path(doc.thumbnail.name), "rb") as raw:
        assert not raw.read().startswith(PNG_SIGNATURE)  # encrypted at rest like the file
    client.force_login(world.alice)
    response = client.get(_doc_url("document_thumbnail", doc))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert "no-store" in response["Cache-Control"]
    assert b"".join(response.streaming_content).startswith(PNG_SIGNATURE)
    client.force_login(world.leo)
    assert client.get(_doc_url("document_thumbnail", doc)).status_code == 404
    client.force_login(world.dr_grant.user)
    assert client.get(_doc_url("document_thumbnail", doc)).status_code == 403


@pytest.mark.django_db
def test_a_document_without_a_thumbnail_has_no_thumbnail_address(client, world):
    client.force_login(world.alice)
    assert client.get(_doc_url("document_thumbnail", world.docs["own"])).status_code == 404


@pytest.mark.django_db
def test_without_pdftoppm_a_pdf_arrives_without_thumbnail_and_without_error(world, monkeypatch):
    monkeypatch.setattr("dmp.services.documents.shutil.which", lambda name: None)
    doc = _pro_adds(world, world.dr_grant, "Sans vignette", "no thumbnail")
    assert not doc.thumbnail and doc.extracted_text == "Sans vignette"


@pytest.mark.django_db
def test_backfill_fills_text_and_thumbnails_of_older_documents(world):
    import hashlib

    from django.core.files.base import ContentFile

    content = text_pdf("Ancien compte rendu")
    digest = hashlib.sha256(content).hexdigest()
    old = Document(record=world.record, doc_type=DocumentType.PATIENT_DOCUMENT, title="old", act_date=date(2020, 1, 1),
                   author_kind="patient", mime_type="application/pdf", size=len(content), content_hash=digest)
    old.file.save(digest, ContentFile(content), save=False)
    old.save()
    out = io.StringIO()
    call_command("backfill_documents", stdout=out)
    old.refresh_from_db()
    assert old.extracted_text == "Ancien compte rendu"
    assert bool(old.thumbnail) == (shutil.which("pdftoppm") is not None)
    assert "Ancien" not in out.getvalue()  # counts and ids only


# -- the types hidden by default --------------------------------------------------------------


@pytest.mark.django_db
def test_types_hidden_by_default_arrive_hidden_from_professionals(client, world):
    client.force_login(world.alice)
    url = reverse("portal_patient:documents_settings", args=[world.record.pk])
    page = _page(client.get(url))
    assert "mental health, HIV" in page and "Your médecin traitant and the professional who wrote" in page
    response = client.post(url, {"types": [DocumentType.LAB_REPORT, DocumentType.IMAGING_REPORT]})
    assert response.status_code == 302
    assert Record.objects.get(pk=world.record.pk).default_hidden_types == ["imaging_report", "lab_report"]
    assert re.search(r'value="lab_report" id="type-lab_report" checked', _page(client.get(url)))

    record = Record.objects.get(pk=world.record.pk)
    lab = _pro_adds(world, world.dr_grant, "Glycemie", "HbA1c", record=record)
    letter = _pro_adds(world, world.dr_grant, "Lettre", "letter", DocumentType.CONSULTATION_REPORT, record=record)
    assert lab.hidden_from_professionals and not letter.hidden_from_professionals
    client.force_login(world.kine.user)  # imaging is in the physiotherapist's matrix, but it arrived hidden
    imaging = _pro_adds(world, world.dr_grant, "IRM", "mri", DocumentType.IMAGING_REPORT, record=record)
    assert client.get(reverse("portal_pro:document_file", args=[imaging.pk])).status_code == 404
    client.force_login(world.dr_grant.user)  # the author still reads it
    assert client.get(reverse("portal_pro:document_file", args=[imaging.pk])).status_code == 200

    client.force_login(world.alice)
    client.post(url, {})
    assert Record.objects.get(pk=world.record.pk).default_hidden_types == []


@pytest.mark.django_db
def test_unknown_types_are_refused(client, world):
    client.force_login(world.alice)
    response = client.post(reverse("portal_patient:documents_settings", args=[world.record.pk]),
                           {"types": ["hiv_test"]})
    assert response.status_code == 400
    assert Record.objects.get(pk=world.record.pk).default_hidden_types == []


# -- refusals ---------------------------------------------------------------------------------

DOC_PAGES = ["document", "document_thumbnail", "document_download"]
DOC_ACTIONS = [("document_visibility", {"hidden": "1"}), ("document_archive", {"archived": "1"}),
               ("document_select", {"selected": "1"})]
RECORD_PAGES = ["documents", "documents_add", "documents_settings"]


def _every_document_url(doc, record=None):
    return [("get", _doc_url(name, doc, record), {}) for name in DOC_PAGES] + [
        ("post", _doc_url(name, doc, record), data) for name, data in DOC_ACTIONS]


def _answer(client, method, url, data):
    return client.get(url) if method == "get" else client.post(url, data)


@pytest.mark.django_db
@pytest.mark.parametrize("persona, doc", [
    ("alice", "leo_visit"),  # another patient's document
    ("mother", "leo_confidential"),  # hidden from representatives
    ("alice", "withheld"),  # not yet announced
    ("leo", "leo_withheld"),
])
def test_documents_one_may_not_see_are_missing_on_every_page_and_action(client, world, persona, doc):
    document = world.docs[doc]
    Document.objects.filter(pk=document.pk).update(hidden_from_professionals=False, status="current")
    client.force_login(user_of(world, persona))
    for method, url, data in _every_document_url(document):
        assert _answer(client, method, url, data).status_code == 404, url
    fresh = Document.objects.get(pk=document.pk)
    assert (fresh.hidden_from_professionals, fresh.status, fresh.selections.count()) == (False, "current", 0)


@pytest.mark.django_db
def test_a_document_under_another_records_address_is_missing(client, world):
    client.force_login(world.mother)  # she may see leo_visit, but not as part of Alice's record
    for method, url, data in _every_document_url(world.docs["leo_visit"], record=world.record):
        assert _answer(client, method, url, data).status_code == 404, url
    client.force_login(world.leo)  # nor under Léo's own record when it is Alice's document
    for method, url, data in _every_document_url(world.docs["own"], record=world.leo_record):
        assert _answer(client, method, url, data).status_code == 404, url


@pytest.mark.django_db
def test_another_patients_record_pages_are_missing(client, world):
    client.force_login(world.alice)
    for name in RECORD_PAGES:
        url = reverse(f"portal_patient:{name}", args=[world.leo_record.pk])
        assert client.get(url).status_code == 404
        assert client.post(url, {"types": ["lab_report"], "text": "x"}).status_code == 404
    assert _upload(client, world.leo_record, [("x.png", image_bytes())]).status_code == 404
    assert not world.leo_record.documents.filter(space="personal").exists()
    assert Record.objects.get(pk=world.leo_record.pk).default_hidden_types == []


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["agent", "dr_grant", "dr_house", "admin", "nobody"])
def test_the_patient_portal_is_closed_to_other_accounts(client, world, persona):
    client.force_login(user_of(world, persona))
    doc = world.docs["consultation"]
    for name in RECORD_PAGES:
        assert client.get(reverse(f"portal_patient:{name}", args=[world.record.pk])).status_code == 403
    for method, url, data in _every_document_url(doc):
        assert _answer(client, method, url, data).status_code == 403, url
    assert not Document.objects.get(pk=doc.pk).hidden_from_professionals


@pytest.mark.django_db
def test_logged_out_visitors_are_sent_to_log_in(client, world):
    for name in RECORD_PAGES:
        response = client.get(reverse(f"portal_patient:{name}", args=[world.record.pk]))
        assert response.status_code == 302 and reverse("account_login") in response["Location"]
    response = client.post(_doc_url("document_visibility", world.docs["own"]), {"hidden": "1"})
    assert response.status_code == 302 and reverse("account_login") in response["Location"]


@pytest.mark.django_db
def test_changes_are_posted_never_got(client, world):
    client.force_login(world.alice)
    for name, _data in DOC_ACTIONS:
        assert client.get(_doc_url(name, world.docs["own"])).status_code == 405


@pytest.mark.django_db
def test_a_refused_attempt_by_a_representative_is_logged(client, world):
    client.force_login(world.mother)
    client.post(_doc_url("document_visibility", world.docs["leo_confidential"]), {"hidden": "1"})
    entry = AuditEntry.objects.get()
    assert (entry.allowed, entry.rule) == (False, "document_not_visible")
