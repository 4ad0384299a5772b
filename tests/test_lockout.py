"""A lockout that cannot be aimed (docs/security.md): wrong passwords slow down whoever types
them from where they type them, through the real allauth views with REMOTE_ADDR set; the
ceiling per account is out of reach from one address; people behind one address do not lock
each other out; re-authentication and password changes count too.

Time stands still and moves by shifting the clocks the limiters read (`time` in
dmp.accounts.lockout for the progressive delays, stopped; in allauth's ratelimit module for the
ceiling and the address limit), never by sleeping.
"""

from __future__ import annotations

import time

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from dmp.accounts import lockout
from tests.personas import PASSWORD, totp_code
from tests.test_login import CONFIRM_CODE, LOGIN, MFA_AUTHENTICATE, ShiftedClock, last_code, logged_in, password_step

ATTACKER = "198.51.100.66"
ELSEWHERE = "203.0.113.9"
RECEPTION_CENTRE = "192.0.2.50"
DELAYED = "Too many wrong passwords from this connection"
CEILING_REACHED = "Too many failed login attempts"


class FrozenClock(ShiftedClock):
    """The delay clock stopped at `start`, `seconds` later: a slow machine (dozens of password
    hashes under load) must not let a 2-second delay run out between two steps of a test."""

    def __init__(self, start: float, seconds: float) -> None:
        super().__init__(seconds)
        self.start = start

    def time(self) -> float:
        return self.start + self.seconds


class Clocks:
    """Stops the delay clock, and moves it (and, on demand, allauth's) forward by whole seconds."""

    def __init__(self, monkeypatch) -> None:
        self.monkeypatch = monkeypatch
        self.start = time.time()
        self.delay_offset = 0.0
        self.advance(0)

    def advance(self, seconds: float) -> None:
        self.delay_offset += seconds
        self.monkeypatch.setattr("dmp.accounts.lockout.time", FrozenClock(self.start, self.delay_offset))

    def advance_allauth(self, seconds: float) -> None:
        self.monkeypatch.setattr("allauth.core.internal.ratelimit.time", ShiftedClock(seconds))


@pytest.fixture
def clocks(monkeypatch):
    return Clocks(monkeypatch)


@pytest.fixture
def low_limits(settings):
    """A small ceiling and address limit, so reaching them takes a few requests."""
    def apply(*, per_account: int = 100, per_address: int = 300) -> None:
        settings.ACCOUNT_RATE_LIMITS = {
            **settings.ACCOUNT_RATE_LIMITS,
            "login_failed": f"{per_address}/60m/ip,{per_account}/24h/key",
        }
    return apply


def another_browser() -> Client:
    return Client(headers={"Accept-Language": "en"})


def page(response) -> str:
    return response.content.decode()


def checked_and_wrong(response) -> bool:
    """The password was checked and found wrong (not refused unchecked)."""
    return response.status_code == 200 and DELAYED not in page(response) and CEILING_REACHED not in page(response)


# --- The delays ---------------------------------------------------------------------------


@pytest.mark.parametrize(("failures", "seconds"), [
    (0, 0), (1, 0), (2, 0), (3, 2), (4, 4), (5, 8), (10, 256), (13, 2048), (14, 3600), (99, 3600),
])
def test_the_delay_doubles_after_the_free_failures_up_to_its_cap(settings, failures, seconds):
    settings.LOGIN_FREE_FAILURES, settings.LOGIN_DELAY_MAX_SECONDS = 3, 3600
    assert lockout.delay_after(failures) == seconds


