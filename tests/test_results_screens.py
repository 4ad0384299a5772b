"""The results screens (issue 18) through their views: the clinician patient screen's results
block, the professional's results page and the patient's. A value shows exactly where its
report's document does (matrix, hidden from professionals, withheld from the patient, hidden
from representatives, blocked, no standing), the period filter, the trend SVG, the query
ceilings at 5 and 500 values."""

from __future__ import annotations

import hashlib
import html
import io
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from pypdf import PdfReader

from dmp.models import (
    SPACE_OF_TYPE,
    AuditEntry,
    Document,
    DocumentType,
    LabObservation,
    LabReport,
    MatrixEntry,
    RecordExport,
    TreatingDoctor,
    User,
)
from dmp.policy import Actor
from dmp.screens.results import MAX_VALUES
from dmp.services import synthesis_write
from dmp.services.synthesis import Problem
from tests.personas import make_document, make_record
from tests.results_helpers import CREATININE, HBA1C, POTASSIUM, attach_report
from tests.test_patient_export import _download, eager  # noqa: F401 (a fixture)
from tests.test_pro_patient_screen import SCREEN_QUERIES

LAB = DocumentType.LAB_REPORT
RESULTS_QUERIES = 12  # the account, the record and standing, the values (one), the audit append


def _page(response) -> str:
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def _block(page: str) -> str:
    return page.split('class="ps-box ps-results"')[1].split("</section>")[0]


def _pro_results(client, record):
    return client.get(reverse("portal_pro:results", args=[record.pk]))


def _patient_results(client, record):
    return client.get(reverse("portal_patient:results", args=[record.pk]))


def _diabetic(record, doctor) -> None:
    synthesis_write(actor=Actor(doctor.user), record=record, problems=[Problem("E11.9", "Type 2 diabetes")])


@pytest.fixture
def values(world):
    """A value on each kind of document of Alice's and Léo's records, each value its own number."""
    now = timezone.now()
    docs = world.docs
    attach_report(docs["released"], values=((HBA1C, "321", "%"),), at=now - timedelta(days=10))
    older = make_document(world.record, "older lab", LAB, author=world.dr_grant)
    attach_report(older, values=((HBA1C, "301", "%"),), at=now - timedelta(days=200))
    attach_report(docs["withheld"], values=((POTASSIUM, "654", "mmol/L"),), at=now - timedelta(days=5),
                  interpretation="H")
    attach_report(docs["hidden"], values=((CREATININE, "987", "umol/L"),), at=now - timedelta(days=20))
    attach_report(docs["leo_visit"], values=((HBA1C, "555", "%"),))
    attach_report(docs["leo_confidential"], values=((HBA1C, "444", "%"),))


# --- The clinician patient screen ----------------------------------------------------------------

@pytest.mark.django_db
def test_the_screen_shows_the_latest_value_that_matters_with_date_flag_and_trend(client, world, values):
    _diabetic(world.record, world.dr_house)
    client.force_login(world.dr_house.user)
    block = _block(_page(client.get(reverse("portal_pro:record", args=[world.record.pk]))))
    hba1c = block.split("HbA1c</th>")[1].split("</tr>")[0]
    assert "321 %" in hba1c and "301 %" not in hba1c.split("<svg")[0]  # the latest, the older in the trend
    with translation.override("en"):
        assert date_format(timezone.localdate() - timedelta(days=10), "SHORT_DATE_FORMAT") in hba1c
    assert '<svg class="trend"' in hba1c and 'role="img"' in hba1c and "<title>" in hba1c
    assert "301 %" in hba1c.split("<title>")[1]  # the text alternative says every value
    assert "<script" not in block and "style=" not in block
    # Potassium matters for no problem here, but was flagged in the last three months: shown,
    # its flag in words and a sign, not by colour alone.
    potassium = block.split("Potassium</th>")[1].split("</tr>")[0]
    assert "654 mmol/L" in potassium and "flag-result" in potassium and "↑" in potassium


@pytest.mark.django_db
def test_an_old_abnormal_value_of_no_relevant_analyte_is_not_on_the_screen(client, world):
    attach_report(world.docs["released"], values=((POTASSIUM, "654", "mmol/L"),),
                  at=timezone.now() - timedelta(days=120), interpretation="H")
    client.force_login(world.dr_house.user)
    block = _block(_page(client.get(reverse("portal_pro:record", args=[world.record.pk]))))
    assert "654" not in block and "No result you may see." in block


@pytest.mark.django_db
def test_the_screen_hides_values_as_the_policy_hides_their_documents(client, world, values):
    _diabetic(world.record, world.dr_house)
    client.force_login(world.dr_grant.user)
    block = _block(_page(client.get(reverse("portal_pro:record", args=[world.record.pk]))))
    assert "321 %" in block and "987" not in block  # hidden from professionals
    MatrixEntry.objects.update_or_create(profession="physiotherapist", doc_type=LAB, defaults={"allowed": False})
    client.force_login(world.kine.user)
    block = _block(_page(client.get(reverse("portal_pro:record", args=[world.record.pk]))))
    assert "321" not in block and "654" not in block  # the matrix refuses biology to this profession


