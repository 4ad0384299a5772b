"""Query ceilings on the FHIR searches that grow with a record: a documents search with its
`_include`s, a Patient search and a Practitioner search with `_revinclude`. The number of
queries must be the same at 5 documents and at 200: nothing is loaded one document at a time."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dmp.models import Organisation
from dmp.policy import Actor
from dmp.services import api_token_create
from tests.personas import make_documents

pytestmark = pytest.mark.django_db

# The most queries each search makes, whatever the number of documents, as measured: the
# token and its hourly count, the policy's questions, the audit entries, the page, and one query
# per kind of resource included. The Practitioner search asks the policy about the author
# once for the match and once for the documents it adds.
CEILINGS = {"documents": 9, "patient": 16, "practitioner": 19}


def _bearer(pro) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(actor=Actor(pro.user), label='Cabinet')[1]}"}


def _requests(world) -> dict[str, tuple[str, dict]]:
    return {
        "documents": ("/fhir/DocumentReference", {"patient": world.record.pk, "_count": 100, "_include": [
            "DocumentReference:patient", "DocumentReference:author"]}),
        "patient": ("/fhir/Patient", {"identifier": world.record.provisional_id,
                                      "_revinclude": "DocumentReference:patient"}),
        "practitioner": ("/fhir/Practitioner", {"_id": world.dr_grant.pk, "_revinclude": "DocumentReference:author"}),
    }


def _with_documents(world, count: int) -> None:
    """`count` more documents by Dr Grant (who works in a facility) on Alice's record."""
    facility = Organisation.objects.create(name="Clinique du Parc", kind=Organisation.Kind.FACILITY, finess="590000001")
    world.dr_grant.facility = facility
    world.dr_grant.save(update_fields=["facility"])
    make_documents(world.record, [f"report {n}" for n in range(count)], author=world.dr_grant)


def _queries(client, headers, path: str, params: dict) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(path, params, **headers)
    assert response.status_code == 200, response.content[:300]
    assert len(response.json().get("entry", [])) > 5  # the documents are there
    return len(context.captured_queries)


@pytest.mark.parametrize("search", sorted(CEILINGS))
def test_a_search_makes_as_many_queries_at_200_documents_as_at_5(client, world, search, django_assert_max_num_queries):
    headers = _bearer(world.dr_house)
    path, params = _requests(world)[search]
    _with_documents(world, 5)
    client.get(path, params, **headers)  # the first request of a token does a little more, once
    few = _queries(client, headers, path, params)
    with django_assert_max_num_queries(CEILINGS[search]):
        client.get(path, params, **headers)
    make_documents(world.record, [f"more {n}" for n in range(195)], author=world.dr_grant)
    many = _queries(client, headers, path, params)
    assert (search, many) == (search, few)
    with django_assert_max_num_queries(CEILINGS[search]):
        client.get(path, params, **headers)
