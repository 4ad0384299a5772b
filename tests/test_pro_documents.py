"""The professional's documents screen, through the views: the nine spaces, list and timeline,
filters and POSTed full-text search, exactly what the policy lets each professional see;
adding documents in two actions (suggested type, title and date; several files at once; "not
yet visible to the patient"; duplicates and invalid files refused with nothing stored); the
author releasing a withheld result; the suggestions themselves; and, in a real browser, the
user actions it takes to add a document from the patient screen."""

from __future__ import annotations

import base64
import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from dmp.document_suggestions import Source, suggest, title_from_name, type_from_name
from dmp.models import AuditEntry, Document, DocumentType, Space
from dmp.policy import Actor
from dmp.services import document_add, document_visibility_set
from tests.browser import log_in_with_app_code
from tests.personas import titled, user_of
from tests.sample_files import image_bytes, text_pdf

TODAY = date(2026, 2, 10)


def _list(client, record, **params):
    return client.get(reverse("portal_pro:documents", args=[record.pk]), params)


def _page(response) -> str:
    return response.content.decode()


def _titles(response) -> set[str]:
    return set(re.findall(r'class="doc-title"[^>]*>([^<]+)</a>', _page(response)))


def _add(client, record, files, *, xhr=False, **fields):
    data = {"files": [SimpleUploadedFile(name, content) for name, content in files], **fields}
    headers = {"X-Requested-With": "XMLHttpRequest"} if xhr else {}
    return client.post(reverse("portal_pro:documents_add", args=[record.pk]), data, headers=headers)


def _pro_adds(pro, record, text, title, doc_type=DocumentType.LAB_REPORT, act_date=date(2025, 11, 4)):
    return document_add(actor=Actor(pro.user), record=record, content=text_pdf(text), doc_type=doc_type,
                        title=title, act_date=act_date)


# -- the list: what each professional sees ----------------------------------------------------


@pytest.mark.django_db
def test_the_treating_doctor_sees_every_document_hidden_ones_marked(client, world):
    client.force_login(world.dr_house.user)
    response = _list(client, world.record)
    assert response.status_code == 200
    assert _titles(response) == {"consultation", "imaging", "hidden", "hidden imaging", "withheld", "released", "own"}
    page = _page(response)
    assert re.search(r'>hidden</a> <span class="tag tag-hidden"[^>]*>hidden by the patient</span>', page)
    assert not re.search(r'>consultation</a> <span class="tag tag-hidden"', page)
    # A result the author has not announced yet: professionals see it, marked.
    assert re.search(r'>withheld</a> <span class="tag tag-withheld">not yet visible to the patient', page)
    assert "every document, those the patient hid from professionals included" in page
    # Archived by the patient: under "Archived".
    archived = _list(client, world.record, status="archived")
    assert _titles(archived) == {"archived"}


@pytest.mark.django_db
def test_a_gp_with_care_authorisation_sees_hidden_documents_only_when_he_wrote_them(client, world):
    by_house = _pro_adds(world.dr_house, world.record, "Compte rendu psychiatrie", "house hidden",
                         DocumentType.CONSULTATION_REPORT)
    document_visibility_set(actor=Actor(world.alice), document=by_house, hidden=True)
    client.force_login(world.dr_grant.user)
    titles = _titles(_list(client, world.record))
    # Dr Grant wrote "hidden" and "hidden imaging": an author always sees his own documents.
    assert titles == {"consultation", "imaging", "hidden", "hidden imaging", "withheld", "released", "own"}
    assert "house hidden" not in titles
    client.force_login(world.dr_house.user)
    assert "house hidden" in _titles(_list(client, world.record))


@pytest.mark.django_db
def test_a_physiotherapist_sees_what_the_matrix_lets_him_and_nothing_hidden(client, world):
    client.force_login(world.kine.user)
    response = _list(client, world.record)
    assert response.status_code == 200
    # The default matrix: imaging reports yes; consultation and lab reports, patient documents no.
    assert _titles(response) == {"imaging"}
    assert "hidden by the patient" not in _page(response)