def test_the_attacker_is_slowed_progressively_and_refused_unchecked(client, world, clocks, sms_outbox):
    for _ in range(3):  # people mistype: the first three cost nothing
        assert checked_and_wrong(password_step(client, "alice_martin", "wrong password", REMOTE_ADDR=ATTACKER))

    # Now 2 s: meanwhile even the right password is not checked, and the page says when.
    refused = password_step(client, "alice_martin", REMOTE_ADDR=ATTACKER)
    assert refused.status_code == 200 and DELAYED in page(refused)
    assert "Try again in 2 seconds" in page(refused)
    assert sms_outbox == [] and not logged_in(client)
    clocks.advance(1)
    assert DELAYED in page(password_step(client, "alice_martin", "wrong password", REMOTE_ADDR=ATTACKER))

    clocks.advance(1.5)
    assert checked_and_wrong(password_step(client, "alice_martin", "wrong password", REMOTE_ADDR=ATTACKER))
    assert "Try again in 4 seconds" in page(password_step(client, "alice_martin", REMOTE_ADDR=ATTACKER))
    clocks.advance(4.5)
    assert checked_and_wrong(password_step(client, "alice_martin", "wrong password", REMOTE_ADDR=ATTACKER))
    assert "Try again in 8 seconds" in page(password_step(client, "alice_martin", REMOTE_ADDR=ATTACKER))

    # Once the delay ran out, the right password is checked and the login goes on.
    clocks.advance(8.5)
    response = password_step(client, "alice_martin", REMOTE_ADDR=ATTACKER)
    assert response.status_code == 302 and response["Location"] == CONFIRM_CODE


def test_a_right_password_resets_the_count_of_its_address(client, world, clocks, sms_outbox):
    for _ in range(3):
        password_step(client, "alice_martin", "wrong password", REMOTE_ADDR=ELSEWHERE)
    clocks.advance(3)
    assert password_step(client, "alice_martin", REMOTE_ADDR=ELSEWHERE)["Location"] == CONFIRM_CODE
    client.cookies.clear()
    for _ in range(3):  # three free mistakes again
        assert checked_and_wrong(password_step(client, "alice_martin", "wrong password", REMOTE_ADDR=ELSEWHERE))


def test_attempts_refused_during_a_delay_are_not_counted_towards_the_ceiling(client, world, clocks, low_limits):
    low_limits(per_account=5)
    for _ in range(3):
        password_step(client, "alice_martin", "wrong password", REMOTE_ADDR=ATTACKER)
    for _ in range(20):  # hammering while the delay runs checks nothing and counts nothing
        assert DELAYED in page(password_step(client, "alice_martin", "wrong password", REMOTE_ADDR=ATTACKER))
    assert password_step(client, "alice_martin", REMOTE_ADDR=ELSEWHERE)["Location"] == CONFIRM_CODE


# --- The lockout cannot be aimed ------------------------------------------------------------


def test_the_ceiling_per_account_is_the_login_limiter_configured_next_to_the_delays():
    from dmp.settings import (
        ACCOUNT_RATE_LIMITS,
        LOGIN_ACCOUNT_WINDOW_HOURS,
        LOGIN_ADDRESS_WINDOW_MINUTES,
        LOGIN_FAILURES_PER_ACCOUNT,
        LOGIN_FAILURES_PER_ADDRESS,
    )

    assert ACCOUNT_RATE_LIMITS["login_failed"] == (
        f"{LOGIN_FAILURES_PER_ADDRESS}/{LOGIN_ADDRESS_WINDOW_MINUTES}m/ip,"
        f"{LOGIN_FAILURES_PER_ACCOUNT}/{LOGIN_ACCOUNT_WINDOW_HOURS}h/key")
    assert (LOGIN_FAILURES_PER_ACCOUNT, LOGIN_ACCOUNT_WINDOW_HOURS) == (100, 24)


