"""The counter dashboard (issue 6): an organisation's agents see the records it onboarded, with
their administrative status only; they deposit papers (several at once, all or nothing, never
read back), attach a NIR later without losing anything, and reprint credentials (a reset)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.contrib.auth import authenticate
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dmp.models import (
    AuditEntry,
    Consent,
    CounterAgent,
    DepositRight,
    Document,
    DocumentType,
    Notification,
    PostalLetter,
    Record,
    User,
)
from dmp.policy import Actor
from dmp.services.access import deposit_right_withdraw
from tests.outbox import notifications_sent_at_once  # noqa: F401 - autouse: notices sent at commit
from tests.personas import PASSWORD, enrol_totp, make_document, make_record, make_user
from tests.sample_files import image_bytes, text_pdf

DASHBOARD = reverse("social_workers:dashboard")
ALICE_NIR = "255081416802538"


def _client(user) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def _colleague(world) -> CounterAgent:
    """A second social worker of the same CADA, who did not onboard Alice themself."""
    return CounterAgent.objects.create(user=enrol_totp(make_user("nadia_cada")), organisation=world.agent.organisation)


def _deposit_url(record) -> str:
    return reverse("social_workers:counter_deposit", args=[record.pk])


def _files(*rows) -> dict:
    """One pick of several files, then the second step's row for each (kind, date on the original)."""
    return {
        "files": [SimpleUploadedFile(name, content) for name, content, _type, _date in rows],
        "file_type": [doc_type for _name, _content, doc_type, _date in rows],
        "file_title": ["" for _row in rows],
        "file_date": [act_date for _name, _content, _type, act_date in rows],
    }


# --- Organisation scope ------------------------------------------------------------------------

def test_organisation_scope(world):
    bob_record = make_record(make_user("bob_other"), family_name="Durand", created_by=world.other_agent.user)
    DepositRight.objects.create(record=bob_record, agent=world.other_agent)

    cada = _client(world.agent.user).get(DASHBOARD)
    assert cada.status_code == 200
    assert world.record.identifier in cada.content.decode() and bob_record.identifier not in cada.content.decode()

    colleague = _client(_colleague(world).user).get(DASHBOARD)
    assert world.record.identifier in colleague.content.decode()
    assert bob_record.identifier not in colleague.content.decode()

    cpam = _client(world.other_agent.user).get(DASHBOARD).content.decode()
    assert bob_record.identifier in cpam and world.record.identifier not in cpam
    # Nor can CPAM act on CADA's records.
    other = _client(world.other_agent.user)
    assert other.get(_deposit_url(world.record)).status_code == 404
    assert other.get(reverse("social_workers:counter_reprint", args=[world.record.pk])).status_code == 404
    assert other.post(reverse("social_workers:counter_nir_attach", args=[world.record.pk]),
                      {"nir": ALICE_NIR}).status_code == 404
    assert not Record.objects.get(pk=world.record.pk).nir


def test_home_still_lists_the_organisations_records(world):
    colleague = _client(_colleague(world).user)
    response = colleague.get(reverse("social_workers:home"))
    assert response.status_code == 200 and world.record.identifier in response.content.decode()
    assert DASHBOARD in response.content.decode()


def test_dashboard_shows_administrative_status_only(world):
    make_document(world.record, "Secret biopsy result", doc_type=DocumentType.PATHOLOGY_REPORT)
    body = _client(world.agent.user).get(DASHBOARD).content.decode()
    assert world.record.identifier in body and "Activated by the person" in body and "Credentials handed" in body
    assert "Secret biopsy result" not in body
    # The one exception is the button that prints the patient summary as a download (never a
    # page: tests/test_ips_pdf.py); nothing of the summary itself is on the dashboard.
    body = re.sub(r'<form method="post" action="/counter/records/\d+/summary\.pdf".*?</form>', "", body, flags=re.S)
    assert "synthesis" not in body.lower() and "summary" not in body.lower()
    assert "/patient/" not in body and "/pro/" not in body and "/fhir/" not in body


