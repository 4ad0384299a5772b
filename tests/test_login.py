"""Logging in (DOMAIN.md §6), through the real allauth views: patients with a one-time code,
professionals, agents and administrators with a second factor; lockout; temporary passwords;
sessions.

Time is moved forward by shifting the clock allauth reads (`time.time`) in the module that
checks codes or counts failures, never by sleeping.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.sessions.backends.cached_db import SessionStore as CachedSessionStore
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dmp.accounts.middleware import RENEWAL_SECONDS, idle_timeout
from tests.personas import PASSWORD, TOTP_SECRET, make_professional, make_record, make_user, totp_code

LOGIN = "/accounts/login/"
CONFIRM_CODE = "/accounts/login/code/confirm/"
NEW_PASSWORD = "/accounts/login/new-password/"
MFA_AUTHENTICATE = "/accounts/2fa/authenticate/"


class ShiftedClock:
    """Stands in for the `time` module in one allauth module: the same clock, `seconds` later."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def time(self) -> float:
        return time.time() + self.seconds

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def password_step(client, username, password=PASSWORD, **extra):
    return client.post(LOGIN, {"login": username, "password": password}, **extra)


def last_code(sms_outbox) -> str:
    return re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- Patients: a code at every login -------------------------------------------------------


def test_a_patient_logs_in_with_password_then_the_code_sent_by_sms(client, world, sms_outbox):
    response = password_step(client, "alice_martin")
    assert response.status_code == 302 and response["Location"] == CONFIRM_CODE
    assert not logged_in(client), "the password alone opens nothing"
    assert [to for to, _ in sms_outbox] == ["+33612345678"]

    response = client.post(CONFIRM_CODE, {"code": last_code(sms_outbox)})
    assert response.status_code == 302
    assert logged_in(client)
    assert client.get(reverse("portal_patient:home"), follow=True).status_code == 200


def test_a_patient_without_phone_gets_the_code_by_email(client, world, mailoutbox, sms_outbox):
    password_step(client, "marie_parent")
    assert sms_outbox == []
    assert [m.to for m in mailoutbox] == [["marie.parent@example.org"]]
    code = re.search(r"\b(\d{6})\b", mailoutbox[0].body).group(1)
    client.post(CONFIRM_CODE, {"code": code})
    assert logged_in(client)


def test_the_sms_is_in_the_patients_language(client, world, sms_outbox):
    world.alice.preferred_language = "fr"
    world.alice.save()
    password_step(client, "alice_martin")
    assert "code de connexion" in sms_outbox[-1][1]


def test_a_used_code_cannot_be_replayed(client, world, sms_outbox):
    password_step(client, "alice_martin")
    code = last_code(sms_outbox)
    client.post(CONFIRM_CODE, {"code": code})
    assert logged_in(client)
    client.post(reverse("account_logout"))
    assert not logged_in(client)

    # The same code again, alone: there is no login waiting for it.
    response = client.post(CONFIRM_CODE, {"code": code})
    assert response.status_code == 302 and response["Location"] == LOGIN
    assert not logged_in(client)

    # Nor does it open the next login, which has a code of its own.
    password_step(client, "alice_martin")
    assert len(sms_outbox) == 2
    if last_code(sms_outbox) != code:  # one chance in a million that the new code is the same
        client.post(CONFIRM_CODE, {"code": code})
        assert not logged_in(client)


def test_an_expired_code_is_refused(client, world, sms_outbox, monkeypatch, settings):
    password_step(client, "alice_martin")
    code = last_code(sms_outbox)
    monkeypatch.setattr("allauth.account.internal.flows.code_verification.time",
                        ShiftedClock(settings.ACCOUNT_LOGIN_BY_CODE_TIMEOUT + 1))
    response = client.post(CONFIRM_CODE, {"code": code})
    assert response.status_code == 302 and response["Location"] == LOGIN
    assert not logged_in(client)


def test_a_code_just_inside_its_lifetime_is_accepted(client, world, sms_outbox, monkeypatch, settings):
    password_step(client, "alice_martin")
    monkeypatch.setattr("allauth.account.internal.flows.code_verification.time",
                        ShiftedClock(settings.ACCOUNT_LOGIN_BY_CODE_TIMEOUT - 5))
    client.post(CONFIRM_CODE, {"code": last_code(sms_outbox)})
    assert logged_in(client)


