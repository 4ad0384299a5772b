"""Onboarding at a counter: the three questions (consent mandatory), identity with or without a
NIR, duplicates found before creation, and the credentials sheet printed once."""

from __future__ import annotations

import io
import logging
from html.parser import HTMLParser

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

from dmp.models import Consent, DepositRight, EmergencyContact, LegalRepresentative, Record, User
from dmp.models.record import nir_key
from social_workers.views.onboarding import SESSION_KEY
from tests.outbox import notifications_sent_at_once  # noqa: F401 - autouse: notices sent at commit
from tests.personas import make_record, make_user, user_of

START = reverse("social_workers:onboarding_start")
DONE = reverse("social_workers:onboarding_done")
PDF = reverse("social_workers:onboarding_credentials_pdf")
HANDED = reverse("social_workers:onboarding_handed")
NIR13 = "1930375056123"
NIR = NIR13 + f"{nir_key(NIR13):02d}"


def _form(**extra) -> dict:
    return {
        "consented": "yes", "break_glass_allowed": "yes", "samu_allowed": "no", "given_by": "person",
        "family_name": "Dubois", "given_names": "Léa", "birth_date": "1993-03-21", "sex": "F", "nir": "",
        "languages": ["fr", "ar"], "other_languages": "Wolof", "preferred_language": "fr",
        "email": "", "phone": "06 11 22 33 44",
        "emergency_contact_name": "Omar Dubois", "emergency_contact_relation": "brother",
        "emergency_contact_phone": "01 23 45 67 89",
    } | extra


def _agent_client(world) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(world.agent.user)
    return client


def _pdf_text(response) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)


@pytest.mark.django_db
def test_without_consent_nothing_is_created(world):
    records, users = Record.objects.count(), User.objects.count()
    response = _agent_client(world).post(START, _form(consented="no"))
    assert response.status_code == 200
    assert "informed consent" in response.content.decode()
    assert (Record.objects.count(), User.objects.count()) == (records, users)
    assert SESSION_KEY not in response.wsgi_request.session


@pytest.mark.django_db
@pytest.mark.parametrize(("question", "named"), [
    ("consented", "agree to the creation of their shared medical record"),
    ("break_glass_allowed", "open the record in an emergency"),
    ("samu_allowed", "May the SAMU"),
])
def test_an_unanswered_question_is_named_and_nothing_is_created_nor_lost(world, question, named):
    records, users = Record.objects.count(), User.objects.count()
    data = _form()
    del data[question]
    response = _agent_client(world).post(START, data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Answer this question: " in page and named in page
    assert response.context["form"].errors[question]
    assert (Record.objects.count(), User.objects.count()) == (records, users)
    # What was typed stays on the page, and the other answers stay ticked.
    assert 'value="Dubois"' in page and 'value="1993-03-21"' in page
    for other in {"consented", "break_glass_allowed", "samu_allowed"} - {question}:
        answer = data[other]
        assert f'value="{answer}" id="id_{other}_{0 if answer == "yes" else 1}" required checked' in page


@pytest.mark.django_db
def test_the_page_preselects_no_answer_and_no_sex(world):
    page = _agent_client(world).get(START).content.decode()
    assert "checked" not in page
    assert page.count('type="radio"') == 6
    for name in ("consented", "break_glass_allowed", "samu_allowed"):
        assert '<fieldset class="question' in page and f'id="question-{name}"' in page
        assert f'<label for="id_{name}_0">' in page and f'<label for="id_{name}_1">' in page
    sex = page[page.index('name="sex"'):page.index("</select>", page.index('name="sex"'))]
    assert '<option value="" selected>' in sex and sex.count("selected") == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("answers", "stored"), [
    ({"break_glass_allowed": "yes", "samu_allowed": "no"}, (True, False)),
    ({"break_glass_allowed": "no", "samu_allowed": "yes"}, (False, True)),
    ({"break_glass_allowed": "no", "samu_allowed": "no"}, (False, False)),
])
def test_the_answers_are_stored_as_given(world, answers, stored):
    response = _agent_client(world).post(START, _form(**answers))
    assert response.status_code == 302
    record = Record.objects.get(family_name="Dubois")
    assert (record.break_glass_allowed, record.samu_allowed) == stored
    assert record.consent.presented_and_consented


@pytest.mark.django_db
def test_a_sex_not_given_is_stored_as_unspecified(world):
    assert _agent_client(world).post(START, _form(sex="")).status_code == 302
    assert Record.objects.get(family_name="Dubois").sex == Record.Sex.OTHER


@pytest.mark.django_db
def test_a_nir_with_a_wrong_key_is_refused(world):
    bad = NIR13 + f"{(nir_key(NIR13) + 1) % 97:02d}"
    response = _agent_client(world).post(START, _form(nir=bad))
    assert response.status_code == 200 and "key does not match" in response.content.decode()
    assert not Record.objects.filter(family_name="Dubois").exists()


