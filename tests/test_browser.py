"""Browser tests in Debian's Chromium driven by Playwright (see tests/conftest.py)."""

from __future__ import annotations

import re

import pytest


@pytest.mark.django_db(transaction=True)
def test_home_page_loads_in_a_real_browser(live_server, page):
    page.goto(live_server.url + "/")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("h1").is_visible()
    page.locator("main a[href='/accounts/login/']").click()
    assert "/accounts/login/" in page.url


@pytest.mark.django_db(transaction=True)
def test_a_patient_logs_in_and_sees_her_documents(live_server, page, world, sms_outbox):
    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=login]", "alice_martin")
    page.fill("input[name=password]", "correct-horse-battery")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url("**/accounts/login/code/confirm/")
    page.fill("input[name=code]", re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(f"**/patient/records/{world.record.pk}/")
    rows = page.locator("table.documents tbody tr")
    titles = rows.locator("td:nth-child(4) a").all_inner_texts()
    assert "hidden" in titles and "withheld" not in titles


@pytest.mark.django_db(transaction=True)
def test_a_patient_first_login_end_to_end(live_server, page, world, sms_outbox):
    """The sheet's temporary password, her own password, the code from the SMS, her record."""
    alice = world.alice
    alice.set_password("tmp-4Kx7-Qa3P-9dRm")
    alice.must_change_password = True
    alice.save()

    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=login]", "alice_martin")
    page.fill("input[name=password]", "tmp-4Kx7-Qa3P-9dRm")
    page.locator("main form button[type=submit]").first.click()

    page.wait_for_url("**/accounts/login/new-password/")
    assert page.locator("h1").inner_text() == "Choisissez votre propre mot de passe"
    page.fill("input[name=new_password1]", "mon propre mot de passe")
    page.fill("input[name=new_password2]", "mon propre mot de passe")
    page.locator("main form button[type=submit]").first.click()

    page.wait_for_url("**/accounts/login/code/confirm/")
    assert len(sms_outbox) == 1
    to, text = sms_outbox[0]
    assert to == "+33612345678"
    page.fill("input[name=code]", re.search(r"\b(\d{6})\b", text).group(1))
    page.locator("main form button[type=submit]").first.click()

    page.wait_for_url(f"**/patient/records/{world.record.pk}/")
    assert page.locator("header .who").inner_text() == "Alice Martin"
    alice.refresh_from_db()
    assert alice.check_password("mon propre mot de passe") and not alice.must_change_password
