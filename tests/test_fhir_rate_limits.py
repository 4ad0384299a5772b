"""Practice software on an API token has its own hourly limit, per token, and is not stopped by
the humans' record-search limit; beyond its own, 429 with Retry-After and an OperationOutcome."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from dmp.policy import Actor
from dmp.services import api_token_create

pytestmark = pytest.mark.django_db


def _bearer(pro, label="Cabinet") -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(actor=Actor(pro.user), label=label)[1]}"}


def _lookup(client, world, headers):
    return client.get("/fhir/Patient", {"identifier": world.record.provisional_id}, **headers)


def test_a_token_doing_200_lookups_is_not_stopped_by_the_human_limit_but_by_its_own(client, world, settings):
    settings.RECORD_SEARCHES_PER_HOUR = 60  # the humans' limit, as configured
    settings.API_TOKEN_REQUESTS_PER_HOUR = 205
    headers = _bearer(world.dr_house)
    for n in range(200):
        response = _lookup(client, world, headers)
        assert response.status_code == 200, (n, response.content[:200])
        assert response.json()["total"] == 1
    for _ in range(5):
        assert _lookup(client, world, headers).status_code == 200
    refused = _lookup(client, world, headers)
    assert refused.status_code == 429
    assert refused["Content-Type"].startswith("application/fhir+json")
    assert OperationOutcome.model_validate(refused.json()).issue[0].code == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 3600
    # Every request counts, not only searches: a read is refused too, for that token only.
    assert client.get(f"/fhir/Patient/{world.record.pk}", **headers).status_code == 429
    assert _lookup(client, world, _bearer(world.dr_house, "Second poste")).status_code == 200
    assert _lookup(client, world, _bearer(world.dr_grant)).status_code == 200


def test_the_same_lookups_from_a_session_keep_the_human_limit(client, world, settings):
    """The browser's session is a person: the record-search limit applies, as in the portal."""
    settings.API_TOKEN_REQUESTS_PER_HOUR = 1
    client.force_login(world.dr_house.user)
    statuses = [_lookup(client, world, {}).status_code for _ in range(settings.RECORD_SEARCHES_PER_HOUR + 1)]
    assert statuses[:-1] == [200] * settings.RECORD_SEARCHES_PER_HOUR
    assert statuses[-1] == 429


def test_a_token_may_make_ten_thousand_requests_an_hour_by_default():
    from dmp.settings import API_TOKEN_REQUESTS_PER_HOUR

    assert API_TOKEN_REQUESTS_PER_HOUR == 10_000