def test_non_agents_are_refused(world):
    for user in (world.alice, world.dr_house.user):
        client = _client(user)
        for url in (DASHBOARD, _deposit_url(world.record),
                    reverse("social_workers:counter_reprint", args=[world.record.pk])):
            assert client.get(url).status_code == 403, (user, url)
        assert client.post(reverse("social_workers:counter_nir_attach", args=[world.record.pk]),
                           {"nir": ALICE_NIR}).status_code == 403
        assert client.post(reverse("social_workers:counter_deposit_suggestions", args=[world.record.pk]),
                           {"names": ["a.pdf"]}).status_code == 403
    assert Client().get(DASHBOARD).status_code == 302  # to the login page


# --- Deposit -----------------------------------------------------------------------------------

def test_deposit_several_files_shows_a_count_only(world):
    before = Document.objects.filter(record=world.record).count()
    response = _client(world.agent.user).post(_deposit_url(world.record), _files(
        ("prescription_march.pdf", text_pdf("Prescription amoxicilline"), DocumentType.MEDICATION_PRESCRIPTION,
         "2025-03-02"),
        ("xray.png", image_bytes(), DocumentType.IMAGING_REPORT, "2024-11-20"),
    ))
    assert response.status_code == 200
    body = response.content.decode()
    assert "2 documents were deposited" in body
    assert "prescription" not in body.lower() and "xray" not in body.lower()
    stored = Document.objects.filter(record=world.record).order_by("pk")
    assert stored.count() == before + 2
    new = list(stored)[-2:]
    assert {d.doc_type for d in new} == {DocumentType.MEDICATION_PRESCRIPTION, DocumentType.IMAGING_REPORT}
    assert {str(d.act_date) for d in new} == {"2025-03-02", "2024-11-20"}
    assert all(d.author_kind == Document.AuthorKind.COUNTER for d in new)
    assert len({d.space for d in new}) == 2  # the space follows each file's type
    assert AuditEntry.objects.filter(action="deposit_document", allowed=True, record_id_ref=world.record.pk).exists()


def test_deposit_is_all_or_nothing_and_names_the_bad_file(world):
    before = Document.objects.count()
    response = _client(world.agent.user).post(_deposit_url(world.record), _files(
        ("good.pdf", text_pdf("A real letter"), DocumentType.CONSULTATION_REPORT, "2025-01-05"),
        ("broken.pdf", b"%PDF-1.4 not really", DocumentType.LAB_REPORT, "2025-01-06"),
    ))
    assert response.status_code == 200
    assert "broken.pdf" in response.content.decode()
    assert Document.objects.count() == before


def test_deposit_needs_a_kind_it_cannot_guess_and_loses_nothing(world):
    before = Document.objects.count()
    response = _client(world.agent.user).post(_deposit_url(world.record), _files(
        ("scan_0001.pdf", text_pdf("A real letter"), "", ""),
        ("ordonnance.pdf", text_pdf("Prescription"), "", ""),
    ))
    body = response.content.decode()
    assert "scan_0001.pdf: Choose the kind of paper." in body and "ordonnance.pdf" not in body
    assert Document.objects.count() == before


@pytest.mark.parametrize(("name", "kind", "typed_date", "stored_date"), [
    ("2024-03-02_ordonnance.pdf", DocumentType.MEDICATION_PRESCRIPTION, "", "2024-03-02"),  # both from the name
    ("radio_thorax.pdf", DocumentType.IMAGING_REPORT, "2023-12-01", "2023-12-01"),  # the date typed wins
    ("scan_0001.pdf", DocumentType.CERTIFICATE, "", "today"),  # the default kind; no date: the deposit day
])
def test_what_a_row_leaves_empty_is_suggested_from_the_name(world, name, kind, typed_date, stored_date):
    from django.utils import timezone

    data = _files((name, text_pdf("A paper"), "", typed_date)) | {"default_type": DocumentType.CERTIFICATE}
    response = _client(world.agent.user).post(_deposit_url(world.record), data)
    assert "1 document was deposited" in response.content.decode()
    document = Document.objects.filter(record=world.record).latest("pk")
    assert document.doc_type == kind
    assert str(document.act_date) == (str(timezone.localdate()) if stored_date == "today" else stored_date)