@pytest.mark.django_db
def test_emergency_access_never_shows_what_the_patient_hid(client, world):
    client.force_login(world.urgentist.user)
    titles = _titles(_list(client, world.record))
    assert "hidden" not in titles and "hidden imaging" not in titles
    assert {"consultation", "imaging", "released"} <= titles


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["stranger", "blocked_kine", "late_urgentist", "blocked_regulator"])
def test_professionals_without_access_find_no_record(client, world, persona):
    client.force_login(user_of(world, persona))
    assert _list(client, world.record).status_code == 404
    assert client.post(reverse("portal_pro:documents", args=[world.record.pk]), {"text": "x"}).status_code == 404
    assert AuditEntry.objects.filter(actor=user_of(world, persona), allowed=False).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["alice", "agent", "admin"])
def test_the_professional_screens_are_closed_to_other_accounts(client, world, persona):
    client.force_login(user_of(world, persona))
    assert _list(client, world.record).status_code == 403
    assert _add(client, world.record, [("a.pdf", text_pdf("a"))]).status_code == 403


@pytest.mark.django_db
def test_one_audit_entry_per_list_view_not_per_document(client, world):
    client.force_login(world.dr_house.user)
    before = AuditEntry.objects.count()
    _list(client, world.record, view="timeline")
    entries = AuditEntry.objects.order_by("-seq")[: AuditEntry.objects.count() - before]
    assert [(e.action, e.allowed, e.mode) for e in entries] == [("view_record", True, "treating_doctor")]


@pytest.mark.django_db
def test_spaces_are_tabs_with_counts_and_the_timeline_groups_by_month(client, world):
    _pro_adds(world.dr_house, world.record, "IRM du genou", "knee", DocumentType.IMAGING_REPORT, date(2024, 5, 2))
    client.force_login(world.dr_house.user)
    page = _page(_list(client, world.record))
    # consultation, imaging, hidden, hidden imaging, withheld, released, own, knee
    assert re.search(r'All spaces <span class="count">8</span>', page)
    assert re.search(r'Medical imaging <span class="count">3</span>', page)
    assert re.search(r'Laboratory results <span class="count">2</span>', page)
    assert _titles(_list(client, world.record, space="imaging")) == {"imaging", "hidden imaging", "knee"}
    timeline = _page(_list(client, world.record, view="timeline"))
    assert 'class="doc-timeline"' in timeline
    assert timeline.index("January 2026") < timeline.index("May 2024")


# -- filters and search: POSTed, kept, never in the URL ------------------------------------------


@pytest.mark.django_db
def test_filters_by_author_profession_type_and_dates_are_posted_and_kept(client, world):
    _pro_adds(world.dr_house, world.record, "Radio du genou", "knee", DocumentType.IMAGING_REPORT, date(2024, 5, 2))
    client.force_login(world.dr_house.user)
    url = reverse("portal_pro:documents", args=[world.record.pk])
    response = client.post(url, {"author": f"pro:{world.dr_house.pk}", "view": "timeline"})
    assert response.status_code == 302 and response["Location"] == f"{url}?view=timeline"
    assert _titles(_list(client, world.record, view="timeline")) == {"knee"}
    client.post(url, {"doc_type": DocumentType.IMAGING_REPORT})
    assert _titles(_list(client, world.record)) == {"imaging", "hidden imaging", "knee"}
    client.post(url, {"doc_type": DocumentType.IMAGING_REPORT, "date_from": "2025-01-01"})
    assert _titles(_list(client, world.record)) == {"imaging", "hidden imaging"}
    client.post(url, {"profession": "p:gp", "date_to": "2024-12-31"})
    assert _titles(_list(client, world.record)) == {"knee"}
    page = _page(_list(client, world.record))
    assert "Only the documents that match your search or filters are shown." in page
    client.post(url, {"clear": "1"})
    assert len(_titles(_list(client, world.record))) == 8


@pytest.mark.django_db
def test_a_bad_filter_is_explained(client, world):
    client.force_login(world.dr_house.user)
    url = reverse("portal_pro:documents", args=[world.record.pk])
    response = client.post(url, {"date_from": "2025-05-01", "date_to": "2025-01-01"})
    assert response.status_code == 400
    assert "The end of the period comes before its start." in _page(response)
    assert client.post(url, {"doc_type": "not_a_type"}).status_code == 400


