"""The whole counter onboarding of an asylum seeker without NIR, phone or e-mail, in Debian's
Chromium driven by Playwright at 360 px wide, the three questions answered by their labels,
ending with the credentials PDF and the dashboard."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from dmp.models import Record
from tests.browser import log_in_with_app_code, no_horizontal_scroll


@pytest.mark.django_db(transaction=True)
def test_an_agent_onboards_an_asylum_seeker_without_phone_or_email(live_server, page, world):
    page.set_viewport_size({"width": 360, "height": 740})  # a small phone or a narrow window at a desk
    log_in_with_app_code(page, live_server.url, world.agent.user.username)

    page.goto(live_server.url + "/counter/onboard/")
    # The explanation sheet in Persian, right to left.
    page.locator("a[href='/counter/onboard/presentation/?lang=fa']").click()
    assert page.locator("section.sheet").get_attribute("dir") == "rtl"
    assert no_horizontal_scroll(page)
    page.go_back()

    assert no_horizontal_scroll(page)
    # The three questions, each in its own group, answered by their labels (the page is in French).
    _answer(page, "La personne accepte-t-elle la création", "Oui")
    _answer(page, "Accès en urgence", "Oui")
    _answer(page, "Le SAMU", "Non")
    page.fill("input[name=family_name]", "Karimi")
    page.fill("input[name=given_names]", "Ahmad")
    page.fill("input[name=birth_date]", "1993-03-21")
    assert page.get_by_label("Sexe (facultatif)").input_value() == ""  # no default
    page.get_by_label("Sexe (facultatif)").select_option("M")
    page.check("input[name=languages][value=fa]")
    page.check("input[name=languages][value=ru]")
    page.select_option("select[name=preferred_language]", "fa")
    page.locator("main form button[type=submit]").last.click()
    page.wait_for_url("**/counter/onboard/done/")

    record = Record.objects.get(family_name="Karimi", given_names="Ahmad")
    assert record.nir is None and record.phone == "" and record.email == ""
    assert record.consent.presented_and_consented
    assert record.break_glass_allowed is True and record.samu_allowed is False  # stored as ticked
    assert record.sex == "M"
    assert sorted(record.languages) == ["fa", "ru"] and record.preferred_language == "fa"
    assert page.locator("strong.identifier").inner_text() == record.provisional_id
    assert no_horizontal_scroll(page)

    url = page.locator("#credentials-pdf").get_attribute("href")
    response = page.request.get(live_server.url + url)
    assert response.ok and response.headers["content-type"] == "application/pdf"
    assert response.headers["cache-control"] == "no-store"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages)
    assert record.provisional_id in text

    page.locator("form[action='/counter/onboard/handed/'] button").click()
    page.wait_for_url("**/counter/")
    assert page.request.get(live_server.url + url).status == 404
    assert no_horizontal_scroll(page)
    page.goto(live_server.url + "/counter/dashboard/")
    assert page.get_by_text("Karimi Ahmad").or_(page.get_by_text("Ahmad Karimi")).first.is_visible()
    assert no_horizontal_scroll(page)


def _answer(page, question: str, answer: str) -> None:
    group = page.get_by_role("group", name=question)
    group.get_by_label(answer, exact=True).check()
    assert group.get_by_label(answer, exact=True).is_checked()
