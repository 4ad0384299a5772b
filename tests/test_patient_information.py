"""The "My information" screen (DOMAIN.md §2 "Personal data"): every section displayed and
edited through the views, bad input refused with nothing changed, the contact change told to
the former and the new contact details, advance directives as a real PDF in the record, a
representative's edits in the audit log, and the refusals (another patient → 404, other
portals → 403, a professional never edits personal data)."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pypdf
import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from dmp import services
from dmp.models import (
    AuditEntry,
    Document,
    DocumentType,
    EmergencyContact,
    PersonalProfile,
    Record,
    SelfDeclaredItem,
    User,
    Vaccination,
)
from dmp.policy import Actor
from dmp.services.personal import DIRECTIVE_QUESTIONS, DirectiveChoice
from tests.outbox import notifications_sent_at_once  # noqa: F401 - autouse: notices sent at commit
from tests.personas import user_of

SECTIONS = [
    "information", "information_contact", "information_emergency_contacts", "information_trusted_person",
    "information_advance_directives", "information_advance_directives_upload", "information_organ_donation",
    "information_blood_group", "information_vaccinations", "information_declared", "information_notes",
]


def url(name: str, record: Record) -> str:
    return reverse(f"portal_patient:{name}", args=[record.pk])


def profile_of(record: Record) -> PersonalProfile:
    return PersonalProfile.objects.filter(record=record).first() or PersonalProfile(record=record)


def contact_form(**changes) -> dict:
    data = {"email": "", "phone": "+33612345678", "postal_address": "", "preferred_language": "en",
            "languages": ["fr"], "other_languages": ""}
    return data | changes


def real_pdf(label: str) -> bytes:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Title": label})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def pdf_text(document: Document) -> str:
    with document.file.open("rb") as handle:
        reader = pypdf.PdfReader(io.BytesIO(handle.read()))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


@pytest.fixture
def alice(client, world):
    client.force_login(world.alice)
    return client


# --- the page -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_empty_page_shows_every_section_and_says_what_to_add_and_why(alice, world):
    response = alice.get(url("information", world.record))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    for anchor in ("contact", "emergency-contacts", "trusted-person", "advance-directives", "organ-donation",
                   "blood-group", "vaccinations", "declared", "notes"):
        assert f'id="{anchor}"' in page
    assert "Still to fill in" in page
    assert "You have not written advance directives" in page and "if one day you cannot say it yourself" in page
    assert "You have not named a trusted person" in page and "the doctors must consult them" in page
    assert "everyone is presumed to agree" in page
    assert "Nobody yet. Add a relative or a friend" in page
    assert "No vaccination listed" in page and "Nothing declared" in page
    assert "Your login code is sent by SMS to this mobile phone." in page
    for name in SECTIONS[1:]:
        assert url(name, world.record) in page


@pytest.mark.django_db
def test_a_filled_page_shows_each_section_at_a_glance(alice, world):
    record = world.record
    PersonalProfile.objects.create(
        record=record, trusted_person_name="Paul Martin", trusted_person_relation="brother",
        trusted_person_phone="+33698765432", organ_donation="opposed",
        organ_donation_stated_at=timezone.now(), blood_group="AB-", notes="Deaf in the left ear",
        advance_directives="Resuscitation: I do not want this",
        advance_directives_updated_at=timezone.now(),
    )
    EmergencyContact.objects.create(record=record, name="Julie Martin", relation="daughter", phone="+33611111111")
    Vaccination.objects.create(record=record, vaccine="Tetanus", date=date(2020, 4, 1))
    Vaccination.objects.create(record=record, vaccine="Flu", date=date(2024, 10, 1), declared_by_patient=False)
    SelfDeclaredItem.objects.create(record=record, kind="allergy", label="Penicillin (hives)", year=1995)
    SelfDeclaredItem.objects.create(record=record, kind="operation", label="Appendix removed", year=2001)
    Record.objects.filter(pk=record.pk).update(languages=["fr", "prs"], postal_address="1 rue des Lilas\nLille")

    page = alice.get(url("information", record)).content.decode()
    assert "Still to fill in" not in page
    for shown in ("Paul Martin", "brother", "Opposed to organ and tissue donation", "stated on", "AB−",
                  "Deaf in the left ear", "Resuscitation: I do not want this", "Julie Martin", "Tetanus", "Flu",
                  "recorded by a professional", "Penicillin (hives)", "Appendix removed", "1 rue des Lilas",
                  "Français (French)", "prs"):
        assert shown in page, shown


@pytest.mark.django_db
def test_the_page_query_count_does_not_grow_with_the_rows(alice, world, django_assert_max_num_queries):
    record = world.record
    alice.get(url("information", record))  # warm the session

    def fill(n: int) -> None:
        for i in range(n):
            EmergencyContact.objects.create(record=record, name=f"Contact {i}", phone="+33611111111")
            Vaccination.objects.create(record=record, vaccine=f"Vaccine {i}", date=date(2020, 1, 1))
            SelfDeclaredItem.objects.create(record=record, kind="history", label=f"Illness {i}")

    fill(1)
    with django_assert_max_num_queries(18) as few:
        alice.get(url("information", record))
    fill(20)
    with django_assert_max_num_queries(18) as many:
        page = alice.get(url("information", record)).content.decode()
    assert "Illness 20" not in page and "Illness 19" in page
    assert len(many.captured_queries) == len(few.captured_queries)


# --- contact details ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_contact_change_updates_record_and_account_and_warns_the_former_and_new_details(
        alice, world, sms_outbox, mailoutbox, django_capture_on_commit_callbacks):
    User.objects.filter(pk=world.alice.pk).update(email="old@example.org")
    Record.objects.filter(pk=world.record.pk).update(email="old@example.org", phone="+33612345678")

    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(url("information_contact", world.record), contact_form(
            email="new@example.org", phone="07 81 22 33 44", postal_address="2 rue Neuve, Lille",
            preferred_language="en", languages=["fr", "ar"], other_languages="Tigrinya, tigrinya",
        ))

    assert response.status_code == 302 and response["Location"].endswith("#contact")
    record = Record.objects.get(pk=world.record.pk)
    account = User.objects.get(pk=world.alice.pk)
    assert (record.email, record.phone) == (account.email, account.phone) == ("new@example.org", "+33781223344")
    assert record.postal_address == "2 rue Neuve, Lille" and record.languages == ["fr", "ar", "Tigrinya"]
    assert record.preferred_language == account.preferred_language == "en"
    # The login code now goes to the new phone; the former one was told, and so was the new one.
    assert sorted(to for to, _text in sms_outbox) == ["+33612345678", "+33781223344"]
    assert sorted(mail.to[0] for mail in mailoutbox) == ["new@example.org", "old@example.org"]
    mail = mailoutbox[0]
    assert "contact details were changed" in mail.subject
    assert "your e-mail address and your mobile phone" in mail.body and "health-insurance counter" in mail.body
    assert 'lang="en"' in mail.alternatives[0][0]
    assert all("counter" in text and "DMP" in text for _to, text in sms_outbox)
    # Nothing medical, nor the new details, in the notice.
    assert all("+33781223344" not in text for _to, text in sms_outbox) and "new@example.org" not in mail.body
    assert "saved" in alice.get(url("information", world.record)).content.decode()


@pytest.mark.django_db
def test_changing_only_the_address_or_languages_sends_no_notice(
        alice, world, sms_outbox, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        alice.post(url("information_contact", world.record), contact_form(postal_address="3 place Rihour"))
    assert Record.objects.get(pk=world.record.pk).postal_address == "3 place Rihour"
    assert not sms_outbox and not mailoutbox


@pytest.mark.django_db
@pytest.mark.parametrize(("changes", "message"), [
    ({"phone": "12345"}, "This mobile number is not valid"),
    ({"phone": "", "email": ""}, "Keep an e-mail address or a mobile phone"),
    ({"email": "not-an-address"}, "Enter a valid email address."),
    ({"preferred_language": "xx"}, "Select a valid choice."),
    ({"other_languages": "x" * 41}, "Language is too long"),
])
def test_bad_contact_details_are_refused_and_nothing_changes(
        alice, world, sms_outbox, mailoutbox, django_capture_on_commit_callbacks, changes, message):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(url("information_contact", world.record),
                              contact_form(postal_address="somewhere new", **changes))
    assert response.status_code == 200
    assert message in response.content.decode()
    record, account = Record.objects.get(pk=world.record.pk), User.objects.get(pk=world.alice.pk)
    assert record.postal_address == "" and record.preferred_language == "fr"
    assert account.phone == "+33612345678" and account.email == ""
    assert not sms_outbox and not mailoutbox


# --- people to notify, trusted person ----------------------------------------------------------


@pytest.mark.django_db
def test_emergency_contacts_are_added_and_removed_without_javascript(alice, world):
    page_url = url("information_emergency_contacts", world.record)
    response = alice.post(page_url, {"name": "Julie Martin", "relation": "daughter", "phone": "03 20 12 34 56"})
    assert response.status_code == 302 and response["Location"] == page_url
    contact = EmergencyContact.objects.get(record=world.record)
    assert (contact.name, contact.relation, contact.phone) == ("Julie Martin", "daughter", "+33320123456")
    page = alice.get(page_url).content.decode()
    assert "Julie Martin" in page and f'name="remove" value="{contact.pk}"' in page
    # Plain forms: the only script is the site-wide one (language switch, print buttons).
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/js/dmp.js" defer>']

    assert alice.post(page_url, {"remove": contact.pk}).status_code == 302
    assert not EmergencyContact.objects.filter(record=world.record).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("data", "message"), [
    ({"name": "Julie", "phone": "12"}, "This phone number is not valid"),
    ({"name": "", "phone": "0611111111"}, "This field is required."),
    ({"name": "Julie", "phone": ""}, "This field is required."),
    ({"name": "J" * 151, "phone": "0611111111"}, "at most 150 characters"),
])
def test_bad_emergency_contacts_are_refused_and_nothing_is_added(alice, world, data, message):
    response = alice.post(url("information_emergency_contacts", world.record), data)
    assert response.status_code == 200 and message in response.content.decode()
    assert not EmergencyContact.objects.exists()


@pytest.mark.django_db
def test_a_row_of_another_record_cannot_be_removed_through_ones_own(alice, world):
    leos = EmergencyContact.objects.create(record=world.leo_record, name="Marie", phone="+33611111111")
    response = alice.post(url("information_emergency_contacts", world.record), {"remove": leos.pk})
    assert response.status_code == 200 and "no longer there" in response.content.decode()
    assert EmergencyContact.objects.filter(pk=leos.pk).exists()


@pytest.mark.django_db
def test_the_trusted_person_is_named_changed_and_removed(alice, world):
    page_url = url("information_trusted_person", world.record)
    assert "they must agree" in alice.get(page_url).content.decode()
    response = alice.post(page_url, {"name": "Paul Martin", "relation": "brother", "phone": "06 98 76 54 32"})
    assert response.status_code == 302 and response["Location"].endswith("#trusted-person")
    profile = profile_of(world.record)
    assert (profile.trusted_person_name, profile.trusted_person_relation, profile.trusted_person_phone) == (
        "Paul Martin", "brother", "+33698765432")
    assert "Paul Martin" in alice.get(page_url).content.decode()  # the form shows the current values

    response = alice.post(page_url, {"name": "", "relation": "brother", "phone": ""})
    assert "Give the trusted person&#x27;s name." in response.content.decode()
    assert profile_of(world.record).trusted_person_name == "Paul Martin"

    alice.post(page_url, {"name": "", "relation": "", "phone": ""})
    assert profile_of(world.record).trusted_person_name == ""


# --- organ donation, blood group, notes -----------------------------------------------------------


@pytest.mark.django_db
def test_organ_donation_explains_the_french_rules_and_dates_the_statement(alice, world):
    page_url = url("information_organ_donation", world.record)
    page = alice.get(page_url).content.decode()
    assert "presumed to agree" in page and "national refusal register" in page and "Tell your family" in page
    response = alice.post(page_url, {"statement": "opposed"})
    assert response.status_code == 302 and response["Location"].endswith("#organ-donation")
    profile = profile_of(world.record)
    assert profile.organ_donation == "opposed"
    assert timezone.now() - profile.organ_donation_stated_at < timedelta(minutes=1)

    assert alice.post(page_url, {"statement": "maybe"}).status_code == 200
    assert profile_of(world.record).organ_donation == "opposed"

    alice.post(page_url, {"statement": "not_stated"})
    profile = profile_of(world.record)
    assert profile.organ_donation == "not_stated" and profile.organ_donation_stated_at is None


@pytest.mark.django_db
def test_blood_group_and_notes_are_edited_and_bad_values_refused(alice, world):
    assert alice.post(url("information_blood_group", world.record), {"blood_group": "O-"}).status_code == 302
    assert alice.post(url("information_blood_group", world.record), {"blood_group": "Z+"}).status_code == 200
    assert profile_of(world.record).blood_group == "O-"

    assert alice.post(url("information_notes", world.record), {"notes": "Deaf in the left ear"}).status_code == 302
    response = alice.post(url("information_notes", world.record), {"notes": "x" * 5001})
    assert response.status_code == 200 and "at most 5000 characters" in response.content.decode()
    assert profile_of(world.record).notes == "Deaf in the left ear"
    page = alice.get(url("information", world.record)).content.decode()
    assert "O−" in page and "Deaf in the left ear" in page


# --- vaccinations and self-declared items ---------------------------------------------------------


@pytest.mark.django_db
def test_vaccinations_are_added_and_removed(alice, world):
    page_url = url("information_vaccinations", world.record)
    response = alice.post(page_url, {"vaccine": "Tetanus", "date": "2020-04-01", "batch": "AB12"})
    assert response.status_code == 302
    vaccination = Vaccination.objects.get(record=world.record)
    assert (vaccination.vaccine, vaccination.date, vaccination.batch, vaccination.declared_by_patient) == (
        "Tetanus", date(2020, 4, 1), "AB12", True)
    assert "Tetanus" in alice.get(url("information", world.record)).content.decode()
    alice.post(page_url, {"remove": vaccination.pk})
    assert not Vaccination.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("data", "message"), [
    ({"vaccine": "Tetanus", "date": (timezone.localdate() + timedelta(days=1)).isoformat()},
     "The date cannot be in the future."),
    ({"vaccine": "Tetanus", "date": "1960-01-01"}, "The date cannot be before the date of birth."),
    ({"vaccine": "", "date": "2020-04-01"}, "This field is required."),
    ({"vaccine": "Tetanus", "date": ""}, "This field is required."),
])
def test_bad_vaccinations_are_refused_and_nothing_is_added(alice, world, data, message):
    response = alice.post(url("information_vaccinations", world.record), data)
    assert response.status_code == 200 and message in response.content.decode()
    assert not Vaccination.objects.exists()


@pytest.mark.django_db
def test_a_vaccination_recorded_by_a_professional_is_not_removed_by_the_patient(alice, world):
    by_doctor = Vaccination.objects.create(record=world.record, vaccine="Flu", date=date(2024, 10, 1),
                                           declared_by_patient=False)
    page_url = url("information_vaccinations", world.record)
    assert f'value="{by_doctor.pk}"' not in alice.get(page_url).content.decode()
    response = alice.post(page_url, {"remove": by_doctor.pk})
    assert "ask them to correct it" in response.content.decode()
    assert Vaccination.objects.filter(pk=by_doctor.pk).exists()


@pytest.mark.django_db
def test_allergies_history_and_operations_are_declared_and_removed(alice, world):
    page_url = url("information_declared", world.record)
    assert alice.post(page_url, {"kind": "allergy", "label": "Penicillin (hives)", "year": "1995"}).status_code == 302
    assert alice.post(page_url, {"kind": "operation", "label": "Appendix removed"}).status_code == 302
    for data, message in (({"kind": "allergy", "label": ""}, "This field is required."),
                          ({"kind": "dream", "label": "x"}, "Select a valid choice."),
                          ({"kind": "history", "label": "Asthma", "year": "1950"}, "between the year of birth")):
        response = alice.post(page_url, data)
        assert response.status_code == 200 and message in response.content.decode()
    items = SelfDeclaredItem.objects.filter(record=world.record)
    assert sorted((i.kind, i.label, i.year) for i in items) == [
        ("allergy", "Penicillin (hives)", 1995), ("operation", "Appendix removed", None)]
    page = alice.get(url("information", world.record)).content.decode()
    assert "Allergies" in page and "Penicillin (hives)" in page and "Operations" in page
    alice.post(page_url, {"remove": items.get(kind="allergy").pk})
    assert list(SelfDeclaredItem.objects.values_list("label", flat=True)) == ["Appendix removed"]


# --- advance directives ---------------------------------------------------------------------------


def directives_form(**changes) -> dict:
    data = {q.key: "" for q in DIRECTIVE_QUESTIONS} | {f"{q.key}_details": "" for q in DIRECTIVE_QUESTIONS if q.choice}
    return data | {"confirmed": "on"} | changes


@pytest.mark.django_db
def test_the_guided_directives_become_a_dated_pdf_in_the_personal_space_and_text_in_the_profile(alice, world):
    Record.objects.filter(pk=world.record.pk).update(preferred_language="en")
    page_url = url("information_advance_directives", world.record)
    form_page = alice.get(page_url).content.decode()
    assert "Resuscitation" in form_page and "deep and continuous sedation" in form_page
    assert "Where I would like to spend the end of my life" in form_page

    response = alice.post(page_url, directives_form(
        resuscitation=DirectiveChoice.REFUSE, ventilation=DirectiveChoice.DOCTORS_DECIDE,
        sedation=DirectiveChoice.WANT, sedation_details="Relieve my pain above all.",
        other_wishes="I wish to hear Bach's cello suites.", trusted_person="Paul Martin",
    ))
    assert response.status_code == 302 and response["Location"].endswith("#advance-directives")

    document = Document.objects.get(record=world.record, doc_type=DocumentType.ADVANCE_DIRECTIVES)
    assert document.space == "personal" and document.author_kind == "patient" and document.added_by == world.alice
    assert document.mime_type == "application/pdf" and document.act_date == timezone.localdate()
    text = pdf_text(document)
    assert "Bach's cello suites" in text and "Relieve my pain above all." in text
    assert "Resuscitation" in text and "I do not want this" in text and "Paul Martin" in text
    assert "Alice Martin" in text and timezone.localdate().strftime("%Y") in text  # named and dated
    assert "Treatments that keep me alive" not in text  # unanswered questions are left out

    profile = profile_of(world.record)
    assert "Resuscitation: I do not want this" in profile.advance_directives
    assert "Bach's cello suites" in profile.advance_directives
    assert timezone.now() - profile.advance_directives_updated_at < timedelta(minutes=1)

    page = alice.get(url("information", world.record)).content.decode()
    assert reverse("portal_patient:document_file", args=[document.pk]) in page
    assert "You have not written advance directives" not in page
    assert alice.get(reverse("portal_patient:document_file", args=[document.pk])).status_code == 200


@pytest.mark.django_db
def test_signing_again_adds_a_new_document_and_keeps_the_first(alice, world):
    page_url = url("information_advance_directives", world.record)
    alice.post(page_url, directives_form(other_wishes="First wishes."))
    alice.post(page_url, directives_form(other_wishes="Second wishes."))
    documents = Document.objects.filter(record=world.record, doc_type=DocumentType.ADVANCE_DIRECTIVES)
    assert documents.count() == 2
    assert "Second wishes." in profile_of(world.record).advance_directives
    latest = documents.order_by("-added_at", "-pk").first()
    page = alice.get(url("information", world.record)).content.decode()
    assert reverse("portal_patient:document_file", args=[latest.pk]) in page


@pytest.mark.django_db
@pytest.mark.parametrize(("changes", "message"), [
    ({}, "Answer at least one question"),
    ({"other_wishes": "Bach", "confirmed": ""}, "tick the box to confirm"),
    ({"resuscitation": "perhaps"}, "Select a valid choice."),
    ({"other_wishes": "x" * 2001}, "at most 2000 characters"),
])
def test_empty_or_unconfirmed_directives_are_refused_and_nothing_is_stored(alice, world, changes, message):
    response = alice.post(url("information_advance_directives", world.record), directives_form(**changes))
    assert response.status_code == 200 and message in response.content.decode()
    assert not Document.objects.filter(doc_type=DocumentType.ADVANCE_DIRECTIVES).exists()
    assert profile_of(world.record).advance_directives == ""


def test_the_directives_pdf_template_follows_the_records_language_and_direction(world):
    with translation.override("ar"):
        html = render_to_string("documents/advance_directives.html", {
            "record": world.record, "answers": [], "when": timezone.now(), "title": "t", "written_by": "Alice",
        })
    assert '<meta charset="utf-8">' in html and 'lang="ar" dir="rtl"' in html


@pytest.mark.django_db
def test_an_uploaded_directives_file_is_stored_as_advance_directives(alice, world):
    from django.core.files.uploadedfile import SimpleUploadedFile

    page_url = url("information_advance_directives_upload", world.record)
    response = alice.post(page_url, {
        "file": SimpleUploadedFile("directives.pdf", real_pdf("signed"), content_type="application/pdf"),
        "signed_on": "2025-06-01", "title": "",
    })
    assert response.status_code == 302
    document = Document.objects.get(record=world.record, doc_type=DocumentType.ADVANCE_DIRECTIVES)
    assert document.space == "personal" and document.act_date == date(2025, 6, 1)
    assert document.title == "Directives anticipées" or document.title == "Advance directives"
    page = alice.get(url("information", world.record)).content.decode()
    assert reverse("portal_patient:document_file", args=[document.pk]) in page


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "content", "signed_on", "message"), [
    ("wishes.txt", b"I want everything", "2025-06-01", "Only PDF files, images"),
    ("d.pdf", None, (timezone.localdate() + timedelta(days=3)).isoformat(), "The date cannot be in the future."),
])
def test_a_bad_directives_upload_is_refused_and_nothing_is_stored(alice, world, name, content, signed_on, message):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(name, content or real_pdf("future"))
    response = alice.post(url("information_advance_directives_upload", world.record),
                          {"file": upload, "signed_on": signed_on})
    assert response.status_code == 200 and message in response.content.decode()
    assert not Document.objects.filter(doc_type=DocumentType.ADVANCE_DIRECTIVES).exists()


# --- a representative, and the audit log --------------------------------------------------------------


@pytest.mark.django_db
def test_a_representative_edits_the_childs_information_and_it_is_in_the_audit_log(client, world):
    client.force_login(world.mother)
    leo = world.leo_record
    assert client.get(url("information", leo)).status_code == 200
    assert AuditEntry.objects.filter(action="view_personal_data", role="representative", record_id_ref=leo.pk,
                                     allowed=True).exists()
    assert client.post(url("information_blood_group", leo), {"blood_group": "A+"}).status_code == 302
    assert client.post(url("information_vaccinations", leo), {"vaccine": "Measles", "date": "2012-03-01"}
                       ).status_code == 302
    assert profile_of(leo).blood_group == "A+" and leo.vaccinations.get().vaccine == "Measles"
    edits = AuditEntry.objects.filter(action="edit_personal_data", record_id_ref=leo.pk)
    assert sorted(edits.values_list("object_id", flat=True)) == ["blood_group", "vaccinations"]
    assert all(e.allowed and e.mode == "representative" and e.actor_id == world.mother.pk for e in edits)
    # A refused edit leaves no "edited" line.
    client.post(url("information_blood_group", leo), {"blood_group": "Z"})
    assert edits.count() == 2


@pytest.mark.django_db
def test_a_representatives_contact_change_warns_the_childs_former_address(
        client, world, mailoutbox, django_capture_on_commit_callbacks):
    client.force_login(world.mother)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url("information_contact", world.leo_record),
                    contact_form(email="leo@example.org", phone="", preferred_language="en"))
    leo = User.objects.get(pk=world.leo.pk)
    assert leo.email == Record.objects.get(pk=world.leo_record.pk).email == "leo@example.org"
    assert sorted(m.to[0] for m in mailoutbox) == ["leo.martin@example.org", "leo@example.org"]
    assert "legal representative" in mailoutbox[0].body
    assert AuditEntry.objects.filter(action="edit_personal_data", object_id="contact", mode="representative").exists()


@pytest.mark.django_db
def test_the_patients_own_edits_are_not_in_the_access_history(alice, world):
    alice.get(url("information", world.record))
    alice.post(url("information_blood_group", world.record), {"blood_group": "A+"})
    assert not AuditEntry.objects.filter(record_id_ref=world.record.pk).exists()


# --- refusals -------------------------------------------------------------------------------------


def _leo_snapshot(world) -> tuple:
    leo = Record.objects.get(pk=world.leo_record.pk)
    return (leo.email, leo.phone, leo.postal_address, profile_of(leo).blood_group, profile_of(leo).notes,
            leo.emergency_contacts.count(), leo.vaccinations.count(), leo.self_declared.count(),
            leo.documents.count(), User.objects.get(pk=world.leo.pk).email)


POSTS = {
    "information_contact": contact_form(email="evil@example.org", phone="+33781000000"),
    "information_emergency_contacts": {"name": "Evil", "phone": "0611111111"},
    "information_trusted_person": {"name": "Evil"},
    "information_advance_directives": directives_form(other_wishes="Evil"),
    "information_advance_directives_upload": {"signed_on": "2025-01-01"},
    "information_organ_donation": {"statement": "opposed"},
    "information_blood_group": {"blood_group": "O-"},
    "information_vaccinations": {"vaccine": "Evil", "date": "2020-01-01"},
    "information_declared": {"kind": "allergy", "label": "Evil"},
    "information_notes": {"notes": "Evil"},
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", SECTIONS)
def test_another_patient_gets_404_on_every_information_url_and_changes_nothing(client, world, name):
    client.force_login(world.alice)
    before = _leo_snapshot(world)
    assert client.get(url(name, world.leo_record)).status_code == 404
    # The page itself takes no POST (405, which says nothing about the record); each form does.
    assert client.post(url(name, world.leo_record), POSTS.get(name, {})).status_code == (
        405 if name == "information" else 404)
    assert _leo_snapshot(world) == before
    assert AuditEntry.objects.filter(record_id_ref=world.leo_record.pk, allowed=False).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["dr_house", "urgentist", "regulator", "agent", "admin"])
@pytest.mark.parametrize("name", SECTIONS)
def test_professionals_agents_and_administrators_get_403(client, world, persona, name):
    client.force_login(user_of(world, persona))
    assert client.get(url(name, world.record)).status_code == 403
    assert client.post(url(name, world.record), POSTS.get(name, {})).status_code == (
        405 if name == "information" else 403)
    assert not PersonalProfile.objects.exists() and not EmergencyContact.objects.exists()


@pytest.mark.django_db
def test_logged_out_visitors_are_sent_to_the_login_page(client, world):
    response = client.get(url("information", world.record))
    assert response.status_code == 302 and reverse("account_login") in response["Location"]


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["dr_house", "dr_grant", "urgentist", "agent"])
def test_a_professional_never_edits_personal_data_even_through_the_services(world, persona):
    actor = Actor(user_of(world, persona))
    record = world.record
    calls = [
        lambda: services.record_contact_update(actor=actor, record=record, email="x@example.org", phone="",
                                               postal_address="", languages=[], preferred_language="fr"),
        lambda: services.emergency_contact_add(actor=actor, record=record, name="X", relation="", phone="0611111111"),
        lambda: services.trusted_person_set(actor=actor, record=record, name="X", phone="", relation=""),
        lambda: services.advance_directives_write(actor=actor, record=record, answers={"other_wishes": "X"}),
        lambda: services.advance_directives_upload(actor=actor, record=record, content=real_pdf("x"),
                                                   signed_on=date(2025, 1, 1)),
        lambda: services.organ_donation_state(actor=actor, record=record, statement="opposed"),
        lambda: services.blood_group_set(actor=actor, record=record, blood_group="O-"),
        lambda: services.personal_notes_set(actor=actor, record=record, notes="X"),
        lambda: services.vaccination_add(actor=actor, record=record, vaccine="X", on=date(2020, 1, 1)),
        lambda: services.self_declared_item_add(actor=actor, record=record, kind="allergy", label="X"),
    ]
    for call in calls:
        with pytest.raises(services.AccessRefused):
            call()
    assert not PersonalProfile.objects.exists() and not EmergencyContact.objects.exists()
    assert not Vaccination.objects.exists() and not SelfDeclaredItem.objects.exists()
    assert not Document.objects.filter(doc_type=DocumentType.ADVANCE_DIRECTIVES).exists()
    assert Record.objects.get(pk=record.pk).email == ""
    refused = AuditEntry.objects.filter(record_id_ref=record.pk, allowed=False,
                                        action__in=["edit_personal_data", "add_document"])
    assert refused.count() == len(calls)


@pytest.mark.django_db
def test_professionals_may_read_personal_data_and_the_read_is_logged(world):
    from dmp.selectors import personal_information_for

    PersonalProfile.objects.create(record=world.record, blood_group="B+")
    info = personal_information_for(Actor(world.dr_grant.user), world.record)
    assert info.profile.blood_group == "B+"
    assert AuditEntry.objects.filter(action="view_personal_data", actor=world.dr_grant.user, allowed=True).exists()


@pytest.mark.django_db
def test_the_contact_form_shows_where_the_login_code_goes_and_saving_it_unchanged_warns_nobody(
        alice, world, sms_outbox, django_capture_on_commit_callbacks):
    # Alice's account has a phone her record does not show yet: the form starts from the account's.
    form = alice.get(url("information_contact", world.record)).context["form"]
    assert form.initial["phone"] == "+33612345678"
    data = {k: v for k, v in form.initial.items() if v is not None}
    with django_capture_on_commit_callbacks(execute=True):
        assert alice.post(url("information_contact", world.record), data).status_code == 302
    assert User.objects.get(pk=world.alice.pk).phone == Record.objects.get(pk=world.record.pk).phone == "+33612345678"
    assert not sms_outbox


# --- in a real browser: a small phone screen, without JavaScript ------------------------------------


@pytest.mark.django_db(transaction=True)
def test_on_a_360px_screen_without_javascript_the_page_fits_and_rows_are_added_and_removed(
        live_server, browser, world, sms_outbox):
    import re

    context = browser.new_context(viewport={"width": 360, "height": 740}, java_script_enabled=False,
                                  locale="en-GB")
    page = context.new_page()
    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=login]", "alice_martin")
    page.fill("input[name=password]", "correct-horse-battery")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url("**/accounts/login/code/confirm/")
    page.fill("input[name=code]", re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(f"**/patient/records/{world.record.pk}/")

    for name in ("information", "information_advance_directives", "information_vaccinations"):
        page.goto(live_server.url + url(name, world.record))
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, name

    page.goto(live_server.url + url("information_vaccinations", world.record))
    page.fill("input[name=vaccine]", "Tetanus")
    page.fill("input[name=date]", "2020-04-01")
    page.locator("form.info-form button[type=submit]").click()
    page.wait_for_load_state()
    assert "Tetanus" in page.locator("ul.rows").inner_text()
    page.locator("ul.rows button[name=remove]").click()
    page.wait_for_load_state()
    assert not Vaccination.objects.exists()
    context.close()
