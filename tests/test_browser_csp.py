"""The Content-Security-Policy does not break the site: the main pages of each portal, loaded
in Debian's Chromium (Playwright, see tests/conftest.py) with the policy enforced, report no
violation, and their scripts still run."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.personas import PASSWORD, make_professional

# Records every violation the page reports, from before its first script runs. Playwright
# injects this itself: the page's policy does not apply to it.
LISTEN = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push(
    e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile + ":" + e.lineNumber);
});
"""


def _session_for(user, *, reauthenticated=False) -> str:
    client = Client()
    client.force_login(user)
    if reauthenticated:  # second-factor enrolment asks for a recent password
        client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _visit(browser, base_url, urls, session=None) -> dict[str, list[str]]:
    context = browser.new_context(locale="fr-FR")
    if session:
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base_url}])
    context.add_init_script(LISTEN)
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text or message.text.startswith("Refused to") else None)
    found = {}
    for url in urls:
        response = page.goto(base_url + url)
        assert response.status == 200, url
        assert "script-src 'self'" in response.headers["content-security-policy"], url
        page.wait_for_load_state("load")
        found[url] = page.evaluate("window.__violations") + refused[:]
        refused.clear()
    context.close()
    return {url: violations for url, violations in found.items() if violations}


@pytest.mark.django_db(transaction=True)
def test_no_page_of_any_portal_violates_the_content_security_policy(live_server, browser, world):
    record, doc = world.record.pk, world.docs["consultation"].pk
    visits = [
        (None, ["/", "/accounts/login/"]),
        (world.alice, [
            reverse("portal_patient:record", args=[record]),
            reverse("portal_patient:documents", args=[record]),
            reverse("portal_patient:document", args=[record, doc]),
            reverse("portal_patient:documents_add", args=[record]),
            reverse("portal_patient:information", args=[record]),
            reverse("portal_patient:manage", args=[record]),
            reverse("portal_patient:history", args=[record]),
            reverse("account_change_password"),
        ]),
        (world.dr_house.user, [
            reverse("portal_pro:home"),
            reverse("portal_pro:record", args=[record]),
            reverse("portal_pro:documents", args=[record]),
            reverse("portal_pro:synthesis", args=[record]),
            reverse("portal_pro:synthesis_edit", args=[record]),
            reverse("mfa_index"),
        ]),
        (world.agent.user, [reverse("social_workers:home"), reverse("social_workers:dashboard")]),
        (world.admin, ["/" + settings.ADMIN_URL, "/" + settings.ADMIN_URL + "dmp/organisation/add/"]),
    ]
    violations = {}
    for user, urls in visits:
        violations |= _visit(browser, live_server.url, urls, _session_for(user) if user else None)
    assert violations == {}


@pytest.mark.django_db(transaction=True)
def test_second_factor_enrolment_shows_its_qr_code_under_the_policy(live_server, browser, world):
    newcomer = make_professional("nina_new", second_factor=False).user
    session = _session_for(newcomer, reauthenticated=True)
    url = reverse("mfa_activate_totp")
    assert _visit(browser, live_server.url, [url], session) == {}

    context = browser.new_context(locale="fr-FR")
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
    page = context.new_page()
    page.goto(live_server.url + url)
    qr = page.locator("img[src^='data:image/svg+xml']")
    assert qr.count() == 1 and qr.evaluate("img => img.complete && img.naturalWidth > 0")
    context.close()


@pytest.mark.django_db(transaction=True)
def test_the_login_steps_run_under_the_policy(live_server, browser, world):
    """The password page, then the one-time code page (a patient) or the authenticator page
    (a professional), through the real forms."""
    for username, next_step in (("alice_martin", "**/accounts/login/code/confirm/"),
                                (world.dr_house.user.username, "**/accounts/2fa/authenticate/")):
        context = browser.new_context(locale="fr-FR")
        context.add_init_script(LISTEN)
        page = context.new_page()
        refused: list[str] = []
        page.on("console", lambda message, refused=refused: refused.append(message.text)
                if "Content Security Policy" in message.text else None)
        page.goto(live_server.url + "/accounts/login/")
        assert page.evaluate("window.__violations") == []
        page.fill("input[name=login]", username)
        page.fill("input[name=password]", PASSWORD)
        page.locator("main form button[type=submit]").first.click()
        page.wait_for_url(next_step)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__violations") == [] and refused == [], username
        context.close()


@pytest.mark.django_db(transaction=True)
def test_the_language_switch_still_works_without_inline_script(live_server, page):
    page.goto(live_server.url + "/")
    assert page.locator("html").get_attribute("lang") == "fr"
    with page.expect_navigation():
        page.select_option("header select[name=language]", "en")
    assert page.locator("html").get_attribute("lang") == "en"