@pytest.mark.django_db
def test_problems_show_their_french_title_on_a_french_screen(client, world):
    synthesis_write(actor=Actor(world.dr_house.user), record=world.record,
                    problems=[Problem("E11.9", "Type 2 diabetes mellitus without complications")])
    User.objects.filter(pk=world.dr_house.user.pk).update(preferred_language="fr")
    client.force_login(world.dr_house.user)
    page = _page(client.get(reverse("portal_pro:record", args=[world.record.pk])))
    problems = page.split('class="ps-box ps-problems"')[1].split("</section>")[0]
    assert "Diabète sucré de type 2" in problems


@pytest.mark.django_db
def test_the_patient_reads_her_problems_french_titles_on_her_synthesis_and_her_export(
        client, world, eager):  # noqa: F811 - eager: a fixture
    synthesis_write(actor=Actor(world.dr_house.user), record=world.record, problems=[
        Problem("E11.9", "Type 2 diabetes mellitus without complications"), Problem("I10", "HTA bien équilibrée")])
    User.objects.filter(pk=world.alice.pk).update(preferred_language="fr")
    client.force_login(world.alice)
    page = _page(client.get(reverse("portal_patient:synthesis", args=[world.record.pk])))
    problems = page.split('class="synthesis"')[1].split("</dd>")[0]
    assert "Diabète sucré de type 2, sans complication" in problems and "mellitus" not in problems
    assert "HTA bien équilibrée" in problems  # the doctor's own words stay theirs

    eager(client, world.record)  # the export's one-page summary, in the record's language (French)
    _response, archive = _download(client, RecordExport.objects.get(record=world.record))
    text = " ".join(PdfReader(io.BytesIO(archive.read("summary.pdf"))).pages[0].extract_text().split())
    assert "Diabète sucré de type 2, sans complication" in text and "mellitus" not in text


# --- The professional's results page -------------------------------------------------------------

@pytest.mark.django_db
def test_the_results_page_lists_each_analyte_with_its_chart_and_links_each_value_to_its_report(
        client, world, values):
    client.force_login(world.dr_house.user)
    page = _page(_pro_results(client, world.record))
    # The médecin traitant sees the value of a document the patient hid from professionals.
    assert "321 %" in page and "301 %" in page and "654 mmol/L" in page and "987 µmol/L" in page
    hba1c = page.split("<h2")[1].split("</section>")[0]
    assert "HbA1c" in hba1c and '<svg class="trend"' in hba1c and "<script" not in hba1c
    document_url = reverse("portal_pro:document_file", args=[world.docs["released"].pk])
    assert f'href="{document_url}"' in hba1c
    # The list is part of reading the record: one entry, as the documents list.
    assert list(AuditEntry.objects.filter(actor=world.dr_house.user).values_list("action", flat=True)) == [
        "view_record"]


@pytest.mark.django_db
def test_the_period_filter_is_kept_in_the_session_not_the_url(client, world, values):
    client.force_login(world.dr_house.user)
    url = reverse("portal_pro:results", args=[world.record.pk])
    response = client.post(url, {"period": "3m", "analyte": "hba1c"})
    assert response.status_code == 302 and response["Location"] == url
    page = _page(client.get(url))
    assert "321 %" in page and "301 %" not in page and "654" not in page
    client.post(url, {"clear": "1"})
    page = _page(client.get(url))
    assert "301 %" in page and "654" in page  # back to the last two years, every test


@pytest.mark.django_db
def test_a_filter_that_is_not_offered_is_refused(client, world):
    client.force_login(world.dr_house.user)
    response = client.post(reverse("portal_pro:results", args=[world.record.pk]), {"period": "10y"})
    assert response.status_code == 400


@pytest.mark.django_db
def test_the_results_page_follows_the_matrix_and_what_the_patient_hid(client, world, values):
    client.force_login(world.urgentist.user)  # an emergency opening never shows what the patient hid
    page = _page(_pro_results(client, world.record))
    assert "321 %" in page and "987" not in page
    MatrixEntry.objects.update_or_create(profession="physiotherapist", doc_type=LAB, defaults={"allowed": False})
    client.force_login(world.kine.user)
    page = _page(_pro_results(client, world.record))
    assert "321" not in page and "No result you may see for this period." in page


@pytest.mark.django_db
@pytest.mark.parametrize(("persona", "status"), [
    ("stranger", 404), ("blocked_kine", 404), ("late_urgentist", 404), ("alice", 403), ("agent", 403),
])
def test_the_results_page_is_refused_without_standing(client, world, values, persona, status):
    user = getattr(world, persona)
    client.force_login(getattr(user, "user", user))
    assert _pro_results(client, world.record).status_code == status
    assert not AuditEntry.objects.filter(allowed=True).exists()