@pytest.mark.django_db
def test_onboarding_without_nir_creates_the_record_with_all_it_was_given(world, caplog):
    client = _agent_client(world)
    assert client.get(START).status_code == 200
    with caplog.at_level(logging.INFO, logger="dmp.security"):
        response = client.post(START, _form())
    assert response.status_code == 302 and response["Location"] == DONE
    record = Record.objects.get(family_name="Dubois")
    assert record.nir is None and record.identifier == record.provisional_id
    assert record.holder.username == record.provisional_id and record.holder.must_change_password
    assert record.languages == ["fr", "ar", "Wolof"] and record.preferred_language == "fr"
    assert record.phone == "+33611223344" and record.email == ""
    assert record.break_glass_allowed and not record.samu_allowed
    consent = Consent.objects.get(record=record)
    assert consent.presented_and_consented and consent.captured_by == world.agent.user
    assert consent.captured_at is not None and consent.channel == Consent.Channel.COUNTER
    contact = EmergencyContact.objects.get(record=record)
    assert (contact.name, contact.relation, contact.phone) == ("Omar Dubois", "brother", "+33123456789")
    # The duplicate check is one security line with ids only.
    lines = [r.getMessage() for r in caplog.records if r.name == "dmp.security"]
    assert any("onboarding duplicate check" in line for line in lines)
    assert not any("Dubois" in line or "1993" in line for line in lines)
    page = client.get(DONE)
    assert record.provisional_id in page.content.decode() and page["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_the_credentials_pdf_in_the_preferred_language_then_the_password_is_forgotten(world):
    client = _agent_client(world)
    client.post(START, _form(preferred_language="fr"))
    record = Record.objects.get(family_name="Dubois")
    session = client.session
    stored = session[SESSION_KEY]
    response = client.get(PDF)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Disposition"] == 'inline; filename="credentials.pdf"'
    text = _pdf_text(response)
    assert record.provisional_id in text
    password = next(line for line in text.splitlines() if line.count("-") == 2 and len(line.strip()) == 14).strip()
    assert record.holder.check_password(password)
    assert "Votre identifiant" in text and "Votre mot de passe provisoire" in text  # French, not English
    # Never in the database in clear: not in the account, not in the session rows, not in logs.
    assert password not in stored["password"]
    for row in Session.objects.all():
        assert password not in row.session_data and password not in str(row.get_decoded())
    assert not User.objects.filter(password__contains=password).exists()
    # The person has the sheet: the password is dropped, the sheet cannot be printed again.
    assert client.post(HANDED).status_code == 302
    assert SESSION_KEY not in client.session
    assert client.get(PDF).status_code == 404
    assert client.get(DONE).status_code == 404


@pytest.mark.django_db
def test_the_sheet_of_a_persian_speaker_is_right_to_left(world):
    client = _agent_client(world)
    client.post(START, _form(preferred_language="fa", languages=["fa", "ru"], other_languages=""))
    html = client.get(PDF)
    assert html.status_code == 200
    from django.template.loader import render_to_string
    from django.utils import translation
    with translation.override("fa"):
        rendered = render_to_string("social_workers/pdf/credentials.html", {"identifier": "x"})
    assert 'lang="fa" dir="rtl"' in rendered and '<meta charset="utf-8">' in rendered


@pytest.mark.django_db
def test_same_nir_is_refused_and_points_to_the_counter_reset(world):
    Record.objects.filter(pk=world.record.pk).update(nir=NIR)
    records = Record.objects.count()
    response = _agent_client(world).post(START, _form(nir=" ".join([NIR[:1], NIR[1:3], NIR[3:]])))
    page = response.content.decode()
    assert response.status_code == 200 and "already exists" in page and "counter reset" in page
    assert Record.objects.count() == records
    assert world.record.family_name not in page.replace("Dubois", "")  # nothing about the other record


@pytest.mark.django_db
def test_same_name_and_birth_date_needs_the_agent_to_confirm(world):
    record = world.record
    form = _form(family_name=record.family_name.upper(), given_names=record.given_names.lower(),
                 birth_date=record.birth_date.isoformat(), phone="")
    client = _agent_client(world)
    records = Record.objects.count()
    response = client.post(START, form)
    assert response.status_code == 200 and "same name and date of birth" in response.content.decode()
    assert 'name="different_person"' in response.content.decode()
    assert Record.objects.count() == records
    response = client.post(START, form | {"different_person": "on"})
    assert response.status_code == 302 and Record.objects.count() == records + 1


@pytest.mark.django_db
def test_accents_do_not_hide_a_duplicate(world):
    Record.objects.filter(pk=world.record.pk).update(family_name="Lefèvre", given_names="Élodie")
    response = _agent_client(world).post(START, _form(
        family_name="LEFEVRE", given_names="elodie", birth_date=world.record.birth_date.isoformat()))
    assert "same name and date of birth" in response.content.decode()


@pytest.mark.django_db
def test_with_a_valid_nir_the_login_is_the_nir(world):
    response = _agent_client(world).post(START, _form(nir=NIR))
    assert response.status_code == 302
    record = Record.objects.get(nir=NIR)
    assert record.holder.username == NIR


@pytest.mark.django_db
def test_a_minor_is_onboarded_by_the_legal_representative(world):
    client = _agent_client(world)
    minor = _form(birth_date="2015-06-01", emergency_contact_name="", emergency_contact_phone="")
    response = client.post(START, minor)
    assert response.status_code == 200 and not Record.objects.filter(family_name="Dubois").exists()
    assert "legal representative" in response.content.decode()
    response = client.post(START, minor | {"given_by": "representative", "representative_username": "mother_x"})
    assert "No active account" in response.content.decode()
    assert not Record.objects.filter(family_name="Dubois").exists()
    parent = user_of(world, "mother")
    response = client.post(START, minor | {"given_by": "representative", "representative_username": parent.username})
    assert response.status_code == 302
    record = Record.objects.get(family_name="Dubois")
    assert record.consent.given_by == Consent.GivenBy.REPRESENTATIVE
    assert LegalRepresentative.objects.filter(record=record, user=parent).exists()


@pytest.mark.django_db
def test_the_presentation_sheet_in_the_persons_language(world):
    client = _agent_client(world)
    page = client.get(reverse("social_workers:onboarding_presentation") + "?lang=en")
    assert page.status_code == 200 and "Free and optional" in page.content.decode()
    pdf = client.get(reverse("social_workers:onboarding_presentation_pdf") + "?lang=en")
    assert pdf.status_code == 200 and pdf["Cache-Control"] == "no-store"
    text = _pdf_text(pdf)
    assert "Who can see it" in text and "SAMU" in text
    assert client.get(reverse("social_workers:onboarding_presentation_pdf") + "?lang=xx").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["alice", "mother", "dr_house", "admin", "nobody"])