def test_a_named_doctor_cannot_be_locked_out_by_wrong_passwords_from_another_address(
        client, world, clocks, settings, low_limits):
    """Up to the ceiling minus one, from one address, each wrong password typed as soon as the
    delay allows; the doctor, from the practice, then logs in (password and authenticator)."""
    # A ceiling of 20, not 100 (the production ceiling, asserted above): the same limiter and
    # the same boundary, past the point where the delay reaches its one-hour cap (15 failures).
    settings.LOGIN_FAILURES_PER_ACCOUNT = 20
    low_limits(per_account=settings.LOGIN_FAILURES_PER_ACCOUNT)
    assert lockout.delay_after(settings.LOGIN_FAILURES_PER_ACCOUNT - 2) == settings.LOGIN_DELAY_MAX_SECONDS
    # The shifted clock packs days of attempts into a second: allauth's plain request limit
    # (60 logins a minute per address), which real time would never reach here, is lifted.
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "1000/m/ip"}
    username = world.dr_house.user.username
    for failures in range(settings.LOGIN_FAILURES_PER_ACCOUNT - 1):
        clocks.advance(lockout.delay_after(failures) + 1)
        response = password_step(client, username, "wrong password", REMOTE_ADDR=ATTACKER)
        assert checked_and_wrong(response), failures
    # The attacker is slowed to one try an hour from there, even with the right password.
    refused = password_step(client, username, REMOTE_ADDR=ATTACKER)
    assert DELAYED in page(refused) and "Try again in 3600 seconds" in page(refused)

    doctor = another_browser()
    response = password_step(doctor, username, REMOTE_ADDR=ELSEWHERE)
    assert response.status_code == 302 and response["Location"] == MFA_AUTHENTICATE
    doctor.post(MFA_AUTHENTICATE, {"code": totp_code()}, REMOTE_ADDR=ELSEWHERE)
    assert logged_in(doctor)
    assert doctor.get(reverse("portal_pro:home"), REMOTE_ADDR=ELSEWHERE).status_code == 200


def test_the_ceiling_is_out_of_reach_from_one_address_in_its_window(settings):
    """The delays alone hold one address to far fewer failures in the ceiling's window than
    the ceiling: an attacker needs several addresses to lock anyone out (docs/security.md)."""
    window = settings.LOGIN_ACCOUNT_WINDOW_HOURS * 3600
    elapsed, failures = 0, 0
    while elapsed <= window:
        elapsed += lockout.delay_after(failures)
        failures += 1
    assert failures - 1 < settings.LOGIN_FAILURES_PER_ACCOUNT / 2


def test_the_ceiling_locks_the_account_from_every_address_and_ends(client, world, clocks, low_limits, sms_outbox,
                                                                 settings):
    low_limits(per_account=5)
    for i in range(5):  # from five addresses: none of them delayed
        assert checked_and_wrong(password_step(client, "alice_martin", "wrong", REMOTE_ADDR=f"198.51.100.{i + 1}"))
    locked = password_step(client, "alice_martin", REMOTE_ADDR=ELSEWHERE)
    assert locked.status_code == 200 and CEILING_REACHED in page(locked)
    assert sms_outbox == [], "a locked account gets no code, even with the right password"

    clocks.advance_allauth(settings.LOGIN_ACCOUNT_WINDOW_HOURS * 3600 + 1)
    assert password_step(client, "alice_martin", REMOTE_ADDR=ELSEWHERE)["Location"] == CONFIRM_CODE


def test_a_few_mistakes_by_several_people_behind_one_address_lock_nobody_else_out(client, world, clocks):
    for person in range(12):
        for _ in range(3):
            assert checked_and_wrong(password_step(client, f"someone_{person}", "wrong", REMOTE_ADDR=RECEPTION_CENTRE))
    # Each of them is slowed only for their own account...
    assert DELAYED in page(password_step(client, "someone_0", "wrong", REMOTE_ADDR=RECEPTION_CENTRE))
    # ...and another person at the same centre logs in.
    response = password_step(client, "alice_martin", REMOTE_ADDR=RECEPTION_CENTRE)
    assert response.status_code == 302 and response["Location"] == CONFIRM_CODE