@pytest.mark.django_db
def test_full_text_search_finds_words_inside_pdfs_without_putting_them_in_a_url(client, world):
    _pro_adds(world.dr_house, world.record, "Hemoglobine glyquee 7,2 pour cent", "bilan trimestriel")
    _pro_adds(world.dr_house, world.record, "Radiographie thoracique normale", "radio", DocumentType.IMAGING_REPORT)
    client.force_login(world.dr_house.user)
    url = reverse("portal_pro:documents", args=[world.record.pk])
    response = client.post(url, {"text": "glyquee"})
    assert response.status_code == 302 and "glyquee" not in response["Location"]
    assert _titles(_list(client, world.record)) == {"bilan trimestriel"}
    client.post(url, {"text": "thoraci"})  # a word being typed
    assert _titles(_list(client, world.record)) == {"radio"}


@pytest.mark.django_db
def test_search_never_finds_what_the_professional_may_not_see(client, world):
    hidden = _pro_adds(world.dr_house, world.record, "Suivi addictologie confidentiel", "suivi",
                       DocumentType.CONSULTATION_REPORT)
    document_visibility_set(actor=Actor(world.alice), document=hidden, hidden=True)
    url = reverse("portal_pro:documents", args=[world.record.pk])
    client.force_login(world.dr_grant.user)
    client.post(url, {"text": "addictologie"})
    assert _titles(_list(client, world.record)) == set()
    client.force_login(world.dr_house.user)
    client.post(url, {"text": "addictologie"})
    assert _titles(_list(client, world.record)) == {"suivi"}


@pytest.mark.slow
@pytest.mark.django_db
def test_list_query_count_does_not_grow_with_documents(client, world, django_assert_max_num_queries):
    def add_many(count, offset):
        for n in range(offset, offset + count):
            document_add(actor=Actor(world.dr_grant.user), record=world.record, content=image_bytes(colour=(n, 9, 9)),
                         doc_type=DocumentType.NON_DICOM_IMAGE, title=f"photo {n}", act_date=date(2025, 1 + n % 12, 3),
                         withheld_until=timezone.now() + timedelta(days=3) if n % 3 == 0 else None)

    client.force_login(world.dr_grant.user)
    add_many(3, 0)
    _list(client, world.record)  # the first access of the day tells the patient: not what is measured
    for view in ("list", "timeline"):
        with django_assert_max_num_queries(15) as few:
            assert _list(client, world.record, view=view, status="all").status_code == 200
        queries = len(few)
    add_many(30, 3)
    for view in ("list", "timeline"):
        with django_assert_max_num_queries(queries):
            response = _list(client, world.record, view=view, status="all")
        assert ">photo 32<" in _page(response)


# -- adding documents ------------------------------------------------------------------------


@pytest.mark.django_db
def test_one_file_is_added_with_the_type_title_and_date_its_name_suggests(client, world):
    client.force_login(world.dr_house.user)
    screen = reverse("portal_pro:record", args=[world.record.pk])
    response = _add(client, world.record, [("ordonnance_2025-11-04.pdf", text_pdf("Metformine 1000 mg"))],
                    next=screen)
    assert response.status_code == 302 and response["Location"] == screen
    [added] = titled(world.record.documents.all(), "Ordonnance")
    assert added.doc_type == DocumentType.MEDICATION_PRESCRIPTION and added.space == Space.TREATMENTS
    assert added.act_date == date(2025, 11, 4)
    assert added.author_professional == world.dr_house and not added.is_withheld_from_patient()
    assert AuditEntry.objects.filter(actor=world.dr_house.user, action="add_document", allowed=True).count() == 1
    message = _page(client.get(screen))
    assert "1 document added" in message and "“Ordonnance”: Medication prescription, in Treatments and care" in message


@pytest.mark.django_db
def test_several_files_dropped_are_stored_each_in_its_space(client, world):
    """What the page's script posts: the files and, for each, the type, title and date shown."""
    client.force_login(world.dr_house.user)
    files = [("NFS HbA1c.pdf", text_pdf("NFS")), ("IRM genou.png", image_bytes()),
             ("scan0001.pdf", text_pdf("Certificat"))]
    response = _add(client, world.record, files, xhr=True, next="/pro/",
                    file_type=["lab_report", "imaging_report", "certificate"],
                    file_title=["NFS HbA1c", "IRM genou", "Certificat de sport"],
                    file_date=["2026-01-03", "2025-12-20", ""])
    assert response.status_code == 200 and response.json() == {"location": "/pro/"}
    stored = {d.title: (d.doc_type, d.space, d.act_date) for d in Document.objects.filter(added_by=world.dr_house.user)}
    assert stored == {
        "NFS HbA1c": ("lab_report", "biology", date(2026, 1, 3)),
        "IRM genou": ("imaging_report", "imaging", date(2025, 12, 20)),
        "Certificat de sport": ("certificate", "certificates", timezone.localdate()),
    }