def test_codes_are_compared_in_constant_time(client, world, sms_outbox, monkeypatch):
    import secrets

    compared = []
    real = secrets.compare_digest
    monkeypatch.setattr(secrets, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    password_step(client, "alice_martin")
    client.post(CONFIRM_CODE, {"code": last_code(sms_outbox)})
    assert logged_in(client)
    assert (last_code(sms_outbox), last_code(sms_outbox)) in compared


def test_three_wrong_codes_void_the_code(client, world, sms_outbox):
    password_step(client, "alice_martin")
    code = last_code(sms_outbox)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(3):
        response = client.post(CONFIRM_CODE, {"code": wrong})
    assert response["Location"] == LOGIN
    client.post(CONFIRM_CODE, {"code": code})
    assert not logged_in(client)


def test_a_patient_with_neither_phone_nor_email_is_told_where_to_get_help(client, world, sms_outbox, mailoutbox):
    asylum = make_user("amir_karimi")
    make_record(asylum, family_name="Karimi", given_names="Amir")

    response = password_step(client, "amir_karimi", follow=True)
    assert response.redirect_chain[-1][0] == reverse("account_no_code_destination")
    assert not logged_in(client)
    assert sms_outbox == [] and mailoutbox == []
    page = response.content.decode()
    assert "counter" in page.lower() or "guichet" in page.lower()
    assert "médecin traitant" in page

    # Nothing is pending: the code page is not reachable either.
    assert client.get(CONFIRM_CODE)["Location"] == LOGIN


def test_the_record_of_a_patient_who_cannot_log_in_still_works_for_professionals(client, world):
    from dmp.models import TreatingDoctor

    asylum = make_user("amir_karimi")
    record = make_record(asylum, family_name="Karimi", given_names="Amir")
    TreatingDoctor.objects.create(record=record, professional=world.dr_house)
    client.force_login(world.dr_house.user)
    assert client.get(reverse("portal_pro:record", args=[record.pk])).status_code == 200


# --- Temporary passwords -------------------------------------------------------------------


@pytest.fixture
def newcomer(world):
    """Alice just got her record: her sheet holds a temporary password."""
    world.alice.set_password("tmp-4Kx7-Qa3P-9dRm")
    world.alice.must_change_password = True
    world.alice.save()
    return world.alice


def test_first_login_replaces_the_temporary_password_before_the_code(client, newcomer, sms_outbox):
    response = password_step(client, "alice_martin", "tmp-4Kx7-Qa3P-9dRm")
    assert response["Location"] == NEW_PASSWORD
    assert sms_outbox == [], "the code comes after the new password"
    assert not logged_in(client)

    # The temporary password itself is refused as the new one.
    response = client.post(NEW_PASSWORD, {"new_password1": "tmp-4Kx7-Qa3P-9dRm",
                                          "new_password2": "tmp-4Kx7-Qa3P-9dRm"})
    assert response.status_code == 200 and "temporary" in response.content.decode()
    # So is a weak one.
    response = client.post(NEW_PASSWORD, {"new_password1": "12345678", "new_password2": "12345678"})
    assert response.status_code == 200

    response = client.post(NEW_PASSWORD, {"new_password1": "my own long phrase", "new_password2": "my own long phrase"})
    assert response["Location"] == CONFIRM_CODE
    newcomer.refresh_from_db()
    assert newcomer.check_password("tmp-4Kx7-Qa3P-9dRm"), "nothing is written before the code"

    client.post(CONFIRM_CODE, {"code": last_code(sms_outbox)})
    assert logged_in(client)
    newcomer.refresh_from_db()
    assert newcomer.check_password("my own long phrase")
    assert not newcomer.must_change_password
    assert client.get(reverse("portal_patient:home")).status_code in (200, 302)
    assert client.get(reverse("portal_patient:home"), follow=True).redirect_chain[-1][0].startswith("/patient/")


def test_a_temporary_password_with_a_wrong_code_changes_nothing(client, newcomer, sms_outbox):
    password_step(client, "alice_martin", "tmp-4Kx7-Qa3P-9dRm")
    client.post(NEW_PASSWORD, {"new_password1": "thief's new password", "new_password2": "thief's new password"})
    for _ in range(3):
        client.post(CONFIRM_CODE, {"code": "000000" if last_code(sms_outbox) != "000000" else "111111"})
    newcomer.refresh_from_db()
    assert newcomer.check_password("tmp-4Kx7-Qa3P-9dRm") and newcomer.must_change_password


def test_the_new_password_page_needs_a_pending_login(client, world):
    assert client.get(NEW_PASSWORD)["Location"] == LOGIN


def _gated_urls(world) -> list[str]:
    return [
        reverse("home"),
        reverse("portal_patient:home"),
        reverse("portal_patient:record", args=[world.record.pk]),
        reverse("portal_patient:document_file", args=[world.docs["own"].pk]),
        reverse("portal_pro:home"),
        reverse("social_workers:home"),
        reverse("admin:index"),
        reverse("mfa_index"),
    ]


def test_a_patient_with_a_temporary_password_reaches_nothing_but_the_change_password_page(client, newcomer, world):
    # However the session was opened, the gate holds.
    client.force_login(newcomer)
    change = reverse("account_change_password")
    for url in _gated_urls(world):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == change, url
    assert client.get("/api/v1/me/").status_code == 403
    assert client.get(change).status_code == 200

    response = client.post(change, {"oldpassword": "tmp-4Kx7-Qa3P-9dRm", "password1": "my own long phrase",
                                    "password2": "my own long phrase"})
    assert response.status_code == 302
    newcomer.refresh_from_db()
    assert not newcomer.must_change_password
    assert client.get(reverse("portal_patient:record", args=[world.record.pk])).status_code == 200


# --- Second factor -------------------------------------------------------------------------


def test_a_professional_logs_in_with_password_then_authenticator_code(client, world):
    response = password_step(client, world.dr_house.user.username)
    assert response["Location"] == MFA_AUTHENTICATE
    assert not logged_in(client)
    client.post(MFA_AUTHENTICATE, {"code": "000000" if totp_code() != "000000" else "111111"})
    assert not logged_in(client)
    client.post(MFA_AUTHENTICATE, {"code": totp_code()})
    assert logged_in(client)
    assert client.get(reverse("portal_pro:home")).status_code == 200


def test_professionals_get_no_sms_code(client, world, sms_outbox):
    world.dr_house.user.phone = "+33699999999"
    world.dr_house.user.save()
    password_step(client, world.dr_house.user.username)
    assert sms_outbox == []


@pytest.mark.parametrize("role", ["professional", "counter_agent", "administrator"])
def test_without_a_second_factor_nothing_but_its_enrolment_is_reachable(client, world, role):
    user = {
        "professional": lambda: make_professional("nina_new", second_factor=False).user,
        "counter_agent": lambda: _agent_without_second_factor(world),
        "administrator": lambda: make_user("alan_admin", is_staff=True, is_superuser=True),
    }[role]()
    client.force_login(user)
    activate = reverse("mfa_activate_totp")
    enrolment_pages = {reverse("mfa_index")}
    for url in [*_gated_urls(world), reverse("portal_pro:record", args=[world.record.pk])]:
        if url in enrolment_pages:
            continue
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == activate, url
    api = client.get("/api/v1/me/")
    assert api.status_code == 403


def _agent_without_second_factor(world):
    from dmp.models import CounterAgent

    return CounterAgent.objects.create(user=make_user("carl_counter"), organisation=world.agent.organisation).user


def test_a_professional_enrols_an_authenticator_and_gets_recovery_codes(client, world):
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    pro = make_professional("nina_new", second_factor=False)
    client.force_login(pro.user)
    # allauth asks for the password again before a second factor is set up.
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = page.context["form"].secret
    code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
    response = client.post(reverse("mfa_activate_totp"), {"code": code})
    assert response.status_code == 302
    assert Authenticator.objects.filter(user=pro.user, type=Authenticator.Type.TOTP).exists()
    assert Authenticator.objects.filter(user=pro.user, type=Authenticator.Type.RECOVERY_CODES).exists()
    assert client.get(reverse("portal_pro:home")).status_code == 200


def test_a_new_professional_logs_in_and_lands_on_the_enrolment_page(client, world):
    pro = make_professional("nina_new", second_factor=False)
    response = password_step(client, pro.user.username, follow=True)
    assert logged_in(client)
    # Straight to the set-up page: the login itself counts as the recent authentication
    # allauth asks for before a second factor is added.
    assert response.redirect_chain[-1][0] == reverse("mfa_activate_totp")
    assert response.status_code == 200 and "form" in response.context


def test_a_professional_cannot_switch_the_second_factor_off(client, world):
    client.force_login(world.dr_house.user)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    client.post(reverse("mfa_deactivate_totp"))
    assert Authenticator.objects.filter(user=world.dr_house.user, type=Authenticator.Type.TOTP).exists()


def test_authenticator_secrets_are_encrypted_at_rest(world):
    stored = Authenticator.objects.get(user=world.dr_house.user, type=Authenticator.Type.TOTP).data["secret"]
    assert TOTP_SECRET not in stored


# --- Lockout: tests/test_lockout.py ----------------------------------------------------


# --- Sessions ------------------------------------------------------------------------------


def test_clinical_sessions_idle_out_sooner_than_patient_sessions(client, world, settings):
    assert settings.CLINICAL_SESSION_IDLE_SECONDS < settings.SESSION_COOKIE_AGE
    client.force_login(world.dr_house.user)
    client.get(reverse("portal_pro:home"))
    assert client.session.get_expiry_age() == settings.CLINICAL_SESSION_IDLE_SECONDS
    assert idle_timeout(world.alice) == settings.SESSION_COOKIE_AGE


def _stored_end(client):
    return Session.objects.get(session_key=client.session.session_key).expire_date


def _renewed_seconds_ago(client, seconds):
    session = client.session
    session["dmp_idle_renewed_at"] -= seconds
    session.save()


def test_requests_renew_the_idle_timeout_once_a_minute_and_an_idle_session_ends(client, world, settings):
    client.force_login(world.dr_house.user)
    client.get(reverse("portal_pro:home"))
    # Renewed a minute ago: the next request pushes the end a whole idle timeout away.
    _renewed_seconds_ago(client, RENEWAL_SECONDS)
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() + timedelta(seconds=30))
    client.get(reverse("portal_pro:home"))
    renewed = _stored_end(client)
    assert renewed > timezone.now() + timedelta(seconds=settings.CLINICAL_SESSION_IDLE_SECONDS - 60)

    # Within the minute the session is not written again: it ends at most a minute sooner.
    client.get(reverse("portal_pro:home"))
    assert _stored_end(client) == renewed

    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1))
    # Time passing also ends the session's copy in the cache (set for its expiry age): gone too.
    cache.delete(f"{CachedSessionStore.cache_key_prefix}{client.session.session_key}")
    response = client.get(reverse("portal_pro:home"))
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