def test_the_address_limit_stops_guessing_across_many_accounts_from_one_address(client, world, low_limits):
    low_limits(per_address=6)
    for person in range(6):
        password_step(client, f"someone_{person}", "wrong", REMOTE_ADDR=RECEPTION_CENTRE)
    assert CEILING_REACHED in page(password_step(client, "alice_martin", REMOTE_ADDR=RECEPTION_CENTRE))
    assert password_step(client, "alice_martin", REMOTE_ADDR=ELSEWHERE).status_code == 302


# --- Every place a password is typed ----------------------------------------------------------


def test_wrong_passwords_at_reauthentication_are_counted(client, world, clocks, low_limits):
    low_limits(per_account=4)
    client.force_login(world.alice)
    url = reverse("account_reauthenticate")
    for _ in range(3):
        response = client.post(url, {"password": "wrong"}, REMOTE_ADDR=ATTACKER)
        assert response.status_code == 200 and DELAYED not in page(response)
    delayed = client.post(url, {"password": PASSWORD}, REMOTE_ADDR=ATTACKER)
    assert delayed.status_code == 200 and DELAYED in page(delayed)

    clocks.advance(3)
    client.post(url, {"password": "wrong"}, REMOTE_ADDR=ATTACKER)  # the fourth: the ceiling
    assert CEILING_REACHED in page(password_step(another_browser(), "alice_martin", REMOTE_ADDR=ELSEWHERE))


def test_wrong_current_passwords_at_password_change_are_counted(client, world, clocks, low_limits):
    low_limits(per_account=4)
    client.force_login(world.alice)
    url = reverse("account_change_password")

    def change(old):
        return client.post(url, {"oldpassword": old, "password1": "a brand new phrase",
                                 "password2": "a brand new phrase"}, REMOTE_ADDR=ATTACKER)

    for _ in range(3):
        response = change("wrong")
        assert response.status_code == 200 and DELAYED not in page(response)
    delayed = change(PASSWORD)
    assert delayed.status_code == 200 and DELAYED in page(delayed)
    world.alice.refresh_from_db()
    assert world.alice.check_password(PASSWORD), "refused unchecked: nothing changed"

    clocks.advance(3)
    change("wrong")  # the fourth: the ceiling
    assert CEILING_REACHED in page(password_step(another_browser(), "alice_martin", REMOTE_ADDR=ELSEWHERE))


def test_the_right_current_password_changes_it_after_the_delay(client, world, clocks):
    client.force_login(world.alice)
    url = reverse("account_change_password")
    data = {"password1": "a brand new phrase", "password2": "a brand new phrase"}
    for _ in range(3):
        client.post(url, {"oldpassword": "wrong", **data}, REMOTE_ADDR=ATTACKER)
    clocks.advance(3)
    assert client.post(url, {"oldpassword": PASSWORD, **data}, REMOTE_ADDR=ATTACKER).status_code == 302
    world.alice.refresh_from_db()
    assert world.alice.check_password("a brand new phrase")


