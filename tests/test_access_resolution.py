"""One place resolves who asks and what they may open (dmp/http.py): `portal_view` and
`record_view` give a view its actor and record (403 outside the portal, 404 for a record the
policy refuses), and `AccessRefusedMiddleware` turns a service's refusal raised inside a page
into the same 404 as a record that does not exist."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dmp import services
from dmp.models import Record, Synthesis
from dmp.policy import Decision

pytestmark = pytest.mark.django_db


def _refuse(**kwargs):
    raise services.AccessRefused(Decision(False, "refused_for_the_test", reason="Refused for the test."))


def _page(response) -> str:
    return response.templates[0].name


def _missing_record_page(client, portal: str) -> str:
    """What the account gets for a record that does not exist: the page a refusal must look like."""
    missing = Record.objects.order_by("-pk").first().pk + 1000
    response = client.get(reverse(f"{portal}:record", args=[missing]))
    assert response.status_code == 404
    return _page(response)


def test_a_service_refusal_inside_a_patient_page_is_the_ordinary_404(client, world, monkeypatch):
    client.force_login(world.alice)
    monkeypatch.setattr(services, "record_notifications_set", _refuse)
    response = client.post(reverse("portal_patient:notifications", args=[world.record.pk]), {"by_sms": "on"})
    assert response.status_code == 404
    assert _page(response) == _missing_record_page(client, "portal_patient")
    assert Record.objects.get(pk=world.record.pk).notify_by_email  # nothing was changed


def test_a_service_refusal_inside_a_pro_page_is_the_ordinary_404(client, world, monkeypatch):
    client.force_login(world.dr_house.user)
    versions = Synthesis.objects.filter(record=world.record).count()
    monkeypatch.setattr(services, "synthesis_write", _refuse)
    response = client.post(reverse("portal_pro:synthesis_edit", args=[world.record.pk]), {
        "save": "1", "base_version": str(versions), "current_treatments": "Metformine", "allergies": "",
        "personal_history": "", "family_history": "", "vaccinations": "", "points_of_attention": "",
    })
    assert response.status_code == 404
    assert _page(response) == _missing_record_page(client, "portal_pro")
    assert Synthesis.objects.filter(record=world.record).count() == versions


# (persona, a page of another portal): an account is refused a portal that is not its own,
# before any record is looked at.
WRONG_PORTAL = [
    ("dr_house", "portal_patient:record"),
    ("dr_house", "portal_patient:manage"),
    ("alice", "portal_pro:record"),
    ("alice", "portal_pro:synthesis"),
    ("alice", "social_workers:counter_deposit"),
    ("dr_house", "social_workers:counter_reprint"),
]


@pytest.mark.parametrize(("persona", "url_name"), WRONG_PORTAL)
def test_an_account_of_another_portal_gets_403_on_a_record_page(client, world, persona, url_name):
    user = getattr(world, persona)
    client.force_login(getattr(user, "user", user))
    assert client.get(reverse(url_name, args=[world.record.pk])).status_code == 403


def test_a_record_page_still_asks_to_log_in_first(client, world):
    response = client.get(reverse("portal_pro:record", args=[world.record.pk]))
    assert response.status_code == 302 and reverse("account_login") in response["Location"]
