"""The insurer's reimbursement feed (docs/reimbursement_feed.md): the generator's files import
cleanly, importing the same file twice changes nothing, a corrected line updates its row, bad
lines are reported by number and skipped while the rest is imported; the inbox, the command and
the 24 months pulled when a record gets a NIR."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from dmp import tasks
from dmp.models import Record, ReimbursementLine
from dmp.policy import Actor
from dmp.reimbursement_feed import MEDICINES, generate_lines, is_cip13, write_lines
from dmp.services import record_create, record_nir_attach
from dmp.services.reimbursements import reimbursement_feed_import, reimbursement_inbox_import
from tests.outbox import notifications_sent_at_once  # noqa: F401 - autouse: tasks run at commit

NIR = "255081416802538"
TODAY = date(2026, 3, 15)
CIP13 = MEDICINES[1][0]
WRONG_CIP13 = CIP13[:-1] + str((int(CIP13[-1]) + 1) % 10)


@pytest.fixture
def alice_nir(world):
    Record.objects.filter(pk=world.record.pk).update(nir=NIR)
    return NIR


def feed(lines) -> list[str]:
    out = io.StringIO()
    write_lines(lines, out)
    return out.getvalue().splitlines()


def snapshot() -> set[tuple]:
    return set(ReimbursementLine.objects.values_list("external_id", "record_id", "date", "kind", "code", "label",
                                                     "quantity", "amount", "provider"))


def line(**values) -> str:
    base = {"line_id": "CPAM59-1", "record": NIR, "date": "2026-01-06", "kind": "medicine",
            "code": CIP13, "label": "METFORMINE 1000 mg",
            "quantity": 1, "amount": "7.62", "provider": "Pharmacie du Vieux-Lille"}
    return json.dumps({k: v for k, v in (base | values).items() if v is not ...})


@pytest.mark.django_db
def test_the_generators_24_months_import_cleanly_and_look_real(world, alice_nir):
    lines = list(generate_lines([NIR], today=TODAY, months=24))
    report = reimbursement_feed_import(feed(lines), today=TODAY)
    assert report.errors == [] and report.created == len(lines) > 24
    rows = ReimbursementLine.objects.filter(record=world.record)
    months = {(d.year, d.month) for d in rows.values_list("date", flat=True)}
    assert len(months) == 24 and max(rows.values_list("date", flat=True)) <= TODAY
    assert all(is_cip13(code) for code in rows.filter(kind="medicine").values_list("code", flat=True))
    assert rows.filter(kind="care").exists()
    # The same records, months and day make the same file.
    assert list(generate_lines([NIR], today=TODAY, months=24)) == lines


@pytest.mark.django_db
def test_importing_the_same_file_twice_changes_nothing(world, alice_nir):
    text = feed(generate_lines([NIR, world.leo_record.provisional_id], today=TODAY, months=3))
    first = reimbursement_feed_import(text, today=TODAY)
    before = snapshot()
    second = reimbursement_feed_import(text, today=TODAY)
    assert (second.created, second.updated, second.unchanged, second.errors) == (0, 0, first.created, [])
    assert snapshot() == before and len(before) == first.created


@pytest.mark.django_db
def test_a_corrected_line_updates_the_line_it_corrects(world, alice_nir):
    reimbursement_feed_import([line()], today=TODAY)
    report = reimbursement_feed_import([line(amount="6.10")], today=TODAY)
    assert (report.created, report.updated) == (0, 1)
    [row] = ReimbursementLine.objects.filter(external_id="CPAM59-1")
    assert str(row.amount) == "6.10"


@pytest.mark.django_db
def test_bad_lines_are_reported_by_number_and_skipped_the_rest_imported(world, alice_nir):
    Record.objects.filter(pk=world.leo_record.pk).update(state="closed", closed_at=timezone.now())
    lines = [
        line(line_id="ok-1"),                                            # 1
        "{not json",                                                     # 2
        line(line_id="u", record="PAAAAAAAAAAA"),                        # 3 unknown record
        line(line_id="d", date="2026-02-30"),                            # 4 bad date
        line(line_id="f", date=(TODAY + timedelta(days=1)).isoformat()),  # 5 future
        line(line_id="a", amount="12,50"),                               # 6 bad amount
        line(line_id="n", amount="-3.00"),                               # 7 negative
        line(line_id="m", label=...),                                    # 8 missing field
        line(line_id="c", record=world.leo_record.provisional_id),       # 9 closed record
        line(line_id="k", code=WRONG_CIP13),                             # 10 wrong CIP13 check digit
        line(line_id="t", kind="hospital"),                              # 11 unknown kind
        "",                                                              # 12 blank: ignored
        line(line_id="ok-1", amount="1.00"),                             # 13 same id twice in a file
        line(line_id="ok-2", kind="care", code="ZBQK002", label="Radiographie du thorax", amount="13.97"),  # 14
        line(line_id="q", quantity=0),                                   # 15
    ]
    report = reimbursement_feed_import(lines, today=TODAY)
    assert [(e.line, e.code) for e in report.errors] == [
        (2, "invalid_json"), (3, "unknown_record"), (4, "bad_date"), (5, "bad_date"), (6, "bad_amount"),
        (7, "bad_amount"), (8, "missing_field"), (9, "closed_record"), (10, "bad_code"), (11, "bad_kind"),
        (13, "duplicate_line_id"), (15, "bad_quantity")]
    assert report.created == 2
    assert set(ReimbursementLine.objects.values_list("external_id", flat=True)) == {"ok-1", "ok-2"}
    assert "line 9: record: the record is closed (closed_record)" in report.summary()
    assert "METFORMINE" not in report.summary() and NIR not in report.summary()  # nothing of the content


@pytest.mark.django_db
def test_a_line_id_already_filed_in_another_record_is_refused(world, alice_nir):
    reimbursement_feed_import([line()], today=TODAY)
    report = reimbursement_feed_import([line(record=world.leo_record.provisional_id)], today=TODAY)
    assert [(e.line, e.code) for e in report.errors] == [(1, "line_id_of_another_record")]
    assert ReimbursementLine.objects.get(external_id="CPAM59-1").record_id == world.record.pk


@pytest.mark.django_db
def test_the_commands_make_a_feed_and_import_it_twice_with_the_same_result(world, alice_nir, tmp_path):
    path = tmp_path / "feed.jsonl"
    call_command("make_reimbursement_feed", "--months", "24", "--output", str(path), stderr=io.StringIO())
    assert NIR in path.read_text()
    out = io.StringIO()
    call_command("import_reimbursements", str(path), stdout=out)
    created = ReimbursementLine.objects.count()
    assert f"feed.jsonl: {created} created, 0 updated, 0 unchanged, 0 bad line(s) skipped" in out.getvalue()
    out = io.StringIO()
    call_command("import_reimbursements", str(path), stdout=out)
    assert f"0 created, 0 updated, {created} unchanged, 0 bad line(s) skipped" in out.getvalue()
    path.write_text(path.read_text() + "oops\n")
    out = io.StringIO()
    call_command("import_reimbursements", str(path), stdout=out)
    assert f"line {created + 1}: not a JSON object (invalid_json)" in out.getvalue()


@pytest.mark.django_db
def test_the_inbox_imports_complete_files_and_moves_them_with_their_report(world, alice_nir, tmp_path, settings):
    settings.REIMBURSEMENT_FEED_DIR = str(tmp_path)
    (tmp_path / "2026-03.jsonl").write_text("\n".join([line(line_id="i-1"), "{bad"]) + "\n")
    (tmp_path / "2026-04.jsonl.part").write_text(line(line_id="i-2") + "\n")  # still being written
    assert tasks.import_reimbursement_inbox() == 1
    assert set(ReimbursementLine.objects.values_list("external_id", flat=True)) == {"i-1"}
    assert not (tmp_path / "2026-03.jsonl").exists() and (tmp_path / "2026-04.jsonl.part").exists()
    assert (tmp_path / "done" / "2026-03.jsonl").exists()
    report = (tmp_path / "done" / "2026-03.jsonl.report.txt").read_text()
    assert report.startswith("1 created, 0 updated, 0 unchanged, 1 bad line(s) skipped") and "line 2:" in report
    # The same file dropped again: nothing changes, both copies are kept.
    (tmp_path / "2026-03.jsonl").write_text(line(line_id="i-1") + "\n")
    [(name, again)] = reimbursement_inbox_import()
    assert (name, again.created, again.unchanged) == ("2026-03.jsonl", 0, 1)
    assert len(list((tmp_path / "done").glob("2026-03*.jsonl"))) == 2


@pytest.mark.django_db
def test_no_inbox_configured_does_nothing(settings):
    settings.REIMBURSEMENT_FEED_DIR = ""
    assert reimbursement_inbox_import() == []


def _create_with_nir(world, nir: str = NIR) -> Record:
    # Born in August 1955, as the NIR says: old enough for the treatments taken every month.
    record, _credentials = record_create(
        actor=Actor(world.agent.user), family_name="Haddad", given_names="Nour", birth_date=date(1955, 8, 3),
        consented=True, break_glass_allowed=True, samu_allowed=True, nir=nir)
    return record


@pytest.mark.django_db
def test_a_new_record_with_a_nir_gets_24_months_from_the_generator_in_development(
        world, settings, django_capture_on_commit_callbacks):
    settings.REIMBURSEMENT_HISTORY_SOURCE = "generator"
    with django_capture_on_commit_callbacks(execute=True):
        record = _create_with_nir(world)
    dates = list(ReimbursementLine.objects.filter(record=record).values_list("date", flat=True))
    today = timezone.localdate()
    assert len({(d.year, d.month) for d in dates}) == 24 and max(dates) <= today


@pytest.mark.django_db
def test_the_history_comes_from_the_insurers_file_for_that_nir(world, settings, tmp_path,
                                                              django_capture_on_commit_callbacks):
    settings.REIMBURSEMENT_HISTORY_SOURCE = str(tmp_path)
    (tmp_path / f"{NIR}.jsonl").write_text("\n".join([
        line(line_id="h-1", date=(timezone.localdate() - timedelta(days=40)).isoformat()),
        line(line_id="h-2", record=world.leo_record.provisional_id),  # not this record's: refused
    ]) + "\n")
    with django_capture_on_commit_callbacks(execute=True):
        record_nir_attach(actor=Actor(world.agent.user), record=world.record, nir=NIR)
    assert list(ReimbursementLine.objects.values_list("external_id", "record_id")) == [("h-1", world.record.pk)]


@pytest.mark.django_db
def test_no_history_source_pulls_nothing(world, settings, django_capture_on_commit_callbacks):
    settings.REIMBURSEMENT_HISTORY_SOURCE = ""
    with django_capture_on_commit_callbacks(execute=True):
        _create_with_nir(world)
    assert not ReimbursementLine.objects.exists()


# Treatments no child or teenager is dispensed every month, nor young adults most of them.
ADULT_TREATMENTS = ("METFORMINE", "RAMIPRIL", "ATORVASTATINE")


def test_a_teenager_is_dispensed_what_a_teenager_takes():
    """The feed follows the person's age: over many people, adults get the chronic treatments of
    later life and lab tests of diabetes, a fifteen-year-old never does."""
    identifiers = [f"P{n:011d}" for n in range(40)]
    teenager = {identifier: date(TODAY.year - 15, 3, 1) for identifier in identifiers}

    def labels(lines) -> set[str]:
        return {line["label"].split()[0] for line in lines}

    adults = labels(generate_lines(identifiers, today=TODAY, months=24))
    teenagers = labels(generate_lines(identifiers, today=TODAY, months=24, birth_dates=teenager))
    assert set(ADULT_TREATMENTS) <= adults and "Hémoglobine" in adults
    assert not set(ADULT_TREATMENTS) & teenagers and "Hémoglobine" not in teenagers
    assert "LEVOTHYROXINE" not in teenagers and teenagers  # still a feed: care, an antibiotic now and then