@pytest.mark.parametrize("persona", ["alice", "dr_house"])
def test_the_login_writes_the_idle_timeout_and_the_second_factor_with_the_session(client, world, persona):
    """The first page after a login has nothing to write to the session: its idle timeout and,
    for a professional, that the second factor is set up, were written with it at the login."""
    user = getattr(world, persona)
    user = getattr(user, "user", user)
    client.force_login(user)  # through login() and its signals
    home = reverse("portal_pro:home" if persona == "dr_house" else "portal_patient:home")
    with CaptureQueriesContext(connection) as queries:
        assert client.get(home).status_code in (200, 302)
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert 'UPDATE "django_session"' not in sql and "mfa_authenticator" not in sql
    stored = SessionStore(client.session.session_key).load()
    assert stored["_session_expiry"] == idle_timeout(user) and "dmp_idle_renewed_at" in stored
    assert (stored.get("dmp_second_factor_enrolled") == user.pk) == (persona == "dr_house")


def test_ending_an_accounts_sessions_ends_their_copies_in_the_cache_too(client, world):
    """Sessions are read from the cache first (cached_db): deleting their rows alone would leave
    them usable. `sessions_end` (a second factor reset by the operators) goes through the engine."""
    from dmp.services.administration import sessions_end

    client.force_login(world.alice)
    assert client.get(reverse("portal_patient:home"), follow=True).status_code == 200
    assert cache.get(f"{CachedSessionStore.cache_key_prefix}{client.session.session_key}") is not None
    assert sessions_end(world.alice) == 1
    response = client.get(reverse("portal_patient:home"))
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_a_session_ends_within_a_minute_of_its_idle_timeout(client, world, settings):
    client.force_login(world.dr_house.user)
    client.get(reverse("portal_pro:home"))
    end = _stored_end(client)
    assert end >= timezone.now() + timedelta(seconds=settings.CLINICAL_SESSION_IDLE_SECONDS - RENEWAL_SECONDS)
    assert end <= timezone.now() + timedelta(seconds=settings.CLINICAL_SESSION_IDLE_SECONDS)


