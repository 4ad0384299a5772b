"""Browser tests in Debian's Chromium driven by Playwright (see tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.mark.django_db(transaction=True)
def test_home_page_loads_in_a_real_browser(live_server, page):
    page.goto(live_server.url + "/")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("h1").is_visible()
    page.locator("main a[href='/accounts/login/']").click()
    assert "/accounts/login/" in page.url


@pytest.mark.django_db(transaction=True)
def test_a_patient_logs_in_and_sees_her_documents(live_server, page, world):
    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=login]", "alice_martin")
    page.fill("input[name=password]", "correct-horse-battery")
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url(f"**/patient/records/{world.record.pk}/")
    rows = page.locator("table.documents tbody tr")
    titles = rows.locator("td:nth-child(4) a").all_inner_texts()
    assert "hidden" in titles and "withheld" not in titles