@pytest.mark.parametrize(("bad_date", "message"), [
    ("21/03/2024", "is not a valid date"), ("2999-01-01", "is in the future"),
])
def test_a_bad_date_is_named_and_nothing_is_stored(world, bad_date, message):
    before = Document.objects.count()
    response = _client(world.agent.user).post(_deposit_url(world.record), _files(
        ("good.pdf", text_pdf("A real letter"), DocumentType.CONSULTATION_REPORT, "2025-01-05"),
        ("letter.pdf", text_pdf("Another letter"), DocumentType.CONSULTATION_REPORT, bad_date),
    ))
    body = response.content.decode()
    assert "letter.pdf: The date on the original " + message in body
    assert Document.objects.count() == before


@pytest.mark.slow
def test_twelve_papers_in_one_pick_are_all_stored_and_the_answer_is_a_count(world):
    names = [f"2025-01-{day:02d}_{kind}.pdf" for day, kind in enumerate(
        ["ordonnance", "radio", "bilan_sanguin", "certificat", "compte_rendu", "vaccination",
         "lettre_de_sortie", "echographie", "prise_de_sang", "attestation", "irm", "courrier"], 1)]
    response = _client(world.agent.user).post(_deposit_url(world.record), {
        "files": [SimpleUploadedFile(name, text_pdf(f"Paper {i}")) for i, name in enumerate(names)],
    })
    body = response.content.decode()
    assert "12 documents were deposited" in body
    assert not any(name.split("_", 1)[1][:-4] in body for name in names)  # a count only, never a title
    new = Document.objects.filter(record=world.record, author_kind=Document.AuthorKind.COUNTER)
    assert new.count() == 12 and {str(d.act_date) for d in new} == {f"2025-01-{d:02d}" for d in range(1, 13)}
    assert {d.doc_type for d in new} >= {DocumentType.MEDICATION_PRESCRIPTION, DocumentType.IMAGING_REPORT,
                                         DocumentType.LAB_REPORT, DocumentType.CERTIFICATE}


def test_twelve_papers_with_one_bad_file_store_none_and_name_it(world):
    before = Document.objects.count()
    rows = [(f"paper_{i}.pdf", text_pdf(f"Paper {i}"), DocumentType.CONSULTATION_REPORT, "2025-01-05")
            for i in range(11)]
    rows.insert(6, ("torn_page.pdf", b"%PDF-1.4 not really", DocumentType.CONSULTATION_REPORT, "2025-01-05"))
    response = _client(world.agent.user).post(_deposit_url(world.record), _files(*rows))
    body = response.content.decode()
    assert "torn_page.pdf" in body and "paper_3.pdf" not in body
    assert Document.objects.count() == before


def test_the_second_step_suggests_from_the_names_only_for_the_organisations_records(world):
    url = reverse("social_workers:counter_deposit_suggestions", args=[world.record.pk])
    response = _client(world.agent.user).post(url, {"names": ["2024-03-02_ordonnance.pdf", "scan.pdf"]})
    assert response.json()["suggestions"] == [
        {"name": "2024-03-02_ordonnance.pdf", "doc_type": DocumentType.MEDICATION_PRESCRIPTION,
         "title": "Ordonnance", "act_date": "2024-03-02"},
        {"name": "scan.pdf", "doc_type": "", "title": "Scan", "act_date": ""},
    ]
    other = make_record(make_user("someone_else"))
    refused = _client(world.agent.user).post(
        reverse("social_workers:counter_deposit_suggestions", args=[other.pk]), {"names": ["a.pdf"]})
    assert refused.status_code == 404
    assert _client(world.agent.user).get(url).status_code == 405