def test_changing_the_password_ends_every_other_session(client, django_user_model, world):
    from django.test import Client

    other_device = Client()
    other_device.force_login(world.alice)
    client.force_login(world.alice)
    response = client.post(reverse("account_change_password"), {
        "oldpassword": PASSWORD, "password1": "a brand new phrase", "password2": "a brand new phrase"})
    assert response.status_code == 302
    assert client.get(reverse("portal_patient:record", args=[world.record.pk])).status_code == 200
    assert other_device.get(reverse("portal_patient:record", args=[world.record.pk])).status_code == 302


@pytest.fixture(scope="module")
def production_settings():
    """The production settings, evaluated once in a process of their own (the suite runs on the
    test settings): the values the tests below read."""
    from tests.fresh_starts import settings_in, settings_values
    from tests.test_deployment import _production_environment

    names = ["PASSWORD_HASHERS", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "CSRF_COOKIE_SECURE"]
    [result] = settings_in(names, _production_environment())
    return settings_values(result)


def test_passwords_are_hashed_with_argon2_outside_tests(production_settings):
    assert production_settings["PASSWORD_HASHERS"][0] == "django.contrib.auth.hashers.Argon2PasswordHasher"


def test_production_session_cookies_are_secure_and_http_only(production_settings):
    assert [production_settings[name] for name in ("SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
                                                   "CSRF_COOKIE_SECURE")] == [True, True, True]


