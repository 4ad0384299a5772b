"""Practice software on an API token has its own hourly limit, per token, and is not stopped by
the humans' record-search limit; beyond its own, 429 with Retry-After and an OperationOutcome."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from dmp.policy import Actor
from dmp.services import api_token_create

pytestmark = pytest.mark.django_db

# The humans' record-search limit, smaller than configured (60, asserted by
# tests/test_lockout.py) so that a token goes well past it in a few dozen requests, not hundreds:
# the limits count requests, and what is proven is the same at any size.
HUMAN_LIMIT = 10


@pytest.fixture
def human_limit(settings) -> int:
    settings.RECORD_SEARCHES_PER_HOUR = HUMAN_LIMIT
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "record_search": f"{HUMAN_LIMIT}/1h/user"}
    return HUMAN_LIMIT


def _bearer(pro, label="Cabinet") -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(actor=Actor(pro.user), label=label)[1]}"}


def _lookup(client, world, headers):
    return client.get("/fhir/Patient", {"identifier": world.record.provisional_id}, **headers)


def test_a_token_doing_twice_the_human_limit_of_lookups_is_not_stopped_by_it_but_by_its_own(
        client, world, settings, human_limit):
    lookups = 2 * human_limit
    settings.API_TOKEN_REQUESTS_PER_HOUR = lookups + 5
    headers = _bearer(world.dr_house)
    for n in range(lookups):
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


def test_the_same_lookups_from_a_session_keep_the_human_limit(client, world, settings, human_limit):
    """The browser's session is a person: the record-search limit applies, as in the portal."""
    settings.API_TOKEN_REQUESTS_PER_HOUR = 1
    client.force_login(world.dr_house.user)
    statuses = [_lookup(client, world, {}).status_code for _ in range(human_limit + 1)]
    assert statuses[:-1] == [200] * human_limit
    assert statuses[-1] == 429


def test_a_token_may_make_ten_thousand_requests_an_hour_by_default():
    from dmp.settings import API_TOKEN_REQUESTS_PER_HOUR

    assert API_TOKEN_REQUESTS_PER_HOUR == 10_000
