"""Every page a patient or a counter agent reads, in each of the seven languages, in Debian's
Chromium: no sentence of the catalogues is left in French or English when the page's language
says it otherwise (issue 14, "In their language"); and axe-core finds nothing serious on the
patient and counter pages, in French and in Arabic (right to left).

One browser context per language: the login page (anonymous, the language picked in the
switch), then Alice's pages (her stored language wins once she is logged in), then, logged out
and in again in the same context, the counter agent's. The catalogues are read with polib: a
sentence of at least 2 words and 12 characters that the page's language translates differently
must not appear in `document.body.innerText` (tests/leftovers.py). Names, titles and other data
typed by people are not compared: only catalogue strings are."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.leftovers import leftovers
from tests.personas import PASSWORD, totp_code

LANGUAGES = ["fr", "en", "ar", "fa", "ru", "uk", "sq"]
AXE_LANGUAGES = {"fr", "ar"}
DUMP = Path(os.environ["DMP_DUMP_PAGES"]) if os.environ.get("DMP_DUMP_PAGES") else None


# The page's text, less what is marked as written in another language on purpose (the French
# word beside each explanation on /words/, each language's own name in the switch).
SHOWN_IN_PAGE_LANGUAGE = """() => {
  let text = document.body.innerText;
  const own = document.documentElement.lang;
  for (const el of document.body.querySelectorAll("[lang]")) {
    if (el.lang !== own && el.innerText) text = text.replace(el.innerText, " ");
  }
  return text;
}"""


def _offenders(language: str, url: str, text: str) -> list[str]:
    return [f"[{language}] {url}: {line}" for line in leftovers(text, language)]


def _axe_serious(page, url: str) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{url}: {violation['id']} ({violation['impact']}): {violation['help']} — "
            f"{[node['target'] for node in violation['nodes']][:3]}"
            for violation in results.response["violations"] if violation["impact"] in ("serious", "critical")]


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(base_url + reverse("account_login"))
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url or "/code/" in url)


def _patient_urls(world) -> list[str]:
    pk = world.record.pk
    names = ["record", "synthesis", "documents", "history", "information", "information_contact",
             "information_emergency_contacts", "information_trusted_person", "information_advance_directives",
             "information_advance_directives_upload", "information_organ_donation", "information_blood_group",
             "information_vaccinations", "information_declared", "information_notes"]
    urls = [reverse(f"portal_patient:{name}", args=[pk]) for name in names]
    urls.append(reverse("portal_patient:document", args=[pk, world.docs["consultation"].pk]))
    return urls


def _counter_urls(world) -> list[str]:
    return [reverse("social_workers:dashboard"), reverse("social_workers:onboarding_start"),
            reverse("social_workers:counter_deposit", args=[world.record.pk])]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.django_db(transaction=True)
def test_every_patient_and_counter_page_is_in_the_persons_language(language, live_server, browser, world,
                                                                     sms_outbox):
    world.alice.preferred_language = language
    world.alice.save(update_fields=["preferred_language"])
    world.agent.user.preferred_language = language
    world.agent.user.save(update_fields=["preferred_language"])
    # A French browser, as everywhere in the suite: the page's language comes from the person.
    context = browser.new_context(locale="fr-FR", bypass_csp=True)
    page = context.new_page()
    offenders, violations = [], []

    def check(url: str, *, axe: bool) -> None:
        response = page.goto(live_server.url + url) if url else None
        assert response is None or response.status == 200, url
        url = url or page.url.removeprefix(live_server.url)
        assert page.locator("html").get_attribute("lang") == language, url
        assert page.locator("html").get_attribute("dir") == ("rtl" if language in ("ar", "fa") else "ltr"), url
        text = page.evaluate(SHOWN_IN_PAGE_LANGUAGE)
        if DUMP:  # to read the pages by eye, for words that no catalogue holds
            name = re.sub(r"[^a-z0-9]+", "_", url.lower()).strip("_") or "page"
            (DUMP / f"{language}-{name}.txt").write_text(text)
        offenders.extend(_offenders(language, url, text))
        if axe and language in AXE_LANGUAGES:
            violations.extend(_axe_serious(page, url))

    # The login page, anonymous, in the language picked in the switch; the words explained.
    page.goto(live_server.url + reverse("account_login"))
    with page.expect_navigation():
        page.select_option("#language-switch", language)
    check("", axe=True)
    check(reverse("words"), axe=True)

    # Alice: her login code page, then her pages.
    _log_in(page, live_server.url, "alice_martin")
    check("", axe=True)
    page.fill("input[name=code]", re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(lambda url: "/accounts/" not in url)
    for url in _patient_urls(world):
        check(url, axe=True)
    check(reverse("account_change_password"), axe=True)
    page.locator("header form[action$='/logout/'] button").click()
    page.wait_for_url(lambda url: "/patient/" not in url)

    # The counter agent: the second step of the login, then the counter pages.
    _log_in(page, live_server.url, world.agent.user.username)
    check("", axe=True)
    page.fill("input[name=code]", totp_code())
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(lambda url: "/accounts/" not in url)
    for url in _counter_urls(world):
        check(url, axe=True)
    context.close()

    assert not offenders, "Catalogue strings left untranslated on the page:\n" + "\n".join(offenders)
    assert not violations, "axe-core, serious or critical:\n" + "\n".join(violations)