@pytest.mark.django_db
def test_without_javascript_the_server_suggests_for_each_file(client, world):
    client.force_login(world.kine.user)
    files = [("bilan initial.pdf", text_pdf("Bilan kine")), ("Compte rendu radio.pdf", text_pdf("Radio")),
             ("scan0002.pdf", text_pdf("Scan"))]
    assert _add(client, world.record, files).status_code == 302
    stored = {d.title: d.doc_type for d in Document.objects.filter(added_by=world.kine.user)}
    # "bilan" is a physiotherapist's functional assessment; a name that says nothing: his usual type.
    assert stored == {"Bilan initial": "functional_assessment", "Compte rendu radio": "imaging_report",
                      "Scan0002": "functional_assessment"}


@pytest.mark.django_db
def test_a_type_and_date_chosen_for_all_files_apply_to_each(client, world):
    client.force_login(world.dr_house.user)
    files = [("a.pdf", text_pdf("a")), ("b.pdf", text_pdf("b"))]
    assert _add(client, world.record, files, doc_type="hospital_stay_report", act_date="2025-08-01").status_code == 302
    stored = Document.objects.filter(added_by=world.dr_house.user)
    assert {(d.title, d.doc_type, d.act_date) for d in stored} == {
        ("A", "hospital_stay_report", date(2025, 8, 1)), ("B", "hospital_stay_report", date(2025, 8, 1))}


@pytest.mark.django_db
def test_withheld_results_are_hidden_from_the_patient_until_the_author_releases_them(client, world):
    client.force_login(world.dr_house.user)
    response = _add(client, world.record, [("biopsie.pdf", text_pdf("Carcinome"))], withheld="on", withheld_days="7")
    assert response.status_code == 302
    [result] = titled(Document.objects.all(), "Biopsie")
    assert result.doc_type == DocumentType.PATHOLOGY_REPORT and result.is_withheld_from_patient()
    assert timedelta(days=6) < result.withheld_from_patient_until - timezone.now() <= timedelta(days=7)
    alice = client.__class__(headers={"Accept-Language": "en"})
    alice.force_login(world.alice)
    patient_list = reverse("portal_patient:documents", args=[world.record.pk])
    assert ">Biopsie<" not in _page(alice.get(patient_list))
    assert alice.get(reverse("portal_patient:document", args=[world.record.pk, result.pk])).status_code == 404
    # Professionals see it marked; only its author may release it.
    page = _page(_list(client, world.record))
    release = reverse("portal_pro:document_release", args=[world.record.pk, result.pk])
    assert release in page and "Announced: make it visible to the patient now" in page
    other = client.__class__(headers={"Accept-Language": "en"})
    other.force_login(world.dr_grant.user)
    assert release not in _page(other.get(reverse("portal_pro:documents", args=[world.record.pk])))
    assert other.post(release).status_code == 404
    result.refresh_from_db()
    assert result.is_withheld_from_patient()
    # The author announced it: visible now.
    response = client.post(release, {"next": reverse("portal_pro:documents", args=[world.record.pk])})
    assert response.status_code == 302
    result.refresh_from_db()
    assert not result.is_withheld_from_patient()
    assert ">Biopsie<" in _page(alice.get(patient_list))
    assert AuditEntry.objects.filter(actor=world.dr_house.user, action="release_document", allowed=True).exists()
    assert "The patient can already see this document." in _page(client.post(release, follow=True))


@pytest.mark.django_db
def test_a_withheld_result_becomes_visible_by_itself_after_the_delay(client, world):
    client.force_login(world.dr_house.user)
    _add(client, world.record, [("NFS.pdf", text_pdf("NFS"))], withheld="on", withheld_days="15")
    [result] = titled(Document.objects.all(), "NFS")
    alice = client.__class__(headers={"Accept-Language": "en"})
    alice.force_login(world.alice)
    patient_list = reverse("portal_patient:documents", args=[world.record.pk])
    assert ">NFS<" not in _page(alice.get(patient_list))
    result.withheld_from_patient_until = timezone.now() - timedelta(minutes=1)  # the 15 days went by
    result.save()
    assert ">NFS<" in _page(alice.get(patient_list))


