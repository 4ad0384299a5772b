"""The person's language (DOMAIN.md §7): once logged in, the language stored on the account
wins over the browser's; the switch on every page changes it and stores it (account, and the
record its holder holds); anonymous pages follow the language cookie, then Accept-Language."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from dmp.models import Record, User
from dmp.services import InvalidInput, account_language_set
from tests.personas import PASSWORD, make_user
from tests.test_login import CONFIRM_CODE, LOGIN, last_code, logged_in

SWITCH = reverse("set_language")
PATIENT_HOME = reverse("portal_patient:home")


def html_lang(response) -> str:
    return re.search(r'<html lang="([^"]+)"', response.content.decode()).group(1)


def log_in_with_code(client, username, sms_outbox):
    client.post(LOGIN, {"login": username, "password": PASSWORD})
    client.post(CONFIRM_CODE, {"code": last_code(sms_outbox)})
    assert logged_in(client)


def stored(user) -> str:
    return User.objects.get(pk=user.pk).preferred_language


# --- The account's language wins ------------------------------------------------------------


def test_a_russian_reader_logging_in_from_an_english_browser_gets_russian_pages(client, world, sms_outbox):
    User.objects.filter(pk=world.alice.pk).update(preferred_language="ru")
    assert html_lang(client.get(LOGIN)) == "en", "before login, the browser's language"
    log_in_with_code(client, "alice_martin", sms_outbox)
    response = client.get(PATIENT_HOME, follow=True)
    assert response.status_code == 200
    assert html_lang(response) == "ru"
    assert response["Content-Language"] == "ru"


def test_a_switch_to_arabic_is_stored_and_the_next_login_is_in_arabic(client, world, sms_outbox):
    client.force_login(world.alice)
    response = client.post(SWITCH, {"language": "ar", "next": PATIENT_HOME})
    assert response.status_code == 302 and response["Location"] == PATIENT_HOME
    assert stored(world.alice) == "ar"
    assert Record.objects.get(pk=world.record.pk).preferred_language == "ar", "her record's too"
    page = client.get(PATIENT_HOME, follow=True)
    assert html_lang(page) == "ar" and 'dir="rtl"' in page.content.decode()

    client.post(reverse("account_logout"))
    fresh = Client(headers={"Accept-Language": "en"})  # another browser, asking for English
    log_in_with_code(fresh, "alice_martin", sms_outbox)
    assert html_lang(fresh.get(PATIENT_HOME, follow=True)) == "ar"


@pytest.mark.parametrize("persona", ["mother", "agent", "dr_house"])
def test_a_choice_made_by_someone_who_does_not_hold_a_record_changes_only_their_account(client, world, persona):
    user = {"mother": world.mother, "agent": world.agent.user, "dr_house": world.dr_house.user}[persona]
    records_before = dict(Record.objects.values_list("pk", "preferred_language"))
    language = "en" if persona == "dr_house" else "uk"  # professionals read French or English
    client.force_login(user)
    client.post(SWITCH, {"language": language, "next": "/"})
    assert stored(user) == language
    assert dict(Record.objects.values_list("pk", "preferred_language")) == records_before, \
        "a representative's, an agent's or a professional's language is not the records'"


def test_a_stored_language_the_site_does_not_offer_falls_back_to_the_browsers(client, world):
    User.objects.filter(pk=world.alice.pk).update(preferred_language="xx")
    client.force_login(world.alice)
    assert html_lang(client.get(PATIENT_HOME, follow=True)) == "en"


# --- The switch -------------------------------------------------------------------------------


def test_an_anonymous_visitor_gets_the_browsers_language_then_the_cookie(world):
    visitor = Client(headers={"Accept-Language": "ru"})
    assert html_lang(visitor.get(LOGIN)) == "ru"
    response = visitor.post(SWITCH, {"language": "sq", "next": LOGIN})
    assert response.status_code == 302 and response["Location"] == LOGIN
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "sq"
    assert html_lang(visitor.get(LOGIN)) == "sq"
    assert not User.objects.filter(preferred_language="sq").exists(), "no account is touched"


@pytest.mark.parametrize("target", [
    "https://evil.example/accounts/login/", "//evil.example/", "http://evil.example", "javascript:alert(1)",
])
def test_next_outside_the_site_goes_to_the_home_page(client, world, target):
    response = client.post(SWITCH, {"language": "fa", "next": target})
    assert response.status_code == 302 and response["Location"] == "/"
    client.force_login(world.alice)
    response = client.post(SWITCH, {"language": "fa", "next": target})
    assert response["Location"] == "/" and stored(world.alice) == "fa"


def test_without_next_the_referring_page_of_this_site_is_kept(client, world):
    client.force_login(world.alice)
    response = client.post(SWITCH, {"language": "ru"}, headers={"Referer": "http://testserver/patient/"})
    assert response["Location"] == "http://testserver/patient/"
    response = client.post(SWITCH, {"language": "ru"}, headers={"Referer": "https://evil.example/"})
    assert response["Location"] == "/"


def test_a_language_not_offered_is_refused_clearly_and_changes_nothing(client, world):
    client.force_login(world.alice)
    before = stored(world.alice)
    response = client.post(SWITCH, {"language": "xx", "next": PATIENT_HOME}, follow=True)
    assert "Choose a language from the list." in response.content.decode()
    assert stored(world.alice) == before
    assert Record.objects.get(pk=world.record.pk).preferred_language == world.record.preferred_language
    anonymous = Client(headers={"Accept-Language": "en"})
    response = anonymous.post(SWITCH, {"language": "xx", "next": LOGIN})
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


def test_the_switch_takes_a_post_with_its_csrf_token_only(world):
    browser = Client(enforce_csrf_checks=True, headers={"Accept-Language": "en"})
    browser.force_login(world.alice)
    assert browser.get(SWITCH).status_code == 405
    assert browser.post(SWITCH, {"language": "ar", "next": "/"}).status_code == 403
    assert stored(world.alice) == "en"


def test_the_switch_is_reachable_before_the_temporary_password_is_replaced(client, world):
    User.objects.filter(pk=world.alice.pk).update(must_change_password=True)
    client.force_login(world.alice)
    response = client.post(SWITCH, {"language": "ru", "next": "/"})
    assert response.status_code == 302 and stored(world.alice) == "ru"


LANGUAGE_NAMES = {"fr": "Français", "en": "English", "ar": "العربية", "ru": "Русский", "uk": "Українська",
                  "sq": "Shqip", "fa": "فارسی"}


@pytest.mark.parametrize(("persona", "address"), [
    (None, LOGIN),
    (None, "/no-such-page/"),
    ("alice", PATIENT_HOME),
    ("agent", reverse("social_workers:home")),
    ("dr_house", reverse("portal_pro:home")),
])
def test_every_page_has_the_labelled_switch_working_without_javascript(client, world, persona, address):
    if persona:
        client.force_login({"alice": world.alice, "agent": world.agent.user,
                            "dr_house": world.dr_house.user}[persona])
    response = client.get(address, follow=True)
    html = response.content.decode()
    form = re.search(r'<form method="post" action="([^"]+)" class="lang">(.*?)</form>', html, re.S)
    assert form and form.group(1) == SWITCH
    body = form.group(2)
    assert "csrfmiddlewaretoken" in body
    if response.status_code == 404:  # the same page whatever was asked: the Referer brings back
        assert 'name="next"' not in body
    else:
        assert f'<input type="hidden" name="next" value="{response.request["PATH_INFO"]}">' in body
    assert '<label for="language-switch"' in body and '<select id="language-switch" name="language"' in body
    assert re.search(r'<noscript><button type="submit">[^<]+</button></noscript>', body)
    options = re.findall(r'<option value="(\w+)" lang="(\w+)" dir="(\w+)"[^>]*>([^<]+)</option>', body)
    offered = settings.CLINICIAN_LANGUAGES if persona == "dr_house" else dict(settings.LANGUAGES)
    assert [(code, lang, name) for code, lang, _dir, name in options] == [
        (code, code, LANGUAGE_NAMES[code]) for code, _ in settings.LANGUAGES if code in offered]
    if persona != "dr_house":
        assert {code for code, _lang, direction, _name in options if direction == "rtl"} == {"ar", "fa"}


@pytest.mark.parametrize("persona", ["dr_house", "operator"])
def test_the_clinician_portal_and_the_admin_stay_in_french_or_english(client, world, persona):
    """DOMAIN.md §7: the clinician portal is French with English. A professional whose stored
    preference or browser says Arabic reads French; choosing Persian is refused, and stored
    nowhere."""
    user = world.dr_house.user if persona == "dr_house" else make_user("olga_operator", is_staff=True)
    User.objects.filter(pk=user.pk).update(preferred_language="ar")
    browser = Client(headers={"Accept-Language": "ar"})
    browser.force_login(user)
    page = reverse("portal_pro:home") if persona == "dr_house" else "/"
    assert html_lang(browser.get(page, follow=True)) == "fr"
    response = browser.post(SWITCH, {"language": "fa", "next": page}, follow=True)
    assert stored(user) == "ar" and html_lang(response) == "fr"
    assert "Choisissez une langue dans la liste." in response.content.decode()
    browser.post(SWITCH, {"language": "en", "next": page})
    assert stored(user) == "en" and html_lang(browser.get(page, follow=True)) == "en"


# --- The service ------------------------------------------------------------------------------


def test_the_service_stores_the_holders_language_on_the_account_and_the_record(world):
    assert account_language_set(user=world.alice, language="uk") == "uk"
    assert stored(world.alice) == "uk" and Record.objects.get(pk=world.record.pk).preferred_language == "uk"
    with pytest.raises(InvalidInput, match="Choose a language from the list."):
        account_language_set(user=world.alice, language="de")
    assert stored(world.alice) == "uk"


# --- In a real browser ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_in_a_browser_the_switch_sends_itself_and_without_javascript_its_button_does(
        live_server, page, browser, world, sms_outbox):
    from tests.browser import log_in_with_sms_code

    log_in_with_sms_code(page, live_server.url, "alice_martin", sms_outbox)
    page.wait_for_url(f"**/patient/records/{world.record.pk}/")
    assert page.locator("html").get_attribute("lang") == "fr"
    page.select_option("#language-switch", label="العربية")  # dmp.js sends the form on change
    page.wait_for_function("document.documentElement.lang === 'ar'")
    assert page.url.endswith(f"/patient/records/{world.record.pk}/"), "back on the same page"
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert stored(world.alice) == "ar"

    context = browser.new_context(java_script_enabled=False, locale="en-GB")
    anonymous = context.new_page()
    anonymous.goto(live_server.url + LOGIN)
    assert anonymous.locator("html").get_attribute("lang") == "en"
    anonymous.get_by_label("Language").select_option("ru")
    anonymous.locator("form.lang button[type=submit]").click()
    anonymous.wait_for_url("**" + LOGIN)
    assert anonymous.locator("html").get_attribute("lang") == "ru"
    context.close()
