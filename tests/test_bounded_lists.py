"""Every list bounded (issue 16): the lists a person's page grows with (a médecin traitant's
patients, a guardian's records, a professional's API tokens) show a page of
`LIST_PAGE_SIZE` rows at a time, in a stable order, the page number the only thing in the URL.
The counter dashboard has its own tests (tests/test_counter_dashboard.py)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dmp.models import ApiToken, CareAuthorisation, LegalRepresentative, Record
from dmp.paging import LIST_PAGE_SIZE, page_number

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def _records(count: int, family_name: str = "Patient") -> list[Record]:
    return Record.objects.bulk_create([
        Record(family_name=f"{family_name}{i:03d}", given_names="Test", birth_date=date(1990, 1, 1))
        for i in range(count)
    ])


def _patients(body: str) -> list[str]:
    """The record links of the professional's "my patients" list."""
    listing = re.search(r'<ul class="pro-patient-list">(.*?)</ul>', body, re.S).group(1)
    return re.findall(r'href="(/pro/records/\d+/)"', listing)


def test_page_number_reads_a_number_only():
    assert [page_number(v) for v in ("2", "", "0", "-1", "x", "1e3", None, "100000")] == [2, 1, 1, 1, 1, 1, 1, 1]


def test_a_doctors_patients_come_a_page_at_a_time(world, django_assert_max_num_queries):
    records = _records(LIST_PAGE_SIZE + 20)
    CareAuthorisation.objects.bulk_create([
        CareAuthorisation(record=r, professional=world.dr_grant, kind=CareAuthorisation.Kind.GRANTED_BY_PATIENT)
        for r in records
    ])
    client = _client(world.dr_grant.user)
    home = reverse("portal_pro:home")
    first = client.get(home).content.decode()
    second = client.get(home, {"page": 2}).content.decode()
    first_rows, second_rows = _patients(first), _patients(second)
    followed = Record.objects.filter(care_authorisations__professional=world.dr_grant).distinct().count()
    assert len(first_rows) == LIST_PAGE_SIZE and len(second_rows) == followed - LIST_PAGE_SIZE >= 20
    assert not set(first_rows) & set(second_rows)  # alphabetical, then by pk: stable
    assert f'href="{home}?page=2" rel="next"' in first and f'href="{home}?page=1" rel="prev"' in second
    with django_assert_max_num_queries(30) as few:
        client.get(home, {"page": 2})
    CareAuthorisation.objects.bulk_create([
        CareAuthorisation(record=r, professional=world.dr_grant, kind=CareAuthorisation.Kind.GRANTED_BY_PATIENT)
        for r in _records(200, "Other")
    ])
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(home, {"page": 3})


def test_a_guardian_sees_a_few_other_records_on_each_page_and_all_on_the_home_page(world):
    records = _records(LIST_PAGE_SIZE + 5, "Ward")
    LegalRepresentative.objects.bulk_create([
        LegalRepresentative(record=r, user=world.alice, relationship=LegalRepresentative.Relationship.GUARDIAN)
        for r in records
    ])
    client = _client(world.alice)
    home = reverse("portal_patient:home")
    first = client.get(home).content.decode()
    second = client.get(home, {"page": 2}).content.decode()
    everyone = re.findall(r'href="/patient/records/(\d+)/">', first) + re.findall(
        r'href="/patient/records/(\d+)/">', second)
    assert len(everyone) == len(set(everyone)) == LIST_PAGE_SIZE + 6  # her own record too
    assert f'href="{home}?page=2" rel="next"' in first
    page = client.get(reverse("portal_patient:record", args=[world.record.pk])).content.decode()
    switch = re.search(r'<p class="record-switch">(.*?)</p>', page, re.S).group(1)
    assert len(re.findall(r'href="/patient/records/\d+/"', switch)) == 10
    assert f'href="{home}"' in switch and "The records you look after" in switch


def test_api_tokens_come_a_page_at_a_time(world):
    now = timezone.now()
    ApiToken.objects.bulk_create([
        ApiToken(professional=world.dr_house, label=f"old {i}", prefix=f"p{i:05d}", key_hash=f"{i:064d}",
                 created_at=now - timedelta(days=400 + i), expires_at=now - timedelta(days=300 + i),
                 revoked_at=now - timedelta(days=300 + i))
        for i in range(LIST_PAGE_SIZE + 3)
    ])
    client = _client(world.dr_house.user)
    url = reverse("portal_pro:api_tokens")
    first = client.get(url).content.decode()
    third = client.get(url, {"page": 2}).content.decode()
    assert first.count("<code>dmp_") == LIST_PAGE_SIZE and third.count("<code>dmp_") == 3
    assert f'href="{url}?page=2" rel="next"' in first