@pytest.mark.django_db
def test_the_same_file_twice_is_refused_as_a_duplicate(client, world):
    client.force_login(world.dr_house.user)
    content = text_pdf("Compte rendu")
    assert _add(client, world.record, [("cr.pdf", content)]).status_code == 302
    response = _add(client, world.record, [("cr-copie.pdf", content)])
    assert response.status_code == 400
    assert "This file is already in the record." in _page(response) and "No file was added." in _page(response)
    json_response = _add(client, world.record, [("new.pdf", text_pdf("new")), ("cr.pdf", content)], xhr=True)
    assert json_response.status_code == 400
    assert json_response.json() == {"errors": ["cr.pdf: This file is already in the record."]}
    assert Document.objects.filter(added_by=world.dr_house.user).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("name, content, message", [
    ("notes.txt", b"just text", "Only PDF files, images (PNG, JPEG) and CDA R2 documents (XML)"),
    ("fake.pdf", b"%PDF-1.4 not really", "This file is not a valid PDF."),
    ("empty.pdf", b"", "The file is empty."),
])
def test_an_invalid_file_among_valid_ones_stores_nothing(client, world, settings, name, content, message):
    def stored_files():
        return sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())

    client.force_login(world.dr_house.user)
    before, files_before = Document.objects.count(), stored_files()
    response = _add(client, world.record, [("good.pdf", text_pdf("good")), (name, content)])
    assert response.status_code == 400
    assert f"<strong>{name}</strong>: {message}" in _page(response)
    assert Document.objects.count() == before and stored_files() == files_before


@pytest.mark.django_db
def test_a_future_date_or_a_type_of_the_personal_space_is_refused(client, world):
    client.force_login(world.dr_house.user)
    future = (timezone.localdate() + timedelta(days=3)).isoformat()
    response = _add(client, world.record, [("a.pdf", text_pdf("a"))], file_type=["lab_report"], file_title=["a"],
                    file_date=[future])
    assert response.status_code == 400 and "The date cannot be in the future." in _page(response)
    response = _add(client, world.record, [("a.pdf", text_pdf("a"))], file_type=["patient_document"],
                    file_title=["a"], file_date=[""])
    assert response.status_code == 400 and "Choose a type of document." in _page(response)
    assert not Document.objects.filter(added_by=world.dr_house.user).exists()


@pytest.mark.django_db
def test_emergency_access_cannot_add_and_is_told_so(client, world):
    client.force_login(world.urgentist.user)
    assert _add(client, world.record, [("cr.pdf", text_pdf("cr"))]).status_code == 404
    assert not Document.objects.filter(added_by=world.urgentist.user).exists()
    assert AuditEntry.objects.filter(actor=world.urgentist.user, action="add_document", allowed=False,
                                     rule="emergency_access_is_read_only").exists()
    page = _page(_list(client, world.record))
    assert "Emergency access only reads the record: you cannot add documents to it." in page
    assert 'name="files"' not in page


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["stranger", "blocked_kine", "late_urgentist"])
def test_professionals_without_access_cannot_add(client, world, persona):
    client.force_login(user_of(world, persona))
    assert _add(client, world.record, [("cr.pdf", text_pdf("cr"))]).status_code == 404
    assert not Document.objects.filter(added_by=user_of(world, persona)).exists()


@pytest.mark.django_db
def test_the_add_form_works_without_javascript_and_loads_its_script(client, world):
    client.force_login(world.dr_house.user)
    page = _page(client.get(reverse("portal_pro:documents_add", args=[world.record.pk])))
    assert f'action="{reverse("portal_pro:documents_add", args=[world.record.pk])}"' in page
    assert 'enctype="multipart/form-data"' in page and 'type="file" name="files"' in page
    assert '<option value="">Suggested from each file\'s name</option>' in page
    assert 'value="patient_document"' not in page  # the personal space is the patient's
    assert "js/pro_add_documents.js" in page


@pytest.mark.django_db
def test_the_patient_screen_includes_the_drop_zone(client, world):
    source = Path(__file__).resolve().parent.parent / "templates" / "portal_pro" / "record.html"
    assert '{% include "portal_pro/_add_documents.html" %}' in source.read_text()
    client.force_login(world.dr_house.user)
    screen = reverse("portal_pro:record", args=[world.record.pk])
    page = _page(client.get(screen))
    assert "data-drop-zone" in page and f'name="next" value="{screen}"' in page


