"""The scale harness in bench/ keeps working as the models change (bench/README.md, "Scale
harness"): the generator, run tiny against the test database, makes the rows it promises with
audit chains the ledger's verifier accepts, and the page measurement counts queries. No timing
is asserted here: the figures are bench/README.md's."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from dmp.audit import verify_ledger
from dmp.models import AuditChainHead, AuditEntry, Document, DocumentSearchTerm, Record, TreatingDoctor

BENCH = Path(__file__).resolve().parent.parent / "bench"
PROBES = (5, 50)

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


@pytest.fixture
def harness(monkeypatch):
    """bench/'s scripts import each other as scripts do (`from _setup import …`)."""
    monkeypatch.syspath_prepend(str(BENCH))
    import generate
    import pages

    return generate, pages


@pytest.fixture
def dataset(harness):
    generate, _pages = harness
    return generate.generate(records=12, documents=200, audit=300, probes=PROBES, vacuum=False)


def test_generator_makes_the_records_documents_and_entries_asked(harness, dataset):
    generate, _pages = harness
    assert Record.objects.count() == 12
    for size in PROBES:
        record = Record.objects.get(holder__username=generate.PROBE_HOLDER.format(size))
        assert Document.objects.filter(record=record, is_latest_version=True).count() == size
        assert TreatingDoctor.objects.active().get(record=record).professional.user.username == generate.CLINICIAN
        assert AuditEntry.objects.filter(record_id_ref=record.pk).count() == size
    # The others share the rest, 0 to twice the mean each: about what was asked, not exactly.
    assert 100 < Document.objects.filter(is_latest_version=True).count() < 400
    assert 150 < AuditEntry.objects.count() < 500
    assert Document.objects.filter(version=2, replaces__isnull=False).exists()
    assert dataset.rows["dmp_auditentry"] == AuditEntry.objects.count()


def test_generated_audit_chains_verify_and_are_signed(dataset):
    report = verify_ledger(full=True)
    assert report.problems == []
    assert report.entries == AuditEntry.objects.count()
    assert report.chains == AuditChainHead.objects.count()
    assert report.checkpoints == 1


def test_generated_probe_files_are_readable_and_searchable(harness, dataset):
    generate, _pages = harness
    record = Record.objects.get(holder__username=generate.PROBE_HOLDER.format(5))
    document = Document.objects.filter(record=record).order_by("pk").first()
    with document.file.open("rb") as stored:
        assert stored.read().startswith(b"%PDF-1.4")
    assert DocumentSearchTerm.objects.filter(document=document).exists()


def test_generator_resumes_without_making_anything_twice(harness, dataset):
    generate, _pages = harness
    entries = AuditEntry.objects.count()
    generate.generate(records=12, documents=200, audit=300, probes=PROBES, vacuum=False)
    assert Record.objects.count() == 12
    assert AuditEntry.objects.count() == entries
    generate.generate(records=14, documents=200, audit=300, probes=PROBES, vacuum=False)
    assert Record.objects.count() == 14
    assert verify_ledger(full=True).problems == []


def test_harness_refuses_a_database_not_named_bench(harness, monkeypatch):
    import _setup

    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dmp")
    with pytest.raises(SystemExit):
        _setup.bench_database_name()


def test_page_measurement_counts_the_queries_of_a_page(harness, dataset):
    generate, pages = harness
    records = pages.probe_records(PROBES)
    sessions = pages.open_sessions(records)
    try:
        screen = pages.measure(sessions.clinician, f"/pro/records/{records[50].pk}/", runs=2)
        fhir = pages.measure(sessions.anonymous, f"/fhir/DocumentReference?patient={records[50].pk}", runs=2,
                             **sessions.api_headers)
    finally:
        pages.close_sessions(sessions)
    assert screen.status == 200 and screen.queries > 0
    assert fhir.status == 200 and fhir.queries > 0


def test_page_measurement_reports_a_refusal_as_it_is(harness, dataset):
    """A page the session may not see is measured as its 404, not as the page."""
    generate, pages = harness
    records = pages.probe_records(PROBES)
    other_holder = Client()
    other_holder.force_login(records[50].holder)
    refused = pages.measure(other_holder, f"/patient/records/{records[5].pk}/documents/", runs=2)
    assert refused.status == 404
