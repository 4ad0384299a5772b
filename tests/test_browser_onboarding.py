"""The whole counter onboarding of an asylum seeker without NIR, phone or e-mail, in Debian's
Chromium driven by Playwright, ending with the credentials PDF."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from dmp.models import Record
from tests.personas import PASSWORD, totp_code


@pytest.mark.django_db(transaction=True)
def test_an_agent_onboards_an_asylum_seeker_without_phone_or_email(live_server, page, world):
    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=login]", world.agent.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url("**/accounts/2fa/authenticate/")
    page.fill("input[name=code]", totp_code())
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(lambda url: "/accounts/" not in url)

    page.goto(live_server.url + "/counter/onboard/")
    # The explanation sheet in Persian, right to left.
    page.locator("a[href='/counter/onboard/presentation/?lang=fa']").click()
    assert page.locator("section.sheet").get_attribute("dir") == "rtl"
    page.go_back()

    page.check("input[name=consented]")
    page.check("input[name=break_glass_allowed]")
    page.check("input[name=samu_allowed]")
    page.fill("input[name=family_name]", "Karimi")
    page.fill("input[name=given_names]", "Ahmad")
    page.fill("input[name=birth_date]", "1993-03-21")
    page.select_option("select[name=sex]", "M")
    page.check("input[name=languages][value=fa]")
    page.check("input[name=languages][value=ru]")
    page.select_option("select[name=preferred_language]", "fa")
    page.locator("main form button[type=submit]").last.click()
    page.wait_for_url("**/counter/onboard/done/")

    record = Record.objects.get(family_name="Karimi", given_names="Ahmad")
    assert record.nir is None and record.phone == "" and record.email == ""
    assert sorted(record.languages) == ["fa", "ru"] and record.preferred_language == "fa"
    assert page.locator("strong.identifier").inner_text() == record.provisional_id

    url = page.locator("#credentials-pdf").get_attribute("href")
    response = page.request.get(live_server.url + url)
    assert response.ok and response.headers["content-type"] == "application/pdf"
    assert response.headers["cache-control"] == "no-store"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages)
    assert record.provisional_id in text

    page.locator("form[action='/counter/onboard/handed/'] button").click()
    page.wait_for_url("**/counter/")
    assert page.request.get(live_server.url + url).status == 404
