"""dr.bernard (logged in as the screen's own browser test does) opens the demo patient's
screen: the last HbA1c value and its date are there without a click, and one click opens the
results page (issue 18)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django.utils import formats, timezone, translation


@pytest.mark.django_db(transaction=True)
def test_dr_bernard_reads_the_last_hba1c_without_a_click_and_opens_the_results(live_server, page):
    from dmp import demo
    from dmp.models import LabObservation, Record, User

    demo.seed_demo()
    record = Record.objects.get(holder__username=demo.CHRONIC)
    last = LabObservation.objects.filter(record=record, code="4548-4").order_by("-effective_at").first()
    with translation.override("fr"):
        value = formats.localize(last.quantity)
        day = formats.date_format(timezone.localtime(last.effective_at), "SHORT_DATE_FORMAT")

    page.set_viewport_size({"width": 1366, "height": 768})
    client = Client()  # logged in as the session a login makes (the demo's passwords are not the tests')
    client.force_login(User.objects.get(username=demo.GP_TREATING))
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": live_server.url}])
    page.goto(f"{live_server.url}/pro/records/{record.pk}/")
    row = page.locator(".ps-results tr", has_text="HbA1c")
    assert row.is_visible()
    assert f"{value} %" in row.inner_text() and day in row.inner_text()
    assert row.locator("svg.trend[role=img]").is_visible()
    assert page.evaluate("document.documentElement.scrollHeight") <= 768  # still one screen

    page.locator(".ps-results a.ps-more").click()
    page.wait_for_url(f"**/pro/records/{record.pk}/results/")
    assert page.locator(".result-analyte h2", has_text="HbA1c").is_visible()
    assert page.locator(".result-analyte", has_text="HbA1c").locator("svg.trend").is_visible()


@pytest.mark.django_db(transaction=True)
def test_on_a_phone_the_patient_reads_each_value_and_opens_its_report(live_server, page):
    """A phone hides a wide table's second and fifth columns (static/css/dmp.css): the results
    table stacks its cells instead, so her value and the link to its report stay."""
    from dmp import demo
    from dmp.models import LabObservation, Record, User

    demo.seed_demo()
    record = Record.objects.get(holder__username=demo.CHRONIC)
    last = LabObservation.objects.filter(record=record, code="2823-3").order_by("-effective_at").first()
    with translation.override("fr"):
        value = formats.localize(last.quantity)

    page.set_viewport_size({"width": 390, "height": 844})
    client = Client()
    client.force_login(User.objects.get(username=demo.CHRONIC))
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": live_server.url}])
    page.goto(f"{live_server.url}/patient/records/{record.pk}/results/")
    potassium = page.locator(".result-analyte", has_text="Potassium")
    first = potassium.locator("tbody tr").first
    assert first.locator(".result-value").is_visible()
    assert value in first.locator(".result-value").inner_text()
    assert first.get_by_role("link", name="Ouvrir le compte rendu").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing off the side