def test_only_counter_agents_reach_the_onboarding(client, world, persona):
    client.force_login(user_of(world, persona))
    records = Record.objects.count()
    for name in ("onboarding_start", "onboarding_presentation", "onboarding_presentation_pdf", "onboarding_done",
                 "onboarding_credentials_pdf"):
        assert client.get(reverse(f"social_workers:{name}")).status_code == 403, name
    assert client.post(START, _form()).status_code == 403
    assert client.post(HANDED).status_code == 403
    assert Record.objects.count() == records


class _Controls(HTMLParser):
    """The form controls inside <main> and the ids that a <label for> names."""

    def __init__(self):
        super().__init__()
        self.in_main, self.controls, self.labelled, self.template = False, [], set(), 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "main":
            self.in_main = True
        elif tag == "template":
            self.template += 1  # filled in by the page's script, which sets the ids
        elif self.in_main and not self.template and tag == "label" and attrs.get("for"):
            self.labelled.add(attrs["for"])
        elif self.in_main and not self.template and tag in {"input", "select", "textarea"} and attrs.get(
                "type") not in {"hidden", "submit", "button"}:
            self.controls.append((attrs.get("name"), attrs.get("id")))

    def handle_endtag(self, tag):
        if tag == "main":
            self.in_main = False
        elif tag == "template":
            self.template -= 1


@pytest.mark.django_db
def test_every_control_of_the_counter_pages_has_its_label(world):
    without_nir = make_record(make_user("karimi_no_nir"), family_name="Karimi", nir=None)
    DepositRight.objects.create(record=without_nir, agent=world.agent)
    client = _agent_client(world)
    urls = [reverse("social_workers:dashboard"), START,
            reverse("social_workers:credentials_reset"),
            reverse("social_workers:counter_deposit", args=[world.record.pk]),
            reverse("social_workers:counter_reprint", args=[world.record.pk])]
    pages = [client.get(url) for url in urls] + [client.post(START, {})]
    assert 'id="nir-' in pages[0].content.decode()  # the dashboard's inline NIR field is checked too
    for url, response in zip([*urls, START + " (refused)"], pages, strict=True):
        assert response.status_code == 200, url
        parser = _Controls()
        parser.feed(response.content.decode())
        assert parser.controls, url
        unlabelled = [name for name, id_ in parser.controls if not id_ or id_ not in parser.labelled]
        assert unlabelled == [], url


@pytest.mark.django_db
def test_a_refused_form_sums_up_what_to_correct_at_the_top(world):
    page = _agent_client(world).post(START, _form(consented="no", family_name="")).content.decode()
    summary = page[page.index('class="errorlist error-summary"'):page.index("</div>", page.index("error-summary"))]
    assert "Nothing was created" in summary and "informed consent" in summary
    assert "Family name: This field is required." in summary
