"""Every counter page fits a 360 px screen (a tablet held upright, a small phone), in French and
in Arabic (right to left, longer words): no horizontal scroll, in Debian's Chromium. The
onboarding and the deposit have their own walk-through tests; this one visits the pages an agent
only reaches in the middle of a task: the reset, its approval by a colleague."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from dmp.models import CounterAgent, User
from tests.browser import log_in_with_app_code, no_horizontal_scroll, page_width
from tests.personas import enrol_totp, make_user
from tests.test_counter_reset import URL, _asile_form, _pending_url, asile  # noqa: F401 - fixture


def _reads(user, language: str) -> None:
    User.objects.filter(pk=user.pk).update(preferred_language=language)


def _fits(page, base_url: str, path: str, language: str) -> str | None:
    response = page.goto(base_url + path)
    assert response.status == 200, (path, response.status)
    assert page.locator("html").get_attribute("lang") == language
    if not no_horizontal_scroll(page):
        return f"{path}: {page_width(page)} px wide"
    return None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["fr", "ar"])
def test_every_counter_page_fits_360_px(live_server, page, world, asile, language):  # noqa: F811
    page.set_viewport_size({"width": 360, "height": 740})
    cada, cpam = world.agent, world.other_agent
    colleague = CounterAgent.objects.create(user=enrol_totp(make_user("claire_cpam")),
                                            organisation=cpam.organisation)
    for agent in (cada, cpam, colleague):
        _reads(agent.user, language)
    # A CPAM agent asks to reset the login of a person the CADA onboarded, who has no phone:
    # a colleague must approve.
    requester = Client()
    requester.force_login(cpam.user)
    pending = _pending_url(requester.post(URL, _asile_form(new_phone="07 81 00 00 01")))

    too_wide = []
    log_in_with_app_code(page, live_server.url, cada.user.username)
    for path in (reverse("social_workers:home"), reverse("social_workers:dashboard"),
                 reverse("social_workers:onboarding_start"), URL,
                 reverse("social_workers:counter_deposit", args=[asile.pk])):
        too_wide.append(_fits(page, live_server.url, path, language))
    page.context.clear_cookies()
    log_in_with_app_code(page, live_server.url, cpam.user.username)
    too_wide.append(_fits(page, live_server.url, pending, language))
    page.context.clear_cookies()
    log_in_with_app_code(page, live_server.url, colleague.user.username)
    too_wide.append(_fits(page, live_server.url, reverse("social_workers:home"), language))
    too_wide.append(_fits(page, live_server.url, pending + "approve/", language))
    assert not [line for line in too_wide if line], too_wide


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_pages_and_searches_without_javascript_on_a_small_screen(live_server, browser, world):
    """Issue 16: 60 records onboarded, JavaScript off, 360 px: the next page is a link, the
    search a form; the name typed never shows in the address bar, and every page fits."""
    from datetime import date

    from dmp.models import Record

    Record.objects.bulk_create([
        Record(family_name="Nguyen", given_names="Bao", birth_date=date(1980, 1, 1), created_by=world.agent.user)
        for _ in range(58)  # with Alice's and Élodie's: 60
    ])
    lefevre = Record.objects.create(family_name="Lefèvre", given_names="Élodie", birth_date=date(1990, 2, 3),
                                    created_by=world.agent.user)
    _reads(world.agent.user, "fr")
    context = browser.new_context(viewport={"width": 360, "height": 740}, java_script_enabled=False, locale="fr-FR")
    page = context.new_page()
    log_in_with_app_code(page, live_server.url, world.agent.user.username)
    dashboard = live_server.url + reverse("social_workers:dashboard")
    page.goto(dashboard)
    rows = page.locator("table.counter-dashboard tbody tr")
    assert rows.count() == 50 and no_horizontal_scroll(page), page_width(page)
    page.locator("a[rel=next]").click()
    assert page.url == dashboard + "?page=2" and rows.count() == 10
    page.fill("input[name=name]", "lefe")
    page.locator("form.counter-search button[type=submit]:not([name])").click()
    assert page.url == dashboard and "lef" not in page.url.lower()
    assert rows.count() == 1 and lefevre.identifier in rows.first.inner_text()
    assert no_horizontal_scroll(page), page_width(page)
    page.locator("form.counter-search button[name=clear]").click()
    assert rows.count() == 50
    context.close()