def test_wrong_codes_across_logins_lock_the_account(client, world, settings, sms_outbox, clocks, low_limits):
    # Each code dies after three wrong tries; the account counts the wrong tries of all its codes.
    low_limits(per_account=5)
    rounds = -(-5 // settings.ACCOUNT_LOGIN_BY_CODE_MAX_ATTEMPTS)
    for _ in range(rounds):
        password_step(client, "alice_martin")
        wrong = "000000" if last_code(sms_outbox) != "000000" else "111111"
        for _ in range(settings.ACCOUNT_LOGIN_BY_CODE_MAX_ATTEMPTS):
            client.post(CONFIRM_CODE, {"code": wrong})
    sent = len(sms_outbox)
    response = password_step(client, "alice_martin", follow=True)
    assert len(sms_outbox) == sent, "no new code while locked"
    assert not logged_in(client)
    assert response.redirect_chain[-1][0] == LOGIN

    clocks.advance_allauth(settings.LOGIN_ACCOUNT_WINDOW_HOURS * 3600 + 1)
    password_step(client, "alice_martin")
    assert len(sms_outbox) == sent + 1


def test_wrong_authenticator_codes_lock_the_account(client, world, low_limits):
    low_limits(per_account=5)
    username = world.dr_house.user.username
    wrong = "000000" if totp_code() != "000000" else "111111"
    password_step(client, username)
    for _ in range(5):
        client.post(MFA_AUTHENTICATE, {"code": wrong})
    response = client.post(MFA_AUTHENTICATE, {"code": totp_code()})
    assert not logged_in(client)
    assert response.status_code == 200


# --- Lifting a lock at a counter ----------------------------------------------------------------


def test_a_counter_reset_lifts_the_delays_and_the_ceiling(client, world, low_limits):
    from dmp.services.accounts import _clear_failed_logins

    low_limits(per_account=5)
    for i in range(5):
        password_step(client, "alice_martin", "wrong", REMOTE_ADDR=f"198.51.100.{i // 3 + 1}")
    assert DELAYED in page(password_step(client, "alice_martin", REMOTE_ADDR="198.51.100.1"))
    assert CEILING_REACHED in page(password_step(client, "alice_martin", REMOTE_ADDR=ELSEWHERE))

    _clear_failed_logins(RequestFactory().post("/counter/", REMOTE_ADDR="192.0.2.200"), world.alice)

    assert password_step(client, "alice_martin", REMOTE_ADDR="198.51.100.1")["Location"] == CONFIRM_CODE


# --- Record searches: counted by the same limiter as the logins --------------------------------

def _record_search(client, world):
    return client.post(reverse("portal_pro:search"), {"identifier": world.record.provisional_id, "family_name": "",
                                                       "given_names": "", "birth_date": ""})


@pytest.fixture
def three_searches(settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "record_search": "3/1h/user"}


@pytest.mark.django_db
def test_the_search_limit_is_the_login_limiter_configured_next_to_the_login_limits(settings):
    from dmp.settings import ACCOUNT_RATE_LIMITS, RECORD_SEARCHES_PER_HOUR

    assert ACCOUNT_RATE_LIMITS["record_search"] == f"{RECORD_SEARCHES_PER_HOUR}/1h/user"
    assert RECORD_SEARCHES_PER_HOUR == 60


@pytest.mark.django_db
def test_searches_over_the_limit_are_refused_per_professional_and_allowed_again_after_the_hour(
        client, world, three_searches, clocks):
    from dmp.models import AuditEntry

    client.force_login(world.stranger.user)
    for _ in range(3):
        assert _record_search(client, world).status_code == 200
    found = AuditEntry.objects.filter(action="find_record").count()
    refused = _record_search(client, world)
    assert refused.status_code == 429 and "Too many searches" in refused.content.decode()
    assert AuditEntry.objects.filter(action="find_record").count() == found  # nothing looked up
    # Another professional has their own count.
    other = Client()
    other.force_login(world.dr_house.user)
    assert _record_search(other, world).status_code == 200
    # allauth's sliding window: an hour later, searching works again.
    clocks.advance_allauth(3601)
    assert _record_search(client, world).status_code == 200


@pytest.mark.django_db
def test_fhir_patient_searches_count_on_the_same_limit_as_the_portal(client, world, three_searches):
    """A person's FHIR searches (the browser's session) count with their portal searches; an
    API token has its own limit instead (tests/test_fhir_rate_limits.py) and is not stopped."""
    from dmp.policy import Actor
    from dmp.services import api_token_create

    client.force_login(world.dr_house.user)
    for _ in range(2):
        assert _record_search(client, world).status_code == 200
    assert client.get("/fhir/Patient", {"identifier": world.record.provisional_id}).status_code == 200
    assert client.get("/fhir/Patient", {"identifier": world.record.provisional_id}).status_code == 429
    assert _record_search(client, world).status_code == 429
    raw = api_token_create(actor=Actor(world.dr_house.user), label="Logiciel de cabinet")[1]
    api = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    for _ in range(3):
        assert api.get("/fhir/Patient", {"identifier": world.record.provisional_id}, **headers).status_code == 200