# -- the suggestions ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, profession, expected", [
    ("ordonnance.pdf", "gp", DocumentType.MEDICATION_PRESCRIPTION),
    ("Prescription metformine.pdf", "specialist", DocumentType.MEDICATION_PRESCRIPTION),
    ("ordonnance kiné 10 séances.pdf", "gp", DocumentType.CARE_PRESCRIPTION),
    ("CR consultation cardio.pdf", "specialist", DocumentType.CONSULTATION_REPORT),
    ("Compte-rendu.pdf", "gp", DocumentType.CONSULTATION_REPORT),
    ("compte rendu opératoire.pdf", "specialist", DocumentType.OPERATIVE_REPORT),
    ("bio_2025.pdf", "gp", DocumentType.LAB_REPORT),
    ("NFS-plaquettes.pdf", "gp", DocumentType.LAB_REPORT),
    ("HbA1c.jpg", "nurse", DocumentType.LAB_REPORT),
    ("Résultats labo.pdf", "gp", DocumentType.LAB_REPORT),
    ("biopsie cutanée.pdf", "gp", DocumentType.PATHOLOGY_REPORT),
    ("radio thorax.jpeg", "gp", DocumentType.IMAGING_REPORT),
    ("IRM_lombaire.pdf", "physiotherapist", DocumentType.IMAGING_REPORT),
    ("Scanner abdo.pdf", "gp", DocumentType.IMAGING_REPORT),
    ("échographie.pdf", "midwife", DocumentType.IMAGING_REPORT),
    ("certificat de non contre-indication.pdf", "gp", DocumentType.CERTIFICATE),
    ("Vaccination grippe.pdf", "pharmacist", DocumentType.PREVENTIVE_THERAPY_REPORT),
    ("lettre de sortie CHU.pdf", "gp", DocumentType.DISCHARGE_LETTER),
    ("Discharge summary.pdf", "specialist", DocumentType.DISCHARGE_LETTER),
    ("blood test.pdf", "gp", DocumentType.LAB_REPORT),
    ("dépistage colorectal.pdf", "gp", DocumentType.SCREENING_REPORT),
])
def test_the_file_name_suggests_the_type(name, profession, expected):
    guess = suggest(name, profession=profession, today=TODAY)
    assert (guess.doc_type, guess.source) == (expected, Source.FILE_NAME)


@pytest.mark.parametrize("profession, expected", [
    ("gp", DocumentType.CONSULTATION_REPORT),
    ("specialist", DocumentType.CONSULTATION_REPORT),
    ("pharmacist", DocumentType.MEDICATION_DISPENSING),
    ("physiotherapist", DocumentType.FUNCTIONAL_ASSESSMENT),
    ("nurse", DocumentType.AUXILIARY_CARE_REPORT),
])
def test_a_name_that_says_nothing_gets_the_professions_usual_type(profession, expected):
    guess = suggest("scan0001.pdf", profession=profession, today=TODAY)
    assert (guess.doc_type, guess.source) == (expected, Source.PROFESSION)


def test_short_keywords_are_whole_words_only():
    assert type_from_name("crh.pdf") == DocumentType.HOSPITAL_STAY_REPORT
    assert type_from_name("cro.pdf") == DocumentType.OPERATIVE_REPORT
    assert type_from_name("ecrit.pdf") is None  # "cr" inside a word is not a report
    assert type_from_name("bilan.pdf") is None and type_from_name("bilan.pdf", "physiotherapist") is not None


def test_title_and_date_come_from_the_name():
    guess = suggest("2025-11-04_NFS_controle.pdf", profession="gp", today=TODAY)
    assert (guess.title, guess.act_date) == ("NFS controle", date(2025, 11, 4))
    assert suggest("echo 04.11.2025.pdf", profession="gp", today=TODAY).act_date == date(2025, 11, 4)
    assert suggest("cr 20260301.pdf", profession="gp", today=TODAY).act_date == TODAY  # in the future: today
    assert suggest("cr 2025-13-45.pdf", profession="gp", today=TODAY).act_date == TODAY  # not a date
    assert title_from_name("2025-11-04.pdf", DocumentType.LAB_REPORT) == "Laboratory test report"
    assert title_from_name("compte-rendu_cardio.PDF", DocumentType.CONSULTATION_REPORT) == "Compte-rendu cardio"


