"""The clinician patient screen (DOMAIN.md §3): one screen that tells a GP what matters in 15
seconds, each part as the policy allows, in a fixed number of queries; and its one-page PDF."""

from __future__ import annotations

import hashlib
import html
import io
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from dmp.audit import verify_chain
from dmp.models import (
    SPACE_OF_TYPE,
    AuditEntry,
    Document,
    DocumentType,
    EmergencyContact,
    PersonalProfile,
    ReimbursementLine,
    SelfDeclaredItem,
    TreatingDoctor,
    Vaccination,
)
from dmp.policy import Actor
from dmp.services import synthesis_write
from dmp.services.synthesis import Problem
from tests.personas import make_document, make_record

T = DocumentType


def _page(response) -> str:
    return html.unescape(response.content.decode())


def _screen(client, record):
    return client.get(reverse("portal_pro:record", args=[record.pk]))


def _section(page: str, css_class: str) -> str:
    return page.split(f'class="ps-box {css_class}"')[1].split("</section>")[0]


def _fill(record, doctor):
    """A synthesis by the médecin traitant, the insurer's lines and the patient's personal data."""
    synthesis_write(
        actor=Actor(doctor.user), record=record,
        problems=[Problem("E11.9", "Type 2 diabetes", date(2012, 3, 1)), Problem("I10", "Hypertension")],
        allergies="Penicillin: hives", points_of_attention="Kidney function under metformin",
        current_treatments="Metformin 1000 mg three times a day", vaccinations="Tetanus up to date (2021)",
    )
    today = timezone.localdate()
    lines = [
        ReimbursementLine(record=record, date=today - timedelta(days=30 * n), kind=ReimbursementLine.Kind.MEDICINE,
                          code="3400930000111", label="METFORMINE 1000 mg", amount=Decimal("7.62"))
        for n in range(6)
    ] + [
        ReimbursementLine(record=record, date=today - timedelta(days=200), kind=ReimbursementLine.Kind.MEDICINE,
                          code="3400930000222", label="RAMIPRIL 5 mg", amount=Decimal("3.11")),
        # Older than 24 months, and care rather than a medicine: not on the screen.
        ReimbursementLine(record=record, date=today - timedelta(days=800), kind=ReimbursementLine.Kind.MEDICINE,
                          code="3400930000333", label="AMOXICILLINE 1 g", amount=Decimal("2.00")),
        ReimbursementLine(record=record, date=today - timedelta(days=10), kind=ReimbursementLine.Kind.CARE,
                          code="G", label="Consultation de médecine générale", amount=Decimal("28.00")),
    ]
    ReimbursementLine.objects.bulk_create(lines)
    PersonalProfile.objects.update_or_create(record=record, defaults={
        "trusted_person_name": "Bob Martin", "trusted_person_relation": "Husband",
        "trusted_person_phone": "+33 6 00 00 00 01", "advance_directives": "No relentless treatment.",
        "blood_group": PersonalProfile.BloodGroup.O_NEG,
    })
    EmergencyContact.objects.create(record=record, name="Claire Martin", relation="Daughter", phone="+33600000002")
    SelfDeclaredItem.objects.create(record=record, kind=SelfDeclaredItem.Kind.ALLERGY, label="Peanuts", year=2001)
    SelfDeclaredItem.objects.create(record=record, kind=SelfDeclaredItem.Kind.OPERATION, label="Appendectomy")
    Vaccination.objects.create(record=record, vaccine="Influenza 2025", date=today - timedelta(days=60))


# --- What each block shows -----------------------------------------------------------------------

@pytest.mark.django_db
def test_each_block_of_the_screen_shows_what_matters(client, world):
    _fill(world.record, world.dr_house)
    client.force_login(world.dr_house.user)
    page = _page(_screen(client, world.record))

    assert "MARTIN Alice" in page and "years old" in page and "O−" in page
    alerts = _section(page, "ps-alerts")
    for text in ("Penicillin: hives", "Peanuts (2001)", "Kidney function under metformin", "Yes",
                 "Bob Martin (Husband)", "Claire Martin (Daughter)"):
        assert text in alerts, text
    assert "Appendectomy" not in alerts  # an operation is not an allergy
    problems = _section(page, "ps-problems")
    assert "E11.9" in problems and "Type 2 diabetes" in problems and "since 2012" in problems and "I10" in problems
    treatments = _section(page, "ps-treatments")
    assert "Metformin 1000 mg three times a day" in treatments
    metformin = treatments.split("METFORMINE 1000 mg")[1].split("</tr>")[0]
    assert ">6<" in metformin  # dispensed six times, one row
    assert "RAMIPRIL 5 mg" in treatments
    assert "AMOXICILLINE" not in treatments and "Consultation de médecine générale" not in treatments
    vaccinations = _section(page, "ps-vaccinations")
    assert "Influenza 2025" in vaccinations and "Tetanus up to date (2021)" in vaccinations
    documents = _section(page, "ps-documents")
    assert ">consultation<" in documents and ">imaging<" in documents and ">released<" in documents
    assert ">archived<" not in documents  # current documents only; the archive is one click away