def test_a_colleague_of_the_organisation_deposits(world):
    colleague = _colleague(world)
    response = _client(colleague.user).post(_deposit_url(world.record), _files(
        ("letter.pdf", text_pdf("Letter from the hospital"), DocumentType.DISCHARGE_LETTER, "2025-02-01"),
    ))
    assert "1 document was deposited" in response.content.decode()
    assert Document.objects.filter(record=world.record, added_by=colleague.user).count() == 1


def test_withdrawing_the_deposit_right_stops_the_organisation(world):
    colleague = _client(_colleague(world).user)
    # The colleague deposited once, which does not create a right of their own; give one anyway to
    # check that the withdrawal ends every right of the organisation on the record.
    DepositRight.objects.create(record=world.record, agent=CounterAgent.objects.get(user__username="nadia_cada"))
    right = DepositRight.objects.get(record=world.record, agent=world.agent)
    deposit_right_withdraw(actor=Actor(world.alice), record=world.record, deposit_right_id=right.pk)
    assert not DepositRight.objects.active().filter(record=world.record).exists()
    before = Document.objects.count()
    for client in (_client(world.agent.user), colleague):
        response = client.post(_deposit_url(world.record), _files(
            ("letter.pdf", text_pdf("Letter"), DocumentType.DISCHARGE_LETTER, "2025-02-01"),
        ))
        assert "withdrew your organisation" in response.content.decode()
    assert Document.objects.count() == before
    # The record still shows on the dashboard (administrative status).
    assert world.record.identifier in _client(world.agent.user).get(DASHBOARD).content.decode()


# --- NIR attachment ----------------------------------------------------------------------------

def _counts(record) -> tuple[int, int, int]:
    return (Document.objects.filter(record=record).count(), Consent.objects.filter(record=record).count(),
            AuditEntry.objects.filter(record_id_ref=record.pk).count())


def test_nir_attach_keeps_everything_and_notifies(world):
    make_document(world.record, "Old letter")
    docs, consents, audits = _counts(world.record)
    pk = world.record.pk
    response = _client(_colleague(world).user).post(
        reverse("social_workers:counter_nir_attach", args=[pk]), {"nir": "2 55 08 14 168 025 38"})
    assert response.status_code == 200 and "NIR attached" in response.content.decode()
    record = Record.objects.get(pk=pk)
    assert record.nir == ALICE_NIR
    assert User.objects.get(pk=world.alice.pk).username == world.alice.username  # the login stays
    after = _counts(record)
    assert after[:2] == (docs, consents)
    assert after[2] > audits  # every entry stays, the attachment is one more
    assert AuditEntry.objects.filter(record_id_ref=pk, action="attach_nir", allowed=True).exists()
    assert Notification.objects.filter(record=record, event="nir_attached").exists()


def test_nir_with_a_bad_key_is_refused(world):
    response = _client(world.agent.user).post(
        reverse("social_workers:counter_nir_attach", args=[world.record.pk]), {"nir": "255081416802539"})
    assert response.status_code == 400
    assert not Record.objects.get(pk=world.record.pk).nir


def test_nir_already_used_is_refused(world):
    make_record(make_user("someone_else"), family_name="Autre", nir=ALICE_NIR)
    response = _client(world.agent.user).post(
        reverse("social_workers:counter_nir_attach", args=[world.record.pk]), {"nir": ALICE_NIR})
    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    assert not Record.objects.get(pk=world.record.pk).nir


# --- Reprint -----------------------------------------------------------------------------------

def _reprint(client, record, **extra):
    return client.post(reverse("social_workers:counter_reprint", args=[record.pk]), {
        "family_name": "MARTIN", "birth_date": "1970-05-17", "identity_document": "residence_permit",
        "identity_document_number": "FR123456789", "identity_checked": "on",
    } | extra)


