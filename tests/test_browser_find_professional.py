"""A patient finds a professional by name and gives them access, in Debian's Chromium, without
the words reaching the address bar, on a small phone's screen."""

from __future__ import annotations

import pytest

from dmp.models import CareAuthorisation
from tests.browser import SMALL_SCREEN, log_in_with_sms_code, no_horizontal_scroll
from tests.personas import make_professional


@pytest.mark.django_db(transaction=True)
def test_a_patient_finds_a_physiotherapist_by_name_and_gives_her_access(live_server, page, world, sms_outbox):
    for username, first, last, town in (("hl_a", "Hélène", "Lefèvre", "Lille"),
                                        ("hl_b", "Helene", "Lefevre", "Roubaix")):
        professional = make_professional(username, "physiotherapist", second_factor=False, town=town)
        professional.user.first_name, professional.user.last_name = first, last
        professional.user.save(update_fields=["first_name", "last_name"])
    page.set_viewport_size({"width": SMALL_SCREEN, "height": 800})
    log_in_with_sms_code(page, live_server.url, "alice_martin", sms_outbox)
    page.wait_for_url(f"**/patient/records/{world.record.pk}/")
    page.goto(f"{live_server.url}/patient/records/{world.record.pk}/manage/")

    page.fill("input[name=grant-name]", "lefevre")
    page.locator("#access form.find-form button[type=submit]").click()
    found = page.locator("#access .find-results li.standing")
    assert found.count() == 2
    assert "lefevre" not in page.url.lower()
    assert no_horizontal_scroll(page)

    page.fill("input[name=grant-name]", "hélène lefèvre")
    page.fill("input[name=grant-town]", "roubaix")
    page.locator("#access form.find-form button[type=submit]").click()
    assert found.count() == 1 and "Roubaix" in found.inner_text()
    found.locator("button[type=submit]").click()
    page.wait_for_url(f"**/patient/records/{world.record.pk}/manage/#access")
    assert "roubaix" not in page.url.lower()
    assert CareAuthorisation.objects.filter(record=world.record, professional__user__username="hl_b").exists()
    assert not CareAuthorisation.objects.filter(record=world.record, professional__user__username="hl_a").exists()
