"""Account recovery at a counter: an agent checks the person's identity document and hands
over new credentials; the reset is logged and the person is notified."""

from __future__ import annotations

import logging

import pytest
from allauth.account.adapter import get_adapter
from allauth.core import ratelimit
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import formats, timezone, translation

from dmp.accounts.stages import code_failures_key
from dmp.models import AuditEntry, Record, User
from dmp.notifications import notify
from dmp.policy import Actor
from dmp.selectors import access_history_for
from dmp.services import AccessRefused, account_credentials_reset
from tests.outbox import notifications_sent_at_once  # noqa: F401 - autouse: notices sent at commit
from tests.personas import PASSWORD, user_of

URL = reverse("social_workers:credentials_reset")
ALICE_NIR = "255081416802538"
GENERIC = "These details do not match any open record."


@pytest.fixture
def alice_nir(world):
    Record.objects.filter(pk=world.record.pk).update(nir=ALICE_NIR)
    return ALICE_NIR


def _form(**extra) -> dict:
    """What the agent types for Alice, read from her residence permit."""
    return {"identifier": "2 55 08 14 168 025 38", "family_name": "MARTIN", "birth_date": "1970-05-17",
            "identity_document": "residence_permit", "identity_document_number": "FR 123 456 789",
            "identity_checked": "on"} | extra


def _agent_client(world) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(world.agent.user)
    return client


def _today(language: str) -> str:
    with translation.override(language):
        return formats.date_format(timezone.localtime(), "DATE_FORMAT")


def _nothing_changed(world, sms_outbox, mailoutbox) -> None:
    alice = User.objects.get(pk=world.alice.pk)
    assert alice.check_password(PASSWORD) and not alice.must_change_password
    assert not sms_outbox and not mailoutbox
    assert not AuditEntry.objects.filter(action="reset_credentials", allowed=True).exists()


@pytest.mark.django_db
def test_counter_reset_gives_a_working_temporary_password_and_ends_open_sessions(
        world, alice_nir, django_capture_on_commit_callbacks):
    alice_browser = Client()
    alice_browser.force_login(world.alice)
    assert alice_browser.get(reverse("portal_patient:home")).status_code == 302  # to her record

    with django_capture_on_commit_callbacks(execute=True):
        response = _agent_client(world).post(URL, _form())

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    credentials = response.context["credentials"]
    page = response.content.decode()
    assert credentials.username == "alice_martin" and credentials.username in page
    assert credentials.temporary_password in page
    assert authenticate(username="alice_martin", password=credentials.temporary_password) == world.alice
    assert authenticate(username="alice_martin", password=PASSWORD) is None
    assert User.objects.get(pk=world.alice.pk).must_change_password
    # Alice's browser, logged in before the reset, is logged out on its next request.
    after = alice_browser.get(reverse("portal_patient:home"))
    assert not after.wsgi_request.user.is_authenticated
    assert reverse("account_login") in after["Location"]