def test_reprint_resets_the_password_logged_and_notified(world, sms_outbox):
    client = _client(world.agent.user)
    form = client.get(reverse("social_workers:counter_reprint", args=[world.record.pk]))
    assert world.record.identifier in form.content.decode()
    response = _reprint(client, world.record)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    credentials = response.context["credentials"]
    alice = User.objects.get(pk=world.alice.pk)
    assert not alice.check_password(PASSWORD)
    assert alice.check_password(credentials.temporary_password)
    assert authenticate(username=alice.username, password=PASSWORD) is None
    assert authenticate(username=alice.username, password=credentials.temporary_password) is not None
    assert credentials.temporary_password in response.content.decode()
    assert AuditEntry.objects.filter(action="reset_credentials", allowed=True, record_id_ref=world.record.pk).exists()
    assert Notification.objects.filter(recipient=alice, event="credentials_reset").exists()
    # The dashboard tells that the credentials were reprinted.
    assert "reprinted on" in client.get(DASHBOARD).content.decode()


def test_reprint_checks_the_identity_document(world):
    response = _reprint(_client(world.agent.user), world.record, family_name="DUPONT")
    assert "do not match" in response.content.decode()
    assert User.objects.get(pk=world.alice.pk).check_password(PASSWORD)


@pytest.mark.parametrize("method", ["get", "post"])
def test_reprint_of_a_record_of_another_organisation_is_404(world, method):
    client = _client(world.other_agent.user)
    response = getattr(client, method)(reverse("social_workers:counter_reprint", args=[world.record.pk]))
    assert response.status_code == 404


def test_a_scripted_deposit_answers_where_to_go_and_the_count_is_shown_once(world):
    client = _client(world.agent.user)
    response = client.post(_deposit_url(world.record), _files(
        ("letter.pdf", text_pdf("A letter"), DocumentType.CONSULTATION_REPORT, "2025-01-05"),
        ("xray.png", image_bytes(), DocumentType.IMAGING_REPORT, ""),
    ), headers={"X-Requested-With": "XMLHttpRequest"})
    location = response.json()["location"]
    assert location == reverse("social_workers:counter_deposited", args=[world.record.pk])
    page = client.get(location)
    assert "2 documents were deposited" in page.content.decode() and page["Cache-Control"] == "no-store"
    assert "letter" not in page.content.decode().lower()
    assert client.get(location).status_code == 302  # once: then back to the dashboard
    # Another agent's session, or another record, has no count to show.
    assert _client(_colleague(world).user).get(location).status_code == 302


def test_a_scripted_deposit_refused_keeps_the_page_and_names_the_file(world):
    before = Document.objects.count()
    response = _client(world.agent.user).post(_deposit_url(world.record), _files(
        ("good.pdf", text_pdf("A real letter"), DocumentType.CONSULTATION_REPORT, "2025-01-05"),
        ("broken.pdf", b"%PDF-1.4 not really", DocumentType.LAB_REPORT, "2025-01-06"),
        ("scan.pdf", text_pdf("A paper"), "", ""),
    ), headers={"X-Requested-With": "XMLHttpRequest"})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors == ["scan.pdf: Choose the kind of paper."]  # the form's own check comes first
    assert Document.objects.count() == before
    response = _client(world.agent.user).post(_deposit_url(world.record), _files(
        ("good.pdf", text_pdf("A real letter"), DocumentType.CONSULTATION_REPORT, "2025-01-05"),
        ("broken.pdf", b"%PDF-1.4 not really", DocumentType.LAB_REPORT, "2025-01-06"),
    ), headers={"X-Requested-With": "XMLHttpRequest"})
    assert response.status_code == 400 and [e.split(":")[0] for e in response.json()["errors"]] == ["broken.pdf"]
    assert Document.objects.count() == before


# --- Every list bounded (issue 16): pages, search, no name in a URL -----------------------------