@pytest.mark.django_db
def test_the_treating_doctor_sees_hidden_documents_marked(client, world):
    client.force_login(world.dr_house.user)
    documents = _section(_page(_screen(client, world.record)), "ps-documents")
    hidden = documents.split(">hidden<")[1].split("</li>")[0]
    assert "hidden by the patient" in hidden
    assert "hidden by the patient" not in documents.split(">imaging<")[1].split("</li>")[0]


@pytest.mark.django_db
def test_latest_documents_are_capped_per_space_with_the_count(client, world):
    for n in range(5):
        lab = make_document(world.record, f"lab {n}", T.LAB_REPORT, author=world.dr_grant)
        Document.objects.filter(pk=lab.pk).update(act_date=date(2026, 2, n + 1))
    client.force_login(world.dr_house.user)
    documents = _section(_page(_screen(client, world.record)), "ps-documents")
    biology = documents.split("space-biology")[1].split("</div>")[0]
    assert ">lab 4<" in biology and ">lab 3<" in biology and ">lab 2<" in biology
    assert ">lab 1<" not in biology and ">released<" not in biology
    assert '<span class="ps-count">7</span>' in biology  # 5 + withheld + released


@pytest.mark.django_db
def test_the_matrix_applies_on_the_screen(client, world):
    _fill(world.record, world.dr_house)
    client.force_login(world.kine.user)
    page = _page(_screen(client, world.record))
    assert ">imaging<" in page
    assert ">consultation<" not in page  # a physiotherapist does not read consultation reports
    assert "Type 2 diabetes" in page  # the synthesis is in the physiotherapist's matrix
    treatments = _section(page, "ps-treatments")
    assert "Your profession may not read the reimbursement data." in treatments
    assert "METFORMINE" not in treatments
    # What the screen does not show is neither read nor a refused attempt.
    assert not AuditEntry.objects.filter(actor=world.kine.user, action="view_reimbursements").exists()


@pytest.mark.django_db
def test_opening_the_screen_logs_each_part_read(client, world):
    _fill(world.record, world.dr_house)
    client.force_login(world.dr_grant.user)
    assert _screen(client, world.record).status_code == 200
    entries = AuditEntry.objects.filter(actor=world.dr_grant.user, record_id_ref=world.record.pk)
    assert sorted(entries.values_list("action", flat=True)) == ["view_record", "view_reimbursements", "view_synthesis"]
    assert set(entries.values_list("rule", flat=True)) == {"care_authorisation_granted"}
    assert entries.get(action="view_synthesis").object_type == "synthesis"


@pytest.mark.django_db
def test_an_empty_record_says_so(client, world):
    client.force_login(world.dr_house.user)
    page = _page(_screen(client, world.leo_record))
    assert "No synthesis yet." in page and "No medicine dispensed." in page
    assert "none in the record" in page and "none named" in page
    # Nothing shown from the synthesis or the reimbursements: the record read alone is logged.
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["view_record"]


# --- A fixed number of queries --------------------------------------------------------------------

def _big_record(world, documents: int):
    """A record followed by Dr House with a synthesis, reimbursements, personal data and
    `documents` documents over every space (bulk-created: no files)."""
    record = make_record(None, family_name="Durand", given_names="Paul", birth_date=date(1950, 1, 2))
    TreatingDoctor.objects.create(record=record, professional=world.dr_house)
    _fill(record, world.dr_house)
    types = [t for t in T.values if t not in (T.RECORD_SYNTHESIS,)]
    Document.objects.bulk_create(
        Document(
            record=record, doc_type=types[n % len(types)], space=SPACE_OF_TYPE[types[n % len(types)]],
            title=f"document {n}", act_date=date(2020, 1, 1) + timedelta(days=n),
            author_kind=Document.AuthorKind.PROFESSIONAL, author_professional=world.dr_grant,
            file=f"records/{record.pk}/dummy-{n}", mime_type="application/pdf", size=100,
            content_hash=hashlib.sha256(f"{record.pk}-{n}".encode()).hexdigest(),
            hidden_from_professionals=n % 7 == 0,
        )
        for n in range(documents)
    )
    return record


# The account with its profiles (the session itself is read from the cache), the record with
# the standing, synthesis and problems, medicines, documents (with the directives), profile,
# contacts, allergies, vaccinations, and the three audit entries (record, synthesis,
# reimbursements) in one append: lock, insert, head. The first read of the day adds the
# patient's notice.
SCREEN_QUERIES = 15


