"""FHIR search as the specification defines it, on every search of /fhir/: paging whose links
reach every result once, `_summary=count`, `total`, `_sort`, `_include`, strict and lenient
handling of what a search does not know, and the IHE MHD ITI-67 parameters of the
DocumentReference search — always within what the policy lets the professional see."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from dmp.fhir import INS_NIR_SYSTEM, PROVISIONAL_ID_SYSTEM
from dmp.models import AuditEntry, Document, DocumentType, Organisation, Vaccination
from dmp.models.record import nir_key
from dmp.policy import Actor
from dmp.services import api_token_create
from tests.personas import make_document
from tests.results_helpers import CREATININE, HBA1C, attach_report

pytestmark = pytest.mark.django_db

DR = "/fhir/DocumentReference"
STRICT = {"HTTP_PREFER": "handling=strict"}


def _bearer(pro) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(actor=Actor(pro.user), label='Cabinet')[1]}"}


def _bundle(response) -> Bundle:
    assert response.status_code == 200, response.content[:400]
    bundle = Bundle.model_validate(response.json())
    assert bundle.type == "searchset"
    return bundle


def _outcome(response, status: int) -> str:
    assert response.status_code == status, response.content[:400]
    assert response["Content-Type"].startswith("application/fhir+json")
    return OperationOutcome.model_validate(response.json()).issue[0].diagnostics


def _link(bundle: Bundle, relation: str) -> str | None:
    return next((link.url for link in bundle.link or [] if link.relation == relation), None)


def _query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query)


def _ids(bundle: Bundle, mode: str = "match") -> list[str]:
    return [entry.resource.id for entry in bundle.entry or [] if entry.search.mode == mode]


def _walk(client, url: str, headers: dict) -> tuple[list[str], Bundle, int]:
    """Every entry of every page, following the next links to the end; each previous link
    leads back to the page before."""
    bundle = _bundle(client.get(url, **headers))
    seen, pages = _ids(bundle), 1
    while (next_url := _link(bundle, "next")) is not None:
        before = bundle
        bundle = _bundle(client.get(next_url, **headers))
        assert _ids(_bundle(client.get(_link(bundle, "previous"), **headers))) == _ids(before)
        seen += _ids(bundle)
        pages += 1
    return seen, bundle, pages


@pytest.fixture
def lab_reports(world) -> list:
    """Seven laboratory reports of dr House's, two values each, a day apart."""
    return [attach_report(make_document(world.record, f"bilan {n}", DocumentType.LAB_REPORT, author=world.dr_house),
                          values=((HBA1C, f"7.{n}", "%"), (CREATININE, f"8{n}", "umol/L")),
                          at=timezone.now() - timedelta(days=n + 1))
            for n in range(7)]


@pytest.fixture
def vaccinations(world) -> list[Vaccination]:
    return [Vaccination.objects.create(record=world.record, vaccine=f"Vaccin {n}", date=date(2020, 1, 1) + timedelta(n))
            for n in range(9)]


# --- paging, _summary=count and total on every search -----------------------------------------

@pytest.mark.parametrize("url", ["/fhir/DocumentReference?patient={pk}&_count=3",
                                 "/fhir/Immunization?patient={pk}&_count=2",
                                 "/fhir/Observation?patient={pk}&_count=4",
                                 "/fhir/DiagnosticReport?patient={pk}&_count=3"])