# --- The patient's results page ------------------------------------------------------------------

@pytest.mark.django_db
def test_the_patient_reads_plain_words_with_the_reference_range_and_nothing_withheld(client, world):
    now = timezone.now()
    report = attach_report(world.docs["released"], values=((POTASSIUM, "4.2", "mmol/L"),), at=now - timedelta(days=3))
    LabObservation.objects.filter(report=report).update(reference_low="3.5", reference_high="5.0", interpretation="N")
    attach_report(world.docs["withheld"], values=((POTASSIUM, "654", "mmol/L"),), interpretation="H")
    attach_report(world.docs["hidden"], values=((CREATININE, "987", "umol/L"),), at=now - timedelta(days=20))
    client.force_login(world.alice)
    page = _page(_patient_results(client, world.record))
    assert "4.2 mmol/L" in page and "3.5 – 5.0 mmol/L" in page and "Within the usual range" in page
    assert "654" not in page  # not yet released to the patient
    assert "987 µmol/L" in page  # hidden from professionals, not from her
    assert reverse("portal_patient:results", args=[world.record.pk]) in _page(
        client.get(reverse("portal_patient:record", args=[world.record.pk])))  # in the navigation


@pytest.mark.django_db
def test_the_patients_page_speaks_her_language(client, world):
    attach_report(world.docs["released"], values=((POTASSIUM, "6.1", "mmol/L"),), interpretation="H")
    User.objects.filter(pk=world.alice.pk).update(preferred_language="ru")
    client.force_login(world.alice)
    page = _page(_patient_results(client, world.record))
    assert "Результаты анализов" in page and "Выше обычных значений" in page


@pytest.mark.django_db
def test_a_representative_sees_nothing_hidden_from_representatives(client, world, values):
    client.force_login(world.mother)
    page = _page(_patient_results(client, world.leo_record))
    assert "555" in page and "444" not in page


@pytest.mark.django_db
def test_the_patients_page_of_another_record_is_missing(client, world, values):
    client.force_login(world.mother)
    assert _patient_results(client, world.record).status_code == 404
    client.force_login(world.dr_house.user)
    assert _patient_results(client, world.record).status_code == 403


# --- A fixed number of queries --------------------------------------------------------------------

def _record_with_values(world, count: int):
    """A diabetic followed by Dr House with `count` laboratory reports of one HbA1c each."""
    record = make_record(None, family_name="Durand", given_names="Paul", birth_date=date(1950, 1, 2))
    TreatingDoctor.objects.create(record=record, professional=world.dr_house)
    _diabetic(record, world.dr_house)
    start = timezone.now() - timedelta(days=count)
    documents = Document.objects.bulk_create(
        Document(record=record, doc_type=LAB, space=SPACE_OF_TYPE[LAB], title=f"lab {n}",
                 act_date=(start + timedelta(days=n)).date(), author_kind=Document.AuthorKind.PROFESSIONAL,
                 author_professional=world.dr_grant, file=f"records/{record.pk}/lab-{n}",
                 mime_type="application/pdf", size=100,
                 content_hash=hashlib.sha256(f"{record.pk}-{n}".encode()).hexdigest())
        for n in range(count))
    reports = LabReport.objects.bulk_create(
        LabReport(record=record, document=document, code="11502-2", effective_at=start + timedelta(days=n),
                  fingerprint=f"fp-{document.pk}")
        for n, document in enumerate(documents))
    LabObservation.objects.bulk_create(
        LabObservation(report=report, record=record, code=HBA1C, kind=LabObservation.Kind.QUANTITY,
                       value=f"{6 + n % 20 / 10}", unit="%", effective_at=report.effective_at,
                       interpretation="H" if n % 9 == 0 else "")
        for n, report in enumerate(reports))
    return record


@pytest.mark.django_db
@pytest.mark.parametrize("count", [5, 500])
@pytest.mark.parametrize(("name", "ceiling"), [("portal_pro:record", SCREEN_QUERIES),
                                               ("portal_pro:results", RESULTS_QUERIES)])
def test_the_screen_and_the_results_page_keep_their_ceilings(client, world, count, name, ceiling,
                                                              django_assert_max_num_queries):
    record = _record_with_values(world, count)
    client.force_login(world.dr_house.user)
    url = reverse(name, args=[record.pk])
    client.get(url)  # the session's renewal and the day's first read: not what is measured
    with django_assert_max_num_queries(ceiling):
        page = _page(client.get(url))
    assert "HbA1c" in page and '<svg class="trend"' in page
    assert page.count("<tr") <= 1 + MAX_VALUES + page.count("<thead")  # bounded