def test_professionals_are_never_suggested_the_patients_personal_space():
    for name in ("directives anticipees.pdf", "mon document.pdf", "patient.pdf"):
        for profession in ("gp", "specialist", "pharmacist", "nurse", "midwife", "physiotherapist", "dentist"):
            assert suggest(name, profession=profession, today=TODAY).space != Space.PERSONAL


@pytest.mark.django_db
def test_the_suggestion_endpoint_answers_in_json_to_a_post(client, world):
    client.force_login(world.kine.user)
    url = reverse("portal_pro:document_suggestions")
    response = client.post(url, {"names": ["ordonnance.pdf", "scan.pdf"]})
    assert response.status_code == 200
    first, second = response.json()["suggestions"]
    assert first["doc_type"] == "medication_prescription" and first["space_label"] == "Treatments and care"
    assert first["title"] == "Ordonnance" and first["source"] == "file_name"
    assert second["doc_type"] == "functional_assessment" and second["source"] == "profession"
    assert client.get(url, {"names": "ordonnance.pdf"}).status_code == 405  # names never in a URL
    client.force_login(world.alice)
    assert client.post(url, {"names": ["a.pdf"]}).status_code == 403


# -- in a real browser: at most two user actions -----------------------------------------------


# Counts what the user does on the page, whoever does it: clicks, drops, key presses, files
# picked in a file field. Kept in sessionStorage so that it survives the page going back to
# the patient screen after "Add".
_COUNT_USER_ACTIONS = """
(() => {
  const bump = (kind) => {
    const counts = JSON.parse(sessionStorage.getItem("userActions") || "[]");
    counts.push(kind);
    sessionStorage.setItem("userActions", JSON.stringify(counts));
  };
  document.addEventListener("click", () => bump("click"), true);
  document.addEventListener("drop", () => bump("drop"), true);
  document.addEventListener("keydown", () => bump("key"), true);
  document.addEventListener("change", (e) => { if (e.target.type === "file") bump("pick"); }, true);
})();
"""


@pytest.mark.django_db(transaction=True)
def test_adding_a_document_from_the_patient_screen_takes_at_most_two_actions(live_server, page, world):
    """Arrive on the patient screen; drop a prescription on it (1); "Add" (2). The document is
    stored with the type its name suggested, and the page says so."""
    log_in_with_app_code(page, live_server.url, world.dr_house.user.username)
    screen = reverse("portal_pro:record", args=[world.record.pk])
    page.add_init_script(_COUNT_USER_ACTIONS)
    page.goto(live_server.url + screen)
    page.evaluate("sessionStorage.removeItem('userActions')")
    actions = []

    # Action 1: drop a file on the screen's drop zone.
    files = [{"name": "ordonnance-2026-01-15.pdf", "type": "application/pdf",
              "b64": base64.b64encode(text_pdf("Amoxicilline 1 g")).decode()}]
    transfer = page.evaluate_handle("""(files) => {
        const transfer = new DataTransfer();
        for (const f of files) {
          const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
          transfer.items.add(new File([bytes], f.name, {type: f.type}));
        }
        return transfer;
    }""", files)
    page.dispatch_event("[data-drop-zone]", "drop", {"dataTransfer": transfer})
    actions.append("drop")

    # The suggestion appears by itself: type, its space, title, date — nothing to edit.
    row = page.locator("fieldset.pro-add-file")
    row.wait_for()
    assert row.locator("select[name=file_type]").input_value() == "medication_prescription"
    assert row.locator("input[name=file_title]").input_value() == "Ordonnance"
    assert row.locator("input[name=file_date]").input_value() == "2026-01-15"
    assert row.locator("[data-space]").inner_text() == "Traitements et soins"  # a French browser

    # Action 2: "Add".
    page.locator("form[data-pro-add] button[type=submit]").click()
    actions.append("click")
    page.locator("ul.messages li.success").wait_for()

    [added] = titled(world.record.documents.all(), "Ordonnance")
    assert added.doc_type == DocumentType.MEDICATION_PRESCRIPTION and added.space == Space.TREATMENTS
    assert added.act_date == date(2026, 1, 15) and added.author_professional_id == world.dr_house.pk
    assert page.url == live_server.url + screen
    seen_by_page = json.loads(page.evaluate("sessionStorage.getItem('userActions')"))
    assert seen_by_page == ["drop", "click"]
    assert len(actions) <= 2 and len(seen_by_page) <= 2