# --- What is not offered -------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/accounts/password/reset/", "/accounts/email/", "/accounts/signup/"])
def test_self_service_recovery_and_signup_are_not_offered(client, db, url):
    assert client.get(url).status_code == 404


def test_the_admin_logs_in_through_the_same_pages(client, world):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    client.force_login(world.alice)
    assert client.get(reverse("admin:login")).status_code == 403
    assert client.get(reverse("admin:index")).status_code == 302


def test_the_login_page_says_where_to_get_help(client, db):
    page = client.get(LOGIN).content.decode()
    assert "CPAM" in page
    assert "password/reset" not in page


def test_the_header_offers_the_password_to_all_and_the_second_factor_to_staff(client, world):
    client.force_login(world.alice)
    page = client.get(reverse("portal_patient:record", args=[world.record.pk])).content.decode()
    assert reverse("account_change_password") in page and reverse("mfa_index") not in page
    client.force_login(world.dr_house.user)
    page = client.get(reverse("portal_pro:home")).content.decode()
    assert reverse("account_change_password") in page and reverse("mfa_index") in page


class _BrokenGateway:
    def send(self, *, to, text):
        from dmp.sms import SmsError

        raise SmsError("provider down")


def test_when_the_sms_cannot_be_sent_the_page_says_so_and_nothing_is_pending(client, world, settings):
    settings.SMS_BACKEND = "tests.test_login._BrokenGateway"
    response = password_step(client, "alice_martin", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == LOGIN
    assert "could not be sent" in response.content.decode()
    assert not logged_in(client)
    assert client.get(CONFIRM_CODE)["Location"] == LOGIN