def test_the_next_links_of_every_search_reach_every_result_exactly_once(client, world, vaccinations, lab_reports,
                                                                       url):
    headers = _bearer(world.dr_house)
    client.get(f"/fhir/Patient/{world.record.pk}", **headers)  # some history for AuditEvent
    url = url.format(pk=world.record.pk)
    whole = _bundle(client.get(url.rsplit("&", 1)[0] + "&_count=500", **headers))
    seen, last, pages = _walk(client, url, headers)
    count = int(dict(_query(url))["_count"])
    assert pages == -(-last.total // count) and pages > 1
    assert len(seen) == len(set(seen)) == last.total
    assert seen == _ids(whole) and whole.total == last.total


def test_the_access_history_pages_follow_one_another(client, world):
    """Reading the history is itself in the history: newer entries push the pages back by one
    per read, so the walk checks the links, not an unchanging list."""
    headers = _bearer(world.dr_house)
    for _ in range(6):
        client.get(f"/fhir/Patient/{world.record.pk}", **headers)
    url = f"/fhir/AuditEvent?patient={world.record.pk}&_count=4"
    bundle, pages = _bundle(client.get(url, **headers)), 1
    while (next_url := _link(bundle, "next")) is not None:
        assert ("_offset", str(4 * pages)) in _query(next_url) and ("_count", "4") in _query(next_url)
        bundle = _bundle(client.get(next_url, **headers))
        assert len(_ids(bundle)) <= 4 and _link(bundle, "previous")
        pages += 1
    assert pages >= 3 and pages * 4 >= bundle.total


@pytest.mark.parametrize("url", ["/fhir/DocumentReference?patient={pk}", "/fhir/AuditEvent?patient={pk}",
                                 "/fhir/Immunization?patient={pk}", "/fhir/Patient?identifier={pid}",
                                 "/fhir/Practitioner?_id={grant}", "/fhir/PractitionerRole?_id={house}",
                                 "/fhir/Organization?_id={facility}", "/fhir/Observation?patient={pk}",
                                 "/fhir/DiagnosticReport?patient={pk}"])
def test_summary_count_answers_the_total_without_entries(client, world, vaccinations, lab_reports, url):
    world.dr_house.facility = Organisation.objects.create(name="Maison de santé", kind=Organisation.Kind.FACILITY,
                                                          finess="590000003", city="Lille")
    world.dr_house.save(update_fields=["facility"])
    headers = _bearer(world.dr_house)
    url = url.format(pk=world.record.pk, pid=world.record.provisional_id, grant=world.dr_grant.pk,
                     house=world.dr_house.pk, facility=world.dr_house.facility_id)
    full = _bundle(client.get(url, **headers))
    counted = _bundle(client.get(f"{url}&_summary=count", **headers))
    if "AuditEvent" in url:  # the first search is in the history the second one counts
        assert counted.total > full.total
    else:
        assert counted.total == full.total >= 1
    assert full.entry
    assert counted.entry is None
    assert _link(counted, "next") is None and ("_summary", "count") in _query(_link(counted, "self"))


def test_the_count_is_bounded_and_the_self_link_shows_only_what_was_applied(client, world):
    headers = _bearer(world.dr_house)
    for n in range(3):
        make_document(world.record, f"lettre {n}", author=world.dr_house)
    url = (f"{DR}?patient={world.record.pk}&category=reports&_count=2&_sort=-date&unknown=1&_elements=id"
           "&_include=DocumentReference:author&_include=Foo:bar&_summary=data")
    bundle = _bundle(client.get(url, **headers))
    assert len(_ids(bundle)) == 2
    assert _query(_link(bundle, "self")) == [
        ("patient", str(world.record.pk)), ("category", "reports"), ("_sort", "-date"),
        ("_include", "DocumentReference:author"), ("_count", "2"), ("_offset", "0")]
    assert _link(bundle, "next") and "unknown" not in _link(bundle, "next")
    big = _bundle(client.get(f"{DR}?patient={world.record.pk}&_count=100000", **headers))
    assert ("_count", "100") in _query(_link(big, "self"))


# --- strict and lenient handling ------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "/fhir/DocumentReference?patient={pk}&colour=blue", "/fhir/DocumentReference?patient={pk}&contenttype=x",
    "/fhir/DocumentReference?patient={pk}&category:text=x", "/fhir/DocumentReference?patient={pk}&related:not=x",
    "/fhir/DocumentReference?patient={pk}&author.family:above=x",
    "/fhir/DocumentReference?patient={pk}&_sort=title", "/fhir/DocumentReference?patient={pk}&_include=*",
    "/fhir/DocumentReference?patient={pk}&_revinclude=Provenance:target",
    "/fhir/DocumentReference?patient={pk}&_summary=true",
    "/fhir/AuditEvent?patient={pk}&date=ge2020", "/fhir/Immunization?patient={pk}&vaccine-code=x",
    "/fhir/Patient?identifier={pid}&name=Martin", "/fhir/Practitioner?_id={house}&name=House",
])
def test_strict_handling_refuses_what_the_search_does_not_know_and_lenient_ignores_it(client, world, vaccinations,
                                                                                     url):
    headers = _bearer(world.dr_house)
    url = url.format(pk=world.record.pk, pid=world.record.provisional_id, house=world.dr_house.pk)
    message = _outcome(client.get(url, **headers, **STRICT), 400)
    assert "unsupported" in message.lower() or "unknown" in message.lower()
    lenient = _bundle(client.get(url, **headers))
    assert lenient.total >= 1
    name = url.rsplit("&", 1)[1].split("=")[0]
    assert all(name not in dict(_query(link.url)) for link in lenient.link)
    # The same search without the parameter, strict: accepted, the same results.
    strict = _bundle(client.get(url.rsplit("&", 1)[0], **headers, **STRICT))
    if "AuditEvent" not in url:  # (the history grows with each read of it)
        assert _ids(strict) == _ids(lenient) and strict.total == lenient.total


