"""Account recovery at a counter: an agent checks the person's identity document and hands
over new credentials; the reset is logged and the person is notified."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest
from allauth.account.adapter import get_adapter
from allauth.core import ratelimit
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import formats, timezone, translation

from dmp.accounts.stages import code_failures_key
from dmp.models import AuditEntry, CounterAgent, CounterReset, DepositRight, Notification, PostalLetter, Record, User
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



def _english(user) -> None:
    """The person reads English (notices are in the account's language; French by default)."""
    User.objects.filter(pk=user.pk).update(preferred_language="en")


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
    _english(world.alice)
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


# --- Nobody takes an account over alone (issue 12) ---------------------------------------------
#
# patient.asile: onboarded by the CADA, no phone and no e-mail. guichet.cpam (world.other_agent,
# CPAM Roubaix) resets it and types their own phone: no working login alone.

ASILE_ID = "PASILE000001"
OWN_PHONE = "+33781000001"  # the hostile agent's own phone


@pytest.fixture
def asile(world):
    """A person the CADA onboarded, who has no phone and no e-mail."""
    from tests.personas import make_record, make_user

    user = make_user("amina_asile")
    record = make_record(user, family_name="Haddad", given_names="Amina", birth_date=date(1990, 1, 2),
                         provisional_id=ASILE_ID, created_by=world.agent.user,
                         postal_address="CADA Lille, 1 rue de la Paix, 59000 Lille")
    DepositRight.objects.create(record=record, agent=world.agent)
    return record


def _asile_form(**extra) -> dict:
    return {"identifier": ASILE_ID, "family_name": "Haddad", "birth_date": "1990-01-02",
            "identity_document": "asylum_certificate", "identity_document_number": "ADA-2026-00417",
            "identity_checked": "on"} | extra


def _agent(organisation, username: str) -> CounterAgent:
    from tests.personas import enrol_totp, make_user

    return CounterAgent.objects.create(user=enrol_totp(make_user(username)), organisation=organisation)


def _login(user) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def _approval_url(pending: str) -> str:
    return pending + "approve/"


@pytest.mark.django_db
def test_a_lone_agent_of_another_organisation_gets_no_working_login_for_a_person_without_phone(
        world, asile, sms_outbox, mailoutbox, django_capture_on_commit_callbacks):
    cpam = _login(world.other_agent.user)
    with django_capture_on_commit_callbacks(execute=True):
        pending = _pending_url(cpam.post(URL, _asile_form(new_phone="07 81 00 00 01")))
        page = cpam.get(pending).content.decode()
        # No password and no code yet: nothing reaches the agent's phone before a second agent approves.
        assert "credentials" not in cpam.get(pending).context
        assert not sms_outbox and not mailoutbox
        assert "second agent" in page
        # The agent cannot finish, type a made-up code, or approve their own request.
        assert cpam.post(pending, {"step": "finish"}).status_code == 400
        assert cpam.post(pending, {"step": "contact", "code": "123456"}).status_code == 400
        refused = cpam.post(_approval_url(pending), {"seen": "on"})
        assert refused.status_code == 403 and "you asked for this reset" in refused.content.decode()
    holder = User.objects.get(pk=asile.holder_id)
    assert holder.check_password(PASSWORD) and not holder.must_change_password
    assert (holder.phone, holder.email) == ("", "")
    assert not sms_outbox and not mailoutbox
    assert not AuditEntry.objects.filter(action="reset_credentials").exists()
    # The attempt and the refused self-approval are in the person's access history.
    history = access_history_for(Actor(holder), asile)
    assert [(e.action, e.allowed, e.rule) for e in history] == [
        ("approve_credentials_reset", False, "approver_is_requester"),
        ("request_credentials_reset", True, "counter_reset_person_present"),
    ]


@pytest.mark.django_db
def test_an_agent_of_another_organisation_cannot_approve(world, asile):
    cpam = _login(world.other_agent.user)
    pending = _pending_url(cpam.post(URL, _asile_form(new_phone=OWN_PHONE)))
    cada = _login(world.agent.user)
    assert cada.get(_approval_url(pending)).status_code == 404
    assert cada.post(_approval_url(pending), {"seen": "on"}).status_code == 404
    assert cada.get(pending).status_code == 404  # nor see or act on the request
    assert CounterReset.objects.get().approved_by is None
    # Nor is it offered on their home screen; it is on the CPAM colleague's.
    assert pending not in cada.get(reverse("social_workers:home")).content.decode()
    colleague = _agent(world.other_agent.organisation, "claire_cpam")
    assert _approval_url(pending) in _login(colleague.user).get(reverse("social_workers:home")).content.decode()


@pytest.mark.django_db
def test_the_approval_needs_the_second_agent_to_tick_that_they_saw_the_person(world, asile):
    cpam = _login(world.other_agent.user)
    pending = _pending_url(cpam.post(URL, _asile_form()))
    colleague = _login(_agent(world.other_agent.organisation, "claire_cpam").user)
    assert colleague.post(_approval_url(pending), {}).status_code == 400
    assert CounterReset.objects.get().approved_by is None


@pytest.mark.django_db
def test_two_agents_of_another_organisation_and_the_code_on_the_new_phone_then_a_letter(
        world, asile, sms_outbox, django_capture_on_commit_callbacks):
    """The honest busy counter: the person lost nothing but never had a phone; they bring one."""
    cpam = _login(world.other_agent.user)
    colleague = _agent(world.other_agent.organisation, "claire_cpam")
    with django_capture_on_commit_callbacks(execute=True):
        pending = _pending_url(cpam.post(URL, _asile_form(new_phone="07 81 00 00 01")))
        approval = _login(colleague.user).post(_approval_url(pending), {"seen": "on"})
        assert approval.status_code == 302
        # Only now does the new phone receive its code, which the person reads to the agent.
        assert [to for to, _ in sms_outbox] == [OWN_PHONE]
        sheet = cpam.post(pending, {"step": "contact", "code": _code_sent_to(sms_outbox, OWN_PHONE)})
    assert sheet.status_code == 200
    password = sheet.context["credentials"].temporary_password
    holder = User.objects.get(pk=asile.holder_id)
    assert holder.check_password(password) and holder.phone == OWN_PHONE
    # Audit: the request, the second agent's approval, the reset, the contact change.
    entries = {(e.action, e.actor_id) for e in AuditEntry.objects.filter(record_id_ref=asile.pk, allowed=True)}
    assert entries == {("request_credentials_reset", world.other_agent.user.pk),
                       ("approve_credentials_reset", colleague.user.pk),
                       ("reset_credentials", world.other_agent.user.pk),
                       ("change_login_contact", world.other_agent.user.pk)}
    # The person had no channel: a letter, printed by the CADA that onboarded them, not by the CPAM.
    [letter] = PostalLetter.objects.all()
    assert letter.organisation == world.agent.organisation and letter.record == asile
    assert letter.context["destination"] == "••••0001"
    cada = _login(world.agent.user)
    dashboard = cada.get(reverse("social_workers:dashboard")).content.decode()
    letter_url = reverse("social_workers:counter_letter", args=[letter.pk])
    assert letter_url in dashboard
    page = cada.get(letter_url).content.decode()
    assert "CPAM Roubaix" in page and "1 rue de la Paix" in page and "••••0001" in page
    assert password not in page
    assert _login(world.other_agent.user).get(letter_url).status_code == 404
    cada.post(letter_url)
    assert PostalLetter.objects.get().printed_at is not None
    assert letter_url not in cada.get(reverse("social_workers:dashboard")).content.decode()


@pytest.mark.django_db
def test_another_organisation_resets_once_the_person_reads_the_code_sent_to_their_phone(
        world, alice_nir, sms_outbox, django_capture_on_commit_callbacks):
    _english(world.alice)
    cpam = _login(world.other_agent.user)
    with django_capture_on_commit_callbacks(execute=True):
        pending = _pending_url(cpam.post(URL, _form()))
    [(to, text)] = sms_outbox
    assert to == "+33612345678" and "CPAM Roubaix is resetting your password" in text
    assert "If you are not, give it to nobody" in text
    assert "••••5678" in cpam.get(pending).content.decode()
    # A wrong code changes nothing.
    wrong = cpam.post(pending, {"step": "presence", "code": "000000" if text[-7:] != "000000" else "111111"})
    assert wrong.status_code == 400 and "not the right one" in wrong.content.decode()
    assert User.objects.get(pk=world.alice.pk).check_password(PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        sheet = cpam.post(pending, {"step": "presence", "code": _code_sent_to(sms_outbox, "+33612345678")})
    assert "credentials" in sheet.context
    assert User.objects.get(pk=world.alice.pk).check_password(sheet.context["credentials"].temporary_password)
    entry = AuditEntry.objects.get(action="reset_credentials", allowed=True)
    assert (entry.rule, entry.object_id) == ("counter_reset_person_present", "residence_permit:789")


@pytest.mark.django_db
def test_another_organisation_needs_a_second_agent_when_the_person_lost_their_phone(world, alice_nir, sms_outbox):
    cpam = _login(world.other_agent.user)
    pending = _pending_url(cpam.post(URL, _form(channel_lost="on")))
    assert not sms_outbox  # nothing sent to the lost phone
    assert cpam.post(pending, {"step": "finish"}).status_code == 400
    _login(_agent(world.other_agent.organisation, "claire_cpam").user).post(_approval_url(pending), {"seen": "on"})
    sheet = cpam.post(pending, {"step": "finish"})
    assert "credentials" in sheet.context


@pytest.mark.django_db
def test_the_onboarding_organisation_alone_cannot_give_a_first_phone_to_a_person_without_one(
        world, asile, sms_outbox):
    """The same organisation, a lone agent: the password, yes (the person still cannot log in
    without a channel), a phone of the agent's choosing, no."""
    cada = _login(world.agent.user)
    pending = _pending_url(cada.post(URL, _asile_form(new_phone=OWN_PHONE)))
    assert not sms_outbox
    assert cada.post(pending, {"step": "finish"}).status_code == 400
    assert cada.post(_approval_url(pending), {"seen": "on"}).status_code == 403
    assert User.objects.get(pk=asile.holder_id).phone == ""
    # Without a new phone, the onboarding organisation's agent resets at once, and a letter is queued.
    sheet = cada.post(URL, _asile_form())
    assert "credentials" in sheet.context
    assert "cannot log in alone" in sheet.content.decode() or "ne pouvez pas vous connecter seul" in \
        sheet.content.decode()
    assert PostalLetter.objects.filter(record=asile, organisation=world.agent.organisation).count() == 1
    # The reset done made the earlier request stale.
    assert CounterReset.objects.get(pk=int(pending.rstrip("/").rsplit("/", 1)[1])).state == "cancelled"


@pytest.mark.django_db
def test_the_same_organisation_changes_nothing_without_the_code_of_the_new_phone(
        world, alice_nir, sms_outbox, mailoutbox, django_capture_on_commit_callbacks):
    client = _agent_client(world)
    with django_capture_on_commit_callbacks(execute=True):
        pending = _pending_url(client.post(URL, _form(new_phone=OWN_PHONE)))
        for _attempt in range(4):
            assert client.post(pending, {"step": "contact", "code": "12345x"}).status_code == 400
    alice = User.objects.get(pk=world.alice.pk)
    assert alice.phone == "+33612345678" and alice.check_password(PASSWORD)
    assert [to for to, _ in sms_outbox] == [OWN_PHONE]  # the code only: no notice, nothing happened
    # The fifth wrong code cancels the request: even the right code is then refused.
    right = _code_sent_to(sms_outbox, OWN_PHONE)
    last = client.post(pending, {"step": "contact", "code": "000000" if right != "000000" else "111111"})
    assert "request is cancelled" in last.content.decode()
    assert client.post(pending, {"step": "contact", "code": right}).status_code == 400
    _nothing_changed_but_the_code(world)


def _nothing_changed_but_the_code(world) -> None:
    alice = User.objects.get(pk=world.alice.pk)
    assert alice.phone == "+33612345678" and alice.check_password(PASSWORD)
    assert not AuditEntry.objects.filter(action__in=["reset_credentials", "change_login_contact"]).exists()


@pytest.mark.django_db
def test_an_expired_request_changes_nothing_even_with_the_right_code(world, alice_nir, sms_outbox):
    client = _agent_client(world)
    pending = _pending_url(client.post(URL, _form(new_phone=OWN_PHONE)))
    CounterReset.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(pending, {"step": "contact", "code": _code_sent_to(sms_outbox, OWN_PHONE)})
    assert response.status_code == 400 and "expired" in response.content.decode()
    assert "expired" in client.get(pending).content.decode()
    _nothing_changed_but_the_code(world)
    # Nor can it be approved any more: it is no longer offered, and its details are no longer shown.
    colleague = _login(_agent(world.agent.organisation, "nadia_cada").user)
    CounterReset.objects.update(approval_required=True)
    assert pending not in colleague.get(reverse("social_workers:home")).content.decode()
    assert colleague.post(_approval_url(pending), {"seen": "on"}).status_code == 404
    assert CounterReset.objects.get().approved_by is None


@pytest.mark.django_db
def test_a_request_is_the_requesting_agents_only_and_can_be_cancelled(world, alice_nir, sms_outbox):
    client = _agent_client(world)
    pending = _pending_url(client.post(URL, _form(new_phone=OWN_PHONE)))
    colleague = _login(_agent(world.agent.organisation, "nadia_cada").user)
    assert colleague.get(pending).status_code == 404
    assert colleague.post(pending, {"step": "contact", "code": _code_sent_to(sms_outbox, OWN_PHONE)}).status_code \
        == 404
    assert client.post(pending, {"step": "cancel"}).status_code == 302
    assert CounterReset.objects.get().state == "cancelled"
    assert client.post(pending, {"step": "contact", "code": _code_sent_to(sms_outbox, OWN_PHONE)}).status_code \
        == 400
    _nothing_changed_but_the_code(world)


@pytest.mark.django_db
def test_every_former_channel_and_the_new_one_are_told(world, alice_nir, sms_outbox, mailoutbox,
                                                       django_capture_on_commit_callbacks):
    _english(world.alice)
    User.objects.filter(pk=world.alice.pk).update(email="alice@example.org")
    client = _agent_client(world)
    with django_capture_on_commit_callbacks(execute=True):
        pending = _pending_url(client.post(URL, _form(new_phone=OWN_PHONE)))
        client.post(pending, {"step": "contact", "code": _code_sent_to(sms_outbox, OWN_PHONE)})
    notices = set(Notification.objects.values_list("event", "destination"))
    assert notices == {(event, to) for event in ("credentials_reset", "contact_changed")
                       for to in ("alice@example.org", "+33612345678", OWN_PHONE)}
    former = [text for to, text in sms_outbox if to == "+33612345678"]
    assert any("Your login codes now go to ••••0001" in text for text in former)
    assert all(OWN_PHONE not in text for text in former)


@pytest.mark.django_db
def test_the_document_number_and_the_codes_are_never_stored_whole(world, alice_nir, sms_outbox, caplog):
    with caplog.at_level(logging.INFO, logger="dmp.security"):
        _agent_client(world).post(URL, _form(new_phone=OWN_PHONE, identity_document_number="X9Z-QWK-204"))
    reset = CounterReset.objects.get()
    code = _code_sent_to(sms_outbox, OWN_PHONE)
    assert (reset.identity_document, reset.identity_document_end) == ("residence_permit", "204")
    stored = " ".join(str(v) for v in CounterReset.objects.values().get().values())
    # Its middle part in letters no hash, date or id is made of: a digit triple would turn up in a
    # hex digest now and then.
    assert "X9ZQWK204" not in stored and "QWK" not in stored and code not in stored
    entry = AuditEntry.objects.get(action="request_credentials_reset")
    assert entry.object_id == "residence_permit:204"
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "QWK" not in logged and code not in logged and OWN_PHONE not in logged


@pytest.mark.django_db
def test_the_document_number_is_required(world, alice_nir, sms_outbox, mailoutbox):
    response = _agent_client(world).post(URL, _form(identity_document_number=""))
    assert response.status_code == 200 and "identity_document_number" in response.context["form"].errors
    response = _agent_client(world).post(URL, _form(identity_document_number="1-2"))
    assert "Type the number written on the identity document" in response.content.decode()
    _nothing_changed(world, sms_outbox, mailoutbox)


@pytest.mark.django_db
def test_the_reset_steps_are_in_the_patients_access_history_page(world, asile):
    cpam = _login(world.other_agent.user)
    pending = _pending_url(cpam.post(URL, _asile_form(new_phone=OWN_PHONE)))
    _login(_agent(world.other_agent.organisation, "claire_cpam").user).post(_approval_url(pending), {"seen": "on"})
    holder = User.objects.get(pk=asile.holder_id)
    page = _login(holder).get(reverse("portal_patient:history", args=[asile.pk]))
    text = page.content.decode()
    assert "Asked for new login credentials" in text and "Approved new login credentials" in text


@pytest.mark.django_db
def test_a_sheet_alone_does_not_log_in_a_person_without_phone_or_email(world, asile, client, sms_outbox,
                                                                      mailoutbox):
    """The password on a sheet (lost, stolen, or printed by an agent for themself) is not a
    login: the code has nowhere to go until a phone or e-mail was confirmed with two agents."""
    sheet = _login(world.agent.user).post(URL, _asile_form())
    password = sheet.context["credentials"].temporary_password
    response = client.post(reverse("account_login"), {"login": "amina_asile", "password": password})
    assert response.status_code == 302 and reverse("account_no_code_destination") in response["Location"]
    assert not client.get(reverse("portal_patient:home")).wsgi_request.user.is_authenticated
    assert not sms_outbox and not mailoutbox


APPROVALS = [
    # (who approves, the request's state, expected rule)
    ("colleague", None, "counter_reset_second_agent"),
    ("requester", None, "approver_is_requester"),
    ("other_organisation", None, "not_this_organisation"),
    ("dr_house", None, "counter_agent_only"),
    ("admin", None, "counter_agent_only"),
    ("colleague", "approved", "reset_not_pending"),
    ("colleague", "not_required", "reset_not_pending"),
    ("colleague", "expired", "reset_not_pending"),
    ("colleague", "done", "reset_not_pending"),
    ("colleague", "closed_record", "record_closed"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("who", "state", "rule"), APPROVALS, ids=[f"{w}-{s or 'pending'}" for w, s, _r in APPROVALS])
def test_the_policy_on_approving_a_counter_reset(world, asile, who, state, rule):
    from dmp.policy import Action, decide

    _login(world.other_agent.user).post(URL, _asile_form())
    reset = CounterReset.objects.get()
    colleague = _agent(world.other_agent.organisation, "claire_cpam")
    if state == "approved":
        CounterReset.objects.update(approved_by=_agent(world.other_agent.organisation, "cyril_cpam").user,
                                    approved_at=timezone.now())
    elif state == "not_required":
        CounterReset.objects.update(approval_required=False)
    elif state == "expired":
        CounterReset.objects.update(expires_at=timezone.now())
    elif state == "done":
        CounterReset.objects.update(state="done")
    elif state == "closed_record":
        Record.objects.filter(pk=asile.pk).update(state="closed", closed_at=timezone.now(), closure_reason="request")
    approver = {"colleague": colleague.user, "requester": world.other_agent.user,
                "other_organisation": world.agent.user, "dr_house": world.dr_house.user, "admin": world.admin}[who]
    decision = decide(Actor(approver), Action.APPROVE_CREDENTIALS_RESET, CounterReset.objects.get(pk=reset.pk))
    assert (decision.allowed, decision.rule) == (rule == "counter_reset_second_agent", rule)


class _GatewayDown:
    def send(self, *, to, text, idempotency_key=None):
        from dmp.sms import SmsError

        raise SmsError("provider unreachable")


@pytest.mark.django_db
def test_a_code_that_could_not_be_sent_is_said_and_sent_again(world, alice_nir, settings, sms_outbox):
    """The busy counter: the SMS provider is down for a moment; the agent sends the codes again."""
    settings.SMS_BACKEND = "tests.test_counter_reset._GatewayDown"
    client = _agent_client(world)
    response = client.post(URL, _form(new_phone=OWN_PHONE), follow=True)
    assert "could not be sent" in response.content.decode()
    assert User.objects.get(pk=world.alice.pk).phone == "+33612345678"
    settings.SMS_BACKEND = "dmp.sms.MemorySmsBackend"
    pending = response.redirect_chain[-1][0]
    client.post(pending, {"step": "send_again"})
    sheet = client.post(pending, {"step": "contact", "code": _code_sent_to(sms_outbox, OWN_PHONE)})
    assert "credentials" in sheet.context
    # The codes sent are counted: a request cannot flood a phone.
    assert CounterReset.objects.get().codes_sent == 2


@pytest.mark.django_db
def test_codes_sent_again_are_limited_and_only_the_last_one_works(world, alice_nir, sms_outbox):
    client = _agent_client(world)
    pending = _pending_url(client.post(URL, _form(new_phone=OWN_PHONE)))
    first = _code_sent_to(sms_outbox, OWN_PHONE)
    for _again in range(5):
        assert client.post(pending, {"step": "send_again"}).status_code == 302
    refused = client.post(pending, {"step": "send_again"})
    assert refused.status_code == 400 and "Too many codes" in refused.content.decode()
    assert len(sms_outbox) == 6
    last = _code_sent_to(sms_outbox, OWN_PHONE)
    if first != last:
        assert client.post(pending, {"step": "contact", "code": first}).status_code == 400
    assert "credentials" in client.post(pending, {"step": "contact", "code": last}).context