def _onboard_many(world, count: int, **extra) -> list[Record]:
    """`count` records created by the CADA's agent, newest last (one second apart)."""
    start = timezone.now() - timedelta(days=1)
    return Record.objects.bulk_create([
        Record(family_name=extra.get("family_name", "Nguyen"), given_names=extra.get("given_names", "Bao"),
               birth_date=date(1980, 1, 1), created_by=world.agent.user,
               created_at=start + timedelta(seconds=i))
        for i in range(count)
    ])


def _rows(body: str) -> list[str]:
    """The identifiers of the records listed on a dashboard page, in order."""
    return re.findall(r'<td data-label="Identifier">(?:<[^>]+>)*([^<]+)', body)


def _search(client: Client, **fields) -> str:
    response = client.post(DASHBOARD, {"identifier": "", "name": "", "status": "", **fields})
    assert response.status_code == 302 and response["Location"] == DASHBOARD  # nothing typed in the URL
    return client.get(DASHBOARD).content.decode()


def test_dashboard_pages_hold_fifty_records_newest_first(world):
    _onboard_many(world, 119)  # with Alice's: 120
    client = _client(world.agent.user)
    first, second, third = (client.get(DASHBOARD, {"page": n}).content.decode() for n in (1, 2, 3))
    assert len(_rows(first)) == 50 and len(_rows(second)) == 50 and len(_rows(third)) == 20
    everyone = _rows(first) + _rows(second) + _rows(third)
    assert len(set(everyone)) == 120  # stable order: no record twice, none left out
    newest = Record.objects.filter(created_by=world.agent.user).order_by("-created_at", "-pk")
    assert everyone == [r.identifier for r in newest]
    assert world.record.identifier in everyone
    assert f'href="{DASHBOARD}?page=2" rel="next"' in first and "Page 1 of 3" in first
    assert f'href="{DASHBOARD}?page=2" rel="prev"' in third and 'rel="next"' not in third
    # A page out of range or not a number shows the nearest page, never an error.
    assert _rows(client.get(DASHBOARD, {"page": 99}).content.decode()) == _rows(third)
    assert _rows(client.get(DASHBOARD, {"page": "x"}).content.decode()) == _rows(first)


def test_dashboard_queries_do_not_grow_with_the_organisation(world, django_assert_max_num_queries):
    _onboard_many(world, 10)
    client = _client(world.agent.user)
    client.get(DASHBOARD)  # the session and the caches warm
    with CaptureQueriesContext(connection) as small:
        client.get(DASHBOARD)
    _onboard_many(world, 150)
    for page in (1, 2, 4):
        with CaptureQueriesContext(connection) as large:
            client.get(DASHBOARD, {"page": page})
        assert len(large) == len(small), page
    with django_assert_max_num_queries(15):
        client.get(DASHBOARD, {"page": 2})
    # The home screen shows the newest page only, with the way to the rest.
    home = client.get(reverse("social_workers:home")).content.decode()
    assert len(_rows(home)) == 50 and "Show all records" in home