@pytest.mark.django_db
def test_the_sheet_is_printed_in_the_persons_language(world, alice_nir):
    Record.objects.filter(pk=world.record.pk).update(preferred_language="fr")
    page = _agent_client(world).post(URL, _form(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    sheet = page[page.index('<section class="sheet"'):]
    assert 'lang="fr"' in sheet and "Dossier Médical Partagé" in sheet
    assert _today("fr") in sheet
    assert 'lang="en"' in page[:page.index("<body")]  # the agent's own page stays in their language


@pytest.mark.django_db
def test_the_reset_is_in_the_records_access_history(world, alice_nir):
    _agent_client(world).post(URL, _form(), REMOTE_ADDR="192.0.2.44")
    entry = AuditEntry.objects.get(record_id_ref=world.record.pk, action="reset_credentials")
    assert (entry.allowed, entry.mode, entry.rule, entry.actor_id, entry.role, entry.ip) == (
        True, "counter", "counter_reset_onboarding_organisation", world.agent.user.pk, "counter_agent", "192.0.2.44")
    # The identity document's kind and the last 3 characters of its number, never the number.
    assert entry.object_id == "residence_permit:789"
    assert entry in access_history_for(Actor(world.alice), world.record)


@pytest.mark.django_db
def test_the_reset_writes_one_security_log_line_with_ids_only(world, alice_nir, caplog):
    with caplog.at_level(logging.INFO, logger="dmp.security"):
        response = _agent_client(world).post(URL, _form())
    password = response.context["credentials"].temporary_password
    lines = [r.getMessage() for r in caplog.records if r.name == "dmp.security" and "reset" in r.getMessage()]
    assert len(lines) == 1
    line = lines[0]
    assert f"agent_user={world.agent.user.pk}" in line and f"record={world.record.pk}" in line
    assert f"organisation={world.agent.organisation.pk}" in line
    for secret_or_identity in (password, "Martin", "MARTIN", "Alice", ALICE_NIR, "alice_martin", "1970"):
        assert secret_or_identity not in line


@pytest.mark.django_db
def test_the_person_gets_an_sms_in_their_language_after_the_commit(
        world, alice_nir, sms_outbox, mailoutbox, django_capture_on_commit_callbacks):
    User.objects.filter(pk=world.alice.pk).update(preferred_language="fr")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _agent_client(world).post(URL, _form(), HTTP_ACCEPT_LANGUAGE="en")
    assert not sms_outbox  # nothing leaves before the transaction commits
    for callback in callbacks:
        callback()
    [(to, text)] = sms_outbox
    assert to == "+33612345678"
    assert "CADA Lille" in text and _today("fr") in text
    assert response.context["credentials"].temporary_password not in text
    assert not mailoutbox  # Alice gave no e-mail address


@pytest.mark.django_db
def test_a_person_with_an_email_gets_an_email_in_their_language(
        world, sms_outbox, mailoutbox, django_capture_on_commit_callbacks):
    User.objects.filter(pk=world.leo.pk).update(preferred_language="en")
    # The CADA onboarded Léo too: its agent resets at once (another counter would first send him a code).
    Record.objects.filter(pk=world.leo_record.pk).update(created_by=world.agent.user)
    leo_record = world.leo_record
    typed = _form(identifier=leo_record.provisional_id.lower(), family_name="Martin", birth_date="2011-03-02",
                  identity_document="passport")
    with django_capture_on_commit_callbacks(execute=True):
        response = _agent_client(world).post(URL, typed, HTTP_ACCEPT_LANGUAGE="fr")
    assert response.context["credentials"].username == "leo_martin"
    [mail] = mailoutbox
    assert mail.to == ["leo.martin@example.org"]
    assert "Shared medical record" in mail.subject and "password was reset" in mail.subject
    assert "CADA Lille" in mail.body and _today("en") in mail.body
    html = mail.alternatives[0][0]
    assert 'lang="en"' in html and "CADA Lille" in html
    assert response.context["credentials"].temporary_password not in mail.body + html
    assert not sms_outbox  # Léo gave no phone


@pytest.mark.django_db
def test_an_account_without_email_or_phone_is_not_notified(world, sms_outbox, mailoutbox,
                                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        notify(world.nobody, "credentials_reset", organisation="CADA Lille", when=timezone.now())
    assert not callbacks and not sms_outbox and not mailoutbox


def _close(world):
    Record.objects.filter(pk=world.record.pk).update(state="closed", closed_at=timezone.now(),
                                                     closure_reason="request")


REFUSALS = {
    "wrong_birth_date": ({"birth_date": "1970-05-18"}, None),
    "wrong_family_name": ({"family_name": "Martine"}, None),
    "unknown_nir": ({"identifier": "255081416802539"}, None),
    "unknown_provisional_id": ({"identifier": "PAAAAAAAAAAA"}, None),
    "closed_record": ({}, _close),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", REFUSALS)
def test_a_mismatch_gives_one_generic_message_and_changes_nothing(
        world, alice_nir, case, sms_outbox, mailoutbox, django_capture_on_commit_callbacks):
    typed, prepare = REFUSALS[case]
    if prepare:
        prepare(world)
    with django_capture_on_commit_callbacks(execute=True):
        response = _agent_client(world).post(URL, _form(**typed))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert "credentials" not in response.context
    [error] = response.context["form"].non_field_errors()
    assert error.startswith(GENERIC)
    page = response.content.decode()
    # What was typed stays in the form, to be corrected.
    assert f'value="{typed.get("family_name", "MARTIN")}"' in page
    assert f'value="{typed.get("birth_date", "1970-05-17")}"' in page
    _nothing_changed(world, sms_outbox, mailoutbox)


@pytest.mark.django_db
def test_accents_and_case_of_the_family_name_do_not_matter(world, alice_nir):
    Record.objects.filter(pk=world.record.pk).update(family_name="N'Diaye-Fall")
    response = _agent_client(world).post(URL, _form(family_name="N’DIAYE FALL"))
    assert "credentials" in response.context
    Record.objects.filter(pk=world.record.pk).update(family_name="Martín")
    assert "credentials" in _agent_client(world).post(URL, _form(family_name="martin")).context


@pytest.mark.django_db
def test_the_identity_box_must_be_ticked(world, alice_nir, sms_outbox, mailoutbox):
    response = _agent_client(world).post(URL, _form(identity_checked=""))
    assert response.status_code == 200
    assert "identity_checked" in response.context["form"].errors
    _nothing_changed(world, sms_outbox, mailoutbox)


@pytest.mark.django_db
def test_a_reset_lifts_the_login_lockout(world, alice_nir):
    request = RequestFactory().post("/accounts/login/")
    adapter = get_adapter(request)
    code_key = code_failures_key(world.alice)
    with pytest.raises(ValidationError):  # wrong passwords until the account is locked out
        for _attempt in range(100):
            adapter.pre_authenticate(request, username="alice_martin", password="wrong")
    while ratelimit.consume(request, action="login_failed", key=code_key):  # and wrong codes
        pass

    _agent_client(world).post(URL, _form())

    adapter.pre_authenticate(request, username="alice_martin", password="new")  # no longer raises
    assert ratelimit.consume(request, action="login_failed", key=code_key, dry_run=True)


@pytest.mark.django_db
def test_counter_home_links_to_the_reset_page(world):
    client = _agent_client(world)
    assert URL in client.get(reverse("social_workers:home")).content.decode()
    page = client.get(URL)
    assert page.status_code == 200 and "I checked the person&#x27;s identity document" in page.content.decode()
    assert page["Cache-Control"] == "no-store"


@pytest.mark.django_db
@pytest.mark.parametrize("persona", [None, "alice", "mother", "dr_house", "admin", "nobody"])
def test_only_counter_agents_reach_the_reset_page(client, world, alice_nir, persona, sms_outbox, mailoutbox,
                                                  django_capture_on_commit_callbacks):
    if persona:
        client.force_login(user_of(world, persona))
    expected = 302 if persona is None else 403
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(URL).status_code == expected
        response = client.post(URL, _form())
    assert response.status_code == expected
    if persona is None:
        assert reverse("account_login") in response["Location"]
    _nothing_changed(world, sms_outbox, mailoutbox)


@pytest.mark.django_db
def test_the_service_refuses_anyone_but_a_counter_agent_and_logs_it(world, alice_nir):
    from datetime import date

    with pytest.raises(AccessRefused):
        account_credentials_reset(actor=Actor(world.dr_house.user), identifier=ALICE_NIR, family_name="Martin",
                                  birth_date=date(1970, 5, 17), identity_document="passport",
                                  identity_document_number="12AB34567")
    entry = AuditEntry.objects.get(action="reset_credentials")
    assert (entry.allowed, entry.rule, entry.record_id_ref) == (False, "counter_agent_only", world.record.pk)
    assert world.alice.check_password(PASSWORD)



def _code_sent_to(outbox, destination: str) -> str:
    """The last code a counter reset sent to this phone (SMS outbox) or address (mailoutbox)."""
    import re

    for message in reversed(outbox):
        to, text = (message.to[0], message.body) if hasattr(message, "to") else message
        if to == destination and (found := re.search(r"\b(\d{6})\b", text)):
            return found.group(1)
    raise AssertionError(f"no code sent to {destination}")


def _pending_url(response) -> str:
    assert response.status_code == 302, response.status_code
    assert "/credentials/reset/" in response["Location"]
    return response["Location"]


@pytest.mark.django_db(transaction=True)
def test_a_lost_phone_is_replaced_once_its_code_is_read_back_and_both_numbers_are_told(world, alice_nir,
                                                                                       sms_outbox):
    client = _agent_client(world)
    pending = _pending_url(client.post(URL, _form(new_phone="07 98 76 54 32")))
    # Nothing changed yet: the new number only received a code.
    alice = User.objects.get(pk=world.alice.pk)
    assert alice.phone == "+33612345678" and alice.check_password(PASSWORD)
    assert [to for to, _ in sms_outbox] == ["+33798765432"]
    page = client.get(pending).content.decode()
    assert "••••5432" in page and "+33798765432" not in page
    response = client.post(pending, {"step": "contact", "code": _code_sent_to(sms_outbox, "+33798765432")})
    assert response.status_code == 200
    page = response.content.decode()
    assert "••••5432" in page and "+33798765432" not in page  # the sheet says where the code goes, masked
    alice = User.objects.get(pk=world.alice.pk)
    assert alice.phone == "+33798765432"
    assert Record.objects.get(pk=world.record.pk).phone == "+33798765432"
    told = sorted(to for to, text in sms_outbox if "read this code" not in text)
    assert told == ["+33612345678", "+33612345678", "+33798765432", "+33798765432"]  # reset + contact, both
    entry = AuditEntry.objects.get(action="reset_credentials", allowed=True)
    assert entry.object_id == "residence_permit:789"
    assert AuditEntry.objects.get(action="change_login_contact", allowed=True).object_id == "phone"


@pytest.mark.django_db(transaction=True)
def test_the_next_login_code_goes_to_the_new_phone(world, alice_nir, sms_outbox, client):
    agent = _agent_client(world)
    pending = _pending_url(agent.post(URL, _form(new_phone="+44 7700 900123")))
    sheet = agent.post(pending, {"step": "contact", "code": _code_sent_to(sms_outbox, "+447700900123")})
    password = sheet.context["credentials"].temporary_password
    sms_outbox.clear()
    client.post(reverse("account_login"), {"login": "alice_martin", "password": password})
    client.post("/accounts/login/new-password/", {"new_password1": "a phrase of my own",
                                                  "new_password2": "a phrase of my own"})
    assert [to for to, _ in sms_outbox] == ["+447700900123"]


@pytest.mark.django_db
@pytest.mark.parametrize("field, value", [("new_phone", "12"), ("new_phone", "06 12"), ("new_email", "not-an-email")])
def test_a_malformed_new_contact_is_refused_and_nothing_changes(world, alice_nir, sms_outbox, mailoutbox, field,
                                                                value):
    response = _agent_client(world).post(URL, _form(**{field: value}))
    assert response.status_code == 200 and "credentials" not in response.context
    assert response.context["form"].errors
    _nothing_changed(world, sms_outbox, mailoutbox)
    assert User.objects.get(pk=world.alice.pk).phone == "+33612345678"


@pytest.mark.django_db
def test_the_sheet_says_when_the_person_cannot_log_in_alone(world, alice_nir):
    User.objects.filter(pk=world.alice.pk).update(phone="", email="")
    page = _agent_client(world).post(URL, _form()).content.decode()
    assert "vous ne pouvez pas vous connecter seul" in page  # the sheet is in Alice's language