def test_strict_handling_changes_no_refusal(client, world):
    headers = _bearer(world.stranger)
    for extra in ({}, STRICT):
        assert _outcome(client.get(DR, {"patient": world.record.pk}, **headers, **extra), 404) == "Resource not found."


# --- _sort and _include ---------------------------------------------------------------------

def test_sort_by_date_added_both_ways_and_by_the_act_date_by_default(client, world):
    headers = _bearer(world.dr_house)
    now = timezone.now()
    ages = {world.docs["consultation"].pk: 5, world.docs["imaging"].pk: 1, world.docs["hidden"].pk: 30}
    for pk, days in ages.items():
        Document.objects.filter(pk=pk).update(added_at=now - timedelta(days=days),
                                              act_date=now.date() - timedelta(days=100 - days))
    listed = {int(i) for i in _ids(_bundle(client.get(DR, {"patient": world.record.pk}, **headers)))}
    added = dict(Document.objects.filter(pk__in=listed).values_list("pk", "added_at"))
    acted = dict(Document.objects.filter(pk__in=listed).values_list("pk", "act_date"))
    def sorted_by(sort: str) -> list[int]:
        return [int(i) for i in _ids(_bundle(client.get(DR, {"patient": world.record.pk, "_sort": sort}, **headers)))]

    oldest_first = sorted_by("date")
    assert oldest_first == sorted(listed, key=lambda pk: (added[pk], pk))
    newest_first = sorted_by("-date")
    assert newest_first == oldest_first[::-1]
    default = [int(i) for i in _ids(_bundle(client.get(DR, {"patient": world.record.pk}, **headers)))]
    assert default == sorted(listed, key=lambda pk: (acted[pk], pk), reverse=True) != newest_first


def test_include_adds_the_patient_and_the_authors_once(client, world):
    headers = _bearer(world.dr_house)
    params = {"patient": world.record.pk, "_include": ["DocumentReference:patient", "DocumentReference:author"]}
    bundle = _bundle(client.get(DR, params, **headers))
    included = [(entry.resource.get_resource_type(), entry.resource.id) for entry in bundle.entry
                if entry.search.mode == "include"]
    authors = {int(entry.resource.author[0].reference.split("/")[1]) for entry in bundle.entry
               if entry.search.mode == "match" and entry.resource.author
               and entry.resource.author[0].reference.startswith("Practitioner/")}
    assert ("Patient", str(world.record.pk)) in included
    assert sorted(pk for kind, pk in included if kind == "Practitioner") == sorted(str(pk) for pk in authors)
    assert len(included) == len(set(included)) == 1 + len(authors)
    assert bundle.total == len(_ids(bundle))  # the included resources are not counted
    # Each included author can be read.
    for pk in authors:
        assert client.get(f"/fhir/Practitioner/{pk}", **headers).status_code == 200


# --- ITI-67 parameters ----------------------------------------------------------------------