def test_dashboard_search_by_identifier_name_and_status(world):
    _onboard_many(world, 60)
    lefevre = make_record(None, family_name="Lefèvre", given_names="Élodie", created_by=world.agent.user)
    closed = make_record(None, family_name="Ferme", given_names="Jean", created_by=world.agent.user,
                         state=Record.State.CLOSED, closed_at=timezone.now())
    with_nir = make_record(None, family_name="Numéro", given_names="Ana", created_by=world.agent.user, nir=ALICE_NIR)
    client = _client(world.agent.user)

    # The identifier, whole (spaces and case as typed on the sheet do not matter).
    spaced = " ".join(ALICE_NIR[i:i + 3] for i in range(0, 15, 3))
    assert _rows(_search(client, identifier=spaced)) == [with_nir.identifier]
    assert _rows(_search(client, identifier=lefevre.provisional_id.lower())) == [lefevre.identifier]
    assert _rows(_search(client, identifier=lefevre.provisional_id[:-1])) == []  # whole only
    # The beginning of a family or given name, accents and case ignored.
    assert _rows(_search(client, name="LEFE")) == [lefevre.identifier]
    assert _rows(_search(client, name="elo lef")) == [lefevre.identifier]
    assert len(_rows(_search(client, name="nguy"))) == 50  # still a page at a time
    body = _search(client, name="zzz")
    assert _rows(body) == [] and "No record matches." in body
    # The status.
    assert _rows(_search(client, status="closed")) == [closed.identifier]
    without_nir = _search(client, status="without_nir")
    assert with_nir.identifier not in _rows(without_nir) and len(_rows(without_nir)) == 50
    assert world.record.identifier in _rows(_search(client, status="not_activated", name="martin"))
    assert _rows(_search(client, status="activated")) == []
    User.objects.filter(pk=world.alice.pk).update(last_login=timezone.now(), must_change_password=False)
    assert _rows(_search(client, status="activated")) == [world.record.identifier]
    # Combined, then cleared.
    assert _rows(_search(client, name="jean", status="closed")) == [closed.identifier]
    assert _rows(_search(client, name="elodie", status="closed")) == []
    assert "Only the records that match your search are shown." in client.get(DASHBOARD).content.decode()
    cleared = client.post(DASHBOARD, {"clear": "1"})
    assert cleared.status_code == 302 and cleared["Location"] == DASHBOARD
    assert len(_rows(client.get(DASHBOARD).content.decode())) == 50
    # A status that does not exist is refused, and the search kept is unchanged.
    _search(client, name="lefe")
    refused = client.post(DASHBOARD, {"status": "dead"})
    assert refused.status_code == 400 and _rows(refused.content.decode()) == [lefevre.identifier]
    assert _rows(client.get(DASHBOARD).content.decode()) == [lefevre.identifier]


def test_dashboard_search_never_finds_another_organisations_records(world):
    _onboard_many(world, 5)
    bob_record = make_record(make_user("bob_other"), family_name="Nguyen", given_names="Bob",
                             created_by=world.other_agent.user, nir=ALICE_NIR)
    cada = _client(world.agent.user)
    assert bob_record.identifier not in _rows(_search(cada, name="nguyen"))
    assert _rows(_search(cada, identifier=ALICE_NIR)) == []
    assert _rows(_search(cada, name="bob")) == []
    cpam = _client(world.other_agent.user)
    assert _rows(_search(cpam, name="nguyen")) == [bob_record.identifier]
    assert _rows(_search(cpam, identifier=world.record.identifier)) == []
    # Someone who is not a counter agent cannot search either.
    assert _client(world.alice).post(DASHBOARD, {"name": "nguyen"}).status_code == 403


def test_dashboard_search_words_never_reach_a_url_nor_the_session_in_clear(world):
    _onboard_many(world, 80, family_name="Lefèvre", given_names="Élodie")
    client = _client(world.agent.user)
    body = _search(client, name="Lefèvre", identifier="", status="not_activated")
    assert len(_rows(body)) == 50
    urls = re.findall(r'(?:href|action)="([^"]*)"', body)
    assert urls and not any("lef" in url.lower() or "name=" in url or "status=" in url for url in urls)
    assert f"{DASHBOARD}?page=2" in urls  # only the page number is in the query string
    assert "Lef" not in str(client.session["dmp_counter_search"])  # sealed
    second = client.get(DASHBOARD, {"page": 2}).content.decode()
    assert len(_rows(second)) == 30  # the search holds across pages


def test_letters_to_print_are_bounded(world):
    PostalLetter.objects.bulk_create([
        PostalLetter(record=world.record, organisation=world.agent.organisation, event="credentials_reset",
                     language="fr", context={})
        for _ in range(55)
    ])
    body = _client(world.agent.user).get(DASHBOARD).content.decode()
    assert body.count("/counter/letters/") == 50 and "More letters wait" in body