@pytest.mark.django_db
@pytest.mark.parametrize("documents", [5, 500])
def test_the_screen_issues_a_fixed_number_of_queries(client, world, documents, django_assert_max_num_queries):
    record = _big_record(world, documents)
    client.force_login(world.dr_house.user)
    _screen(client, record)  # the session's renewal and the day's first read: not what is measured
    with django_assert_max_num_queries(SCREEN_QUERIES):
        response = _screen(client, record)
    assert response.status_code == 200
    # Every part shown is still logged, each read of each screen its own entry, and the chain holds.
    actions = AuditEntry.objects.filter(record_id_ref=record.pk, action__startswith="view_").values_list(
        "action", flat=True)
    assert Counter(actions) == {"view_record": 2, "view_synthesis": 2, "view_reimbursements": 2}
    assert verify_chain() is None


@pytest.mark.django_db
def test_the_query_count_does_not_depend_on_the_size_of_the_record(client, world):
    counts = []
    client.force_login(world.dr_house.user)
    for size in (5, 500):
        record = _big_record(world, size)
        _screen(client, record)  # warm the session
        with CaptureQueriesContext(connection) as queries:
            assert _screen(client, record).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


# --- The PDF -------------------------------------------------------------------------------------

def _pdf(client, record):
    response = client.get(reverse("portal_pro:record_pdf", args=[record.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Cache-Control"] == "no-store"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;") and f"dmp-patient-{record.pk}-" in disposition
    assert record.family_name not in disposition and record.given_names.split()[0] not in disposition
    return PdfReader(io.BytesIO(response.content))


@pytest.mark.django_db
def test_the_pdf_of_alices_screen_is_one_page(client, world):
    _fill(world.record, world.dr_house)
    client.force_login(world.dr_house.user)
    reader = _pdf(client, world.record)
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "MARTIN Alice" in text and "Penicillin" in text and "E11.9" in text and "METFORMINE" in text
    # A read like the screen, logged the same way.
    assert AuditEntry.objects.filter(actor=world.dr_house.user, action="view_synthesis").count() == 1


# The one-page PDF of the demo's chronic patient: tests/test_demo_chronic_patient.py (one seed).


@pytest.mark.django_db
def test_the_pdf_leaves_out_hidden_documents_in_an_emergency(client, world):
    client.force_login(world.urgentist.user)
    text = _pdf(client, world.record).pages[0].extract_text()
    assert "consultation" in text and "hidden" not in text


# --- Refusals ------------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize(("persona", "status"), [
    ("stranger", 404), ("blocked_kine", 404), ("late_urgentist", 404), ("alice", 403), ("agent", 403),
    ("admin", 403),
])
def test_the_screen_and_its_pdf_are_refused(client, world, persona, status):
    user = getattr(world, persona)
    client.force_login(getattr(user, "user", user))
    for name in ("portal_pro:record", "portal_pro:record_pdf"):
        assert client.get(reverse(name, args=[world.record.pk])).status_code == status
    if status == 404:
        assert not AuditEntry.objects.filter(allowed=True, action__startswith="view_").exists()


@pytest.mark.django_db
def test_logged_out_visitors_are_sent_to_the_login(client, world):
    for name in ("portal_pro:record", "portal_pro:record_pdf"):
        response = client.get(reverse(name, args=[world.record.pk]))
        assert response.status_code == 302 and reverse("account_login") in response["Location"]


# --- One screen, 1366×768 ------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_the_demo_chronic_patient_fits_one_desktop_screen(live_server, page):
    """dr.bernard opens Michel Lambert's record at 1366×768, in French (the longer language):
    no vertical and no horizontal scroll bar on the page."""
    from django.conf import settings
    from django.test import Client

    from dmp import demo
    from dmp.models import Record, User

    demo.seed_demo()
    record = Record.objects.get(holder__username=demo.CHRONIC)
    client = Client()
    client.force_login(User.objects.get(username=demo.GP_TREATING))
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": live_server.url}])
    page.set_viewport_size({"width": 1366, "height": 768})
    response = page.goto(f"{live_server.url}/pro/records/{record.pk}/")
    assert response.status == 200
    assert page.locator(".ps-alerts").is_visible() and page.locator(".ps-documents").is_visible()
    height = page.evaluate("document.documentElement.scrollHeight")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert height <= 768, f"the page is {height}px high"
    assert width <= 1366, f"the page is {width}px wide"
    # And nothing that matters is hidden in a box's own scroll: the typical record reads at once.
    for box in (".ps-alerts", ".ps-problems", ".ps-treatments", ".ps-documents"):
        inner, shown = page.evaluate("(box) => { const e = document.querySelector(box);"
                                     " return [e.scrollHeight, e.clientHeight]; }", box)
        assert inner <= shown + 1, f"{box} scrolls: {inner}px in {shown}px"