def test_date_is_the_date_added_and_period_the_act_date(client, world):
    headers = _bearer(world.dr_house)
    doc = world.docs["consultation"]
    Document.objects.filter(pk=doc.pk).update(added_at=timezone.make_aware(timezone.datetime(2021, 6, 15, 10)),
                                              act_date=date(2019, 3, 3))
    by = lambda **p: {int(i) for i in _ids(_bundle(client.get(DR, {"patient": world.record.pk, **p}, **headers)))}  # noqa: E731
    assert doc.pk in by(date="2021-06-15") and doc.pk in by(date="2021-06") and doc.pk not in by(date="2019-03-03")
    assert doc.pk in by(period="2019-03-03") and doc.pk not in by(period="2021-06-15")
    assert doc.pk not in by(date="ne2021") and doc.pk in by(date="lt2021-06-16")
    assert doc.pk not in by(date="gt2021-06-15")
    assert _outcome(client.get(DR, {"patient": world.record.pk, "date": "15/06/2021"}, **headers), 400)


def test_patient_identifier_finds_the_record_the_professional_may_open_and_nothing_else(client, world):
    record = world.record
    nir13 = "2700575123456"
    record.nir = f"{nir13}{nir_key(nir13):02d}"
    record.save(update_fields=["nir"])
    headers = _bearer(world.dr_house)
    expected = _ids(_bundle(client.get(DR, {"patient": record.pk}, **headers)))
    for identifier in (f"{INS_NIR_SYSTEM}|{record.nir}", f"{PROVISIONAL_ID_SYSTEM}|{record.provisional_id}"):
        bundle = _bundle(client.get(DR, {"patient.identifier": identifier}, **headers))
        assert _ids(bundle) == expected
        # The identifier is not repeated in the links: the record's id says which patient.
        assert all(record.nir not in link.url and "identifier" not in link.url for link in bundle.link)
    # A stranger, a blocked physiotherapist: an empty Bundle, like a NIR nobody holds.
    for pro in (world.stranger, world.blocked_kine):
        refused = _bundle(client.get(DR, {"patient.identifier": f"{INS_NIR_SYSTEM}|{record.nir}"}, **_bearer(pro)))
        assert refused.total == 0 and not refused.entry
    other_nir13 = "1850775123456"
    other = f"{INS_NIR_SYSTEM}|{other_nir13}{nir_key(other_nir13):02d}"
    nobody = _bundle(client.get(DR, {"patient.identifier": other}, **headers))
    assert nobody.total == 0
    assert _outcome(client.get(DR, {"patient.identifier": "urn:other|123"}, **headers), 400)
    assert _outcome(client.get(DR, {"patient.identifier": f"{INS_NIR_SYSTEM}|{record.nir}", "patient": record.pk},
                               **headers), 400)


def test_author_names_status_category_and_type(client, world):
    headers = _bearer(world.dr_house)
    grant = world.dr_grant.user
    grant.first_name, grant.last_name = "Anna", "Grant"
    grant.save(update_fields=["first_name", "last_name"])
    by = lambda **p: {int(i) for i in _ids(_bundle(client.get(DR, {"patient": world.record.pk, **p}, **headers)))}  # noqa: E731
    everything = by()
    by_grant = {pk for pk in everything if Document.objects.get(pk=pk).author_professional_id == world.dr_grant.pk}
    assert by_grant and by_grant != everything
    assert by(**{"author.family": "gra"}) == by_grant == by(**{"author.family:exact": "Grant"})
    assert by(**{"author.family:exact": "Gra"}) == set()
    assert by(**{"author.given": "ANN", "author.family": "Grant"}) == by_grant
    assert by(**{"author.given": "Bob"}) == set()
    assert by(status="current") == everything
    assert by(status="superseded") == set() == by(status="entered-in-error")
    assert by(category="urn:dmp:space|imaging", type="urn:dmp:document-type|imaging_report") == by(category="imaging")
    # Never more than the policy lets the professional see: the physiotherapist, by name.
    kine = {int(i) for i in _ids(_bundle(client.get(DR, {"patient": world.record.pk, "author.family": "Grant"},
                                                    **_bearer(world.kine))))}
    assert world.docs["hidden"].pk not in kine and world.docs["consultation"].pk not in kine


def test_the_search_is_one_read_of_the_record_in_its_history(client, world):
    headers = _bearer(world.dr_house)
    before = AuditEntry.objects.filter(actor=world.dr_house.user).count()
    _bundle(client.get(DR, {"patient": world.record.pk, "_include": "DocumentReference:author", "_count": 2},
                       **headers))
    assert AuditEntry.objects.filter(actor=world.dr_house.user).count() == before + 1
