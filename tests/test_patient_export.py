"""Download my record: the whole record as one ZIP (every document the requester may see, a
one-page summary PDF, FHIR R4 JSON), prepared by a Celery task, through the real views."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import zipfile
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from pypdf import PdfReader

from dmp import celery_app, fhir
from dmp.models import (
    AuditEntry,
    EmergencyContact,
    LegalRepresentative,
    PersonalProfile,
    RecordExport,
    SelfDeclaredItem,
    Vaccination,
)
from dmp.models.record import nir_key
from dmp.policy import Actor
from dmp.services import record_exports_purge, synthesis_write
from dmp.services.synthesis import Problem
from dmp.tasks import build_record_export
from tests.personas import make_document, user_of

# What each record holder may see: withheld results are not visible yet, and Léo's mother
# does not see what Léo hid from his legal representatives.
ALICE_SEES = {"consultation", "imaging", "hidden", "hidden_imaging", "released", "archived", "own"}
MOTHER_SEES = {"leo_visit"}
LEO_SEES = {"leo_visit", "leo_confidential"}


@pytest.fixture
def eager(monkeypatch, django_capture_on_commit_callbacks):
    """Run the export task in the test's process, at commit, as the embedded default does
    (with REDIS_URL set, the suite's Celery sends tasks to the broker instead)."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)

    def run(client, record):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("portal_patient:export", args=[record.pk]))
        assert response.status_code == 302
        return response

    return run


@pytest.fixture
def queued(monkeypatch):
    """Tasks sent but not run: what the page shows while the worker has not finished."""
    sent: list[int] = []
    monkeypatch.setattr(build_record_export, "delay", lambda pk: sent.append(pk))
    return sent


def _export_url(record):
    return reverse("portal_patient:export", args=[record.pk])


def _download_url(export):
    return reverse("portal_patient:export_download", args=[export.record_id, export.pk])


def _download(client, export):
    response = client.get(_download_url(export))
    assert response.status_code == 200
    return response, zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def _document_files(archive):
    return {name: archive.read(name) for name in archive.namelist() if name.startswith("documents/")}


def _expected(world, names):
    return {world.docs[n].content_hash for n in names}


def _give_alice_a_full_record(world):
    synthesis_write(actor=Actor(world.dr_house.user), record=world.record,
                    problems=[Problem("E11.9", "Type 2 diabetes"), Problem("I10", "Hypertension", date(2019, 4, 1))],
                    allergies="Penicillin\nLatex", current_treatments="Metformin 1000 mg twice a day")
    Vaccination.objects.create(record=world.record, vaccine="DTPolio", date=date(2021, 6, 3), batch="X12")
    SelfDeclaredItem.objects.create(record=world.record, kind=SelfDeclaredItem.Kind.ALLERGY, label="Cat hair")
    EmergencyContact.objects.create(record=world.record, name="Bob Martin", relation="Brother", phone="+33611111111")
    PersonalProfile.objects.create(record=world.record, trusted_person_name="Claire Durand",
                                   trusted_person_phone="+33622222222", advance_directives="No resuscitation.")


@pytest.mark.django_db
def test_alice_export_holds_every_document_she_may_see_a_summary_and_valid_fhir(client, world, eager):
    _give_alice_a_full_record(world)
    client.force_login(world.alice)
    eager(client, world.record)

    export = RecordExport.objects.get(record=world.record)
    assert (export.status, export.progress, export.error) == (RecordExport.Status.READY, 100, "")
    assert export.requested_by == world.alice and export.finished_at is not None
    response, archive = _download(client, export)
    assert export.size == int(response["Content-Length"])

    # Exactly the documents she may see — hidden and archived included, withheld left out —
    # each the very bytes stored (decrypted), named without its title.
    files = _document_files(archive)
    assert {hashlib.sha256(content).hexdigest() for content in files.values()} == _expected(world, ALICE_SEES)
    for name in ALICE_SEES:
        doc = world.docs[name]
        path = f"documents/{doc.space}/2026-01-10-{doc.doc_type.replace('_', '-')}-{doc.pk}.pdf"
        assert hashlib.sha256(files[path]).hexdigest() == doc.content_hash
    history = {f"access-history/{name}" for name in ("chain.jsonl", "checkpoint.json", "proof.json",
                                                      "public-key.txt", "verify_history.py")}
    assert set(archive.namelist()) == {*files, "summary.pdf", "record.fhir.json", "README.txt", *history}

    summary = PdfReader(io.BytesIO(archive.read("summary.pdf")))
    assert len(summary.pages) == 1
    text = summary.pages[0].extract_text()
    assert "Alice Martin" in text and "Hypertension" in text and "Claire Durand" in text

    bundle = Bundle.model_validate_json(archive.read("record.fhir.json"))
    assert bundle.type == "collection"
    by_type: dict[str, list] = {}
    for entry in bundle.entry:
        by_type.setdefault(entry.resource.get_resource_type(), []).append(entry.resource)
    (patient,) = by_type["Patient"]
    assert patient.birthDate == date(1970, 5, 17) and patient.name[0].family == "Martin"
    assert [i.system for i in patient.identifier] == [fhir.PROVISIONAL_ID_SYSTEM]  # no NIR yet
    references = by_type["DocumentReference"]
    assert len(references) == len(ALICE_SEES)
    assert {r.content[0].attachment.url for r in references} == set(files)
    assert {(c.code.coding[0].system, c.code.coding[0].code) for c in by_type["Condition"]} == {
        ("http://hl7.org/fhir/sid/icd-10", "E11.9"), ("http://hl7.org/fhir/sid/icd-10", "I10")}
    assert [i.vaccineCode.text for i in by_type["Immunization"]] == ["DTPolio"]
    assert {a.code.text for a in by_type["AllergyIntolerance"]} == {"Penicillin", "Latex", "Cat hair"}
    assert {p.name[0].text for p in by_type["RelatedPerson"]} == {"Bob Martin", "Claire Durand"}
    idnps = {i.value for p in by_type["Practitioner"] for i in p.identifier if i.system == fhir.IDNPS_SYSTEM}
    assert {f"8{world.dr_grant.rpps}", f"8{world.dr_house.rpps}"} <= idnps
    assert b"summary.pdf" in archive.read("README.txt")

    assert response["Content-Type"] == "application/zip"
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Disposition"].startswith('attachment; filename="dmp-export-')
    assert "consultation" not in response["Content-Disposition"]
    assert not AuditEntry.objects.filter(actor=world.alice).exists()  # her own reads are not in the access log


@pytest.mark.django_db
def test_the_stored_zip_is_encrypted_at_rest(client, world, eager):
    client.force_login(world.alice)
    eager(client, world.record)
    export = RecordExport.objects.get(record=world.record)
    with open(export.file.storage.path(export.file.name), "rb") as raw:
        stored = raw.read()
    assert not stored.startswith(b"PK") and b"summary.pdf" not in stored


@pytest.mark.django_db
def test_the_fhir_patient_carries_the_nir_under_the_ins_nir_oid(world):
    nir13 = "2700575056012"
    world.record.nir = f"{nir13}{nir_key(nir13):02d}"
    world.record.languages = ["fr", "ar"]
    world.record.preferred_language = "ar"
    patient = fhir.patient(world.record)
    assert patient.identifier[0].system == "urn:oid:1.2.250.1.213.1.4.8"
    assert patient.identifier[0].value == world.record.nir
    assert [(c.language.coding[0].code, c.preferred) for c in patient.communication] == [("fr", False), ("ar", True)]
    assert patient.gender == "unknown"


@pytest.mark.django_db
def test_the_page_shows_progress_while_preparing_and_the_link_when_ready(client, world, queued):
    client.force_login(world.alice)
    page = client.get(_export_url(world.record)).content.decode()
    assert "<progress" not in page and 'http-equiv="refresh"' not in page
    assert "Prepare the download" in page

    assert client.post(_export_url(world.record)).status_code == 302
    export = RecordExport.objects.get(record=world.record)
    # Sent after commit: the test's transaction never commits, so nothing ran.
    assert export.status == RecordExport.Status.PENDING
    RecordExport.objects.filter(pk=export.pk).update(status=RecordExport.Status.RUNNING, progress=40)
    page = client.get(_export_url(world.record)).content.decode()
    assert '<progress value="40" max="100"' in page
    assert '<meta http-equiv="refresh" content="2">' in page
    assert _download_url(export) not in page
    assert client.get(_download_url(export)).status_code == 404  # not ready yet

    build_record_export.apply(args=[export.pk])
    page = client.get(_export_url(world.record)).content.decode()
    assert _download_url(export) in page
    assert "<progress" not in page and 'http-equiv="refresh"' not in page


@pytest.mark.django_db
def test_a_second_request_while_one_is_preparing_returns_the_same_export(client, world, queued,
                                                                          django_capture_on_commit_callbacks):
    client.force_login(world.alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(_export_url(world.record))
        client.post(_export_url(world.record))
    assert RecordExport.objects.filter(record=world.record).count() == 1
    assert queued == [RecordExport.objects.get().pk]  # one task sent


@pytest.mark.django_db
def test_a_new_request_replaces_the_ready_export(client, world, eager):
    client.force_login(world.alice)
    eager(client, world.record)
    first = RecordExport.objects.get()
    path = first.file.storage.path(first.file.name)
    eager(client, world.record)
    assert list(RecordExport.objects.values_list("status", flat=True)) == [RecordExport.Status.READY]
    assert RecordExport.objects.get().pk != first.pk
    assert client.get(_download_url(first)).status_code == 404
    assert not os.path.exists(path)


@pytest.mark.django_db
def test_mother_export_of_leo_leaves_out_what_he_hid_and_is_audited(client, world, eager):
    client.force_login(world.mother)
    eager(client, world.leo_record)
    export = RecordExport.objects.get(record=world.leo_record)
    _, archive = _download(client, export)
    files = _document_files(archive)
    assert {hashlib.sha256(c).hexdigest() for c in files.values()} == _expected(world, MOTHER_SEES)
    bundle = json.loads(archive.read("record.fhir.json"))
    assert sum(e["resource"]["resourceType"] == "DocumentReference" for e in bundle["entry"]) == len(MOTHER_SEES)
    assert b"leo confidential" not in archive.read("summary.pdf")

    download = AuditEntry.objects.get(actor=world.mother, object_id=f"recordexport:{export.pk}")
    assert (download.action, download.mode, download.allowed) == ("export_record", "representative", True)
    assert download.record_id_ref == world.leo_record.pk

    # Léo's own export holds his confidential document, and is his alone.
    client.force_login(world.leo)
    eager(client, world.leo_record)
    leos = RecordExport.objects.get(record=world.leo_record, requested_by=world.leo)
    _, archive = _download(client, leos)
    assert {hashlib.sha256(c).hexdigest() for c in _document_files(archive).values()} == _expected(world, LEO_SEES)
    client.force_login(world.mother)
    assert client.get(_download_url(leos)).status_code == 404


@pytest.mark.django_db
def test_alice_can_neither_request_nor_download_leos_export(client, world, eager):
    client.force_login(world.mother)
    eager(client, world.leo_record)
    export = RecordExport.objects.get()
    client.force_login(world.alice)
    assert client.get(_download_url(export)).status_code == 404
    assert client.get(_export_url(world.leo_record)).status_code == 404
    assert client.post(_export_url(world.leo_record)).status_code == 404
    # Her own record's number in the URL does not open Léo's export either.
    assert client.get(reverse("portal_patient:export_download", args=[world.record.pk, export.pk])).status_code == 404
    assert RecordExport.objects.count() == 1
    assert AuditEntry.objects.filter(actor=world.alice, allowed=False).count() == 4  # every attempt logged


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["dr_house", "dr_grant", "urgentist", "regulator", "agent", "admin"])
def test_professionals_counter_agents_and_administrators_are_turned_away(client, world, persona):
    export = RecordExport.objects.create(record=world.record, requested_by=world.alice,
                                         status=RecordExport.Status.READY, finished_at=timezone.now())
    client.force_login(user_of(world, persona))
    assert client.get(_export_url(world.record)).status_code == 403
    assert client.post(_export_url(world.record)).status_code == 403
    assert client.get(_download_url(export)).status_code == 403
    assert RecordExport.objects.count() == 1


@pytest.mark.django_db
def test_logged_out_visitors_are_sent_to_the_login(client, world):
    response = client.get(_export_url(world.record))
    assert response.status_code == 302 and reverse("account_login") in response["Location"]


@pytest.mark.django_db
def test_a_failing_build_ends_failed_with_a_code_and_no_file(client, world, eager, settings, caplog):
    # A stored document that can no longer be read (lost from the disk).
    doc = world.docs["consultation"]
    doc.file.storage.delete(doc.file.name)
    client.force_login(world.alice)
    with caplog.at_level(logging.WARNING, logger="dmp.services.export"):
        eager(client, world.record)

    export = RecordExport.objects.get()
    assert (export.status, export.error, export.file.name, export.size) == (
        RecordExport.Status.FAILED, "document_unreadable", "", 0)
    assert not (settings.MEDIA_ROOT / "exports").exists() or not any((settings.MEDIA_ROOT / "exports").rglob("*"))
    page = client.get(_export_url(world.record)).content.decode()
    assert "The preparation failed" in page and "document_unreadable" in page
    assert 'http-equiv="refresh"' not in page and "Prepare a new download" in page
    assert client.get(_download_url(export)).status_code == 404
    # One log line, ids and the code only.
    (line,) = [r.getMessage() for r in caplog.records if r.name == "dmp.services.export"]
    assert f"record export {export.pk}" in line and "document_unreadable" in line
    assert "consultation" not in line and "Martin" not in line


@pytest.mark.django_db
def test_a_failure_after_the_file_is_written_leaves_no_file(client, world, eager, settings, monkeypatch):
    save = RecordExport.save

    def lost(self, *args, **kwargs):
        if kwargs.get("update_fields"):
            raise RuntimeError("database went away")
        return save(self, *args, **kwargs)

    # The export row cannot be saved once its file is in the storage.
    monkeypatch.setattr(RecordExport, "save", lost)
    client.force_login(world.alice)
    eager(client, world.record)
    export = RecordExport.objects.get()
    assert (export.status, export.error, export.file.name) == (RecordExport.Status.FAILED, "unexpected_error", "")
    assert not any((settings.MEDIA_ROOT / "exports").rglob("*.zip"))


@pytest.mark.django_db
def test_the_build_asks_the_policy_again(client, world, queued):
    client.force_login(world.mother)
    client.post(_export_url(world.leo_record))
    export = RecordExport.objects.get()
    # The representation ended between the request and the build.
    LegalRepresentative.objects.filter(user=world.mother).update(until=timezone.localdate() - timedelta(days=1))
    build_record_export.apply(args=[export.pk])
    export.refresh_from_db()
    assert (export.status, export.error, export.file.name) == (RecordExport.Status.FAILED, "not_allowed", "")


@pytest.mark.django_db
def test_the_summary_stays_on_one_page_for_a_large_record(client, world, eager):
    for n in range(60):
        make_document(world.record, f"report number {n} with a rather long title to fill the page")
    synthesis_write(actor=Actor(world.dr_house.user), record=world.record,
                    # 25 problems, each code once (the synthesis refuses a code twice).
                    problems=[Problem(f"I{n}", f"Cardiovascular problem, note {n}") for n in range(30, 55)
                              if n not in (53, 54)] + [Problem("I10", "Hypertension"), Problem("I11", "Heart")],
                    current_treatments="\n".join(f"Medicine {n}, one tablet a day" for n in range(40)),
                    allergies="\n".join(f"Allergy {n}" for n in range(20)))
    client.force_login(world.alice)
    eager(client, world.record)
    export = RecordExport.objects.get()
    assert export.status == RecordExport.Status.READY
    _, archive = _download(client, export)
    assert len(PdfReader(io.BytesIO(archive.read("summary.pdf"))).pages) == 1
    assert len(_document_files(archive)) == len(ALICE_SEES) + 60


@pytest.mark.django_db
def test_exports_older_than_seven_days_are_purged_with_their_file(client, world, eager,
                                                                   django_capture_on_commit_callbacks):
    client.force_login(world.alice)
    eager(client, world.record)
    export = RecordExport.objects.get()
    path = export.file.storage.path(export.file.name)
    with django_capture_on_commit_callbacks(execute=True):
        assert record_exports_purge(now=timezone.now() + timedelta(days=6)) == 0
    assert RecordExport.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert record_exports_purge(now=timezone.now() + timedelta(days=7, minutes=1)) == 1
    assert not RecordExport.objects.exists()
    assert not os.path.exists(path)


def test_the_beat_schedule_names_real_tasks(settings):
    from dmp.celery import app

    app.loader.import_default_modules()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name


# --- the access history, checkable offline --------------------------------------------------------

def _verify_offline(path, *args):
    """The patient's check: another process, no database, no Django settings."""
    import subprocess
    import sys
    from pathlib import Path

    environment = {k: v for k, v in os.environ.items()
                   if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DMP_ENV"}}
    return subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "-m", "dmp.verify_history", str(path), *args], env=environment,
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.mark.django_db
def test_the_export_holds_the_access_history_and_a_signed_proof_checked_offline(client, world, eager, tmp_path):
    from dmp import audit
    from dmp.access_log import authorise_read as authorise
    from dmp.policy import Action

    for persona in ("dr_house", "dr_grant", "urgentist"):
        authorise(Actor(getattr(world, persona).user), Action.VIEW_RECORD, world.record)
    # Another record's accesses share the checkpoint but never appear in Alice's copy.
    authorise(Actor(world.dr_house.user), Action.VIEW_RECORD, world.leo_record)
    client.force_login(world.alice)
    eager(client, world.record)
    export = RecordExport.objects.get(record=world.record)
    _, archive = _download(client, export)
    chain = [json.loads(line) for line in archive.read("access-history/chain.jsonl").decode().splitlines()]
    stored = list(AuditEntry.objects.filter(chain=world.record.pk).order_by("chain_seq"))
    assert [c["hash"] for c in chain] == [e.hash for e in stored[: len(chain)]] and len(chain) >= 3
    assert "Gregory House" in chain[0]["payload"]
    checkpoint = json.loads(archive.read("access-history/checkpoint.json"))
    assert "leaves" not in checkpoint["body"]
    assert json.loads(archive.read("access-history/proof.json"))["chain"] == world.record.pk
    leo_head = AuditEntry.objects.filter(chain=world.leo_record.pk).get().hash
    assert not any(leo_head.encode() in archive.read(name) for name in archive.namelist()
                   if name.startswith("access-history/"))
    assert "verify_history.py" in archive.read("README.txt").decode()

    path = tmp_path / "record-export.zip"
    path.write_bytes(b"".join(client.get(_download_url(export)).streaming_content))
    result = _verify_offline(path, "--public-key", audit.public_key())
    assert result.returncode == 0, result.stderr
    assert f"OK: {len(chain)} entries of record {world.record.pk}" in result.stdout

    # One byte of the history changed (an emergency access turned into a normal one): refused.
    altered = tmp_path / "altered.zip"
    with zipfile.ZipFile(path) as original, zipfile.ZipFile(altered, "w") as copy:
        for item in original.infolist():
            content = original.read(item.filename)
            if item.filename == "access-history/chain.jsonl":
                assert b"break_glass" in content
                content = content.replace(b"break_glass", b"break_glasS", 1)
            copy.writestr(item, content)
    result = _verify_offline(altered)
    assert result.returncode == 1 and "NOT VALID" in result.stderr and "altered" in result.stderr
    # A copy signed by someone else's key is refused too.
    result = _verify_offline(path, "--public-key", "A" * 43 + "=")
    assert result.returncode == 1 and "signature" in result.stderr


@pytest.mark.django_db
def test_the_verifier_shipped_in_the_export_runs_on_its_own(client, world, eager, tmp_path):
    """The copy of verify_history.py inside the ZIP needs neither the project nor a database."""
    import subprocess
    import sys

    from dmp.access_log import authorise_read as authorise
    from dmp.policy import Action

    authorise(Actor(world.dr_house.user), Action.VIEW_RECORD, world.record)
    client.force_login(world.alice)
    eager(client, world.record)
    export = RecordExport.objects.get(record=world.record)
    _, archive = _download(client, export)
    path = tmp_path / "record-export.zip"
    path.write_bytes(b"".join(client.get(_download_url(export)).streaming_content))
    archive.extract("access-history/verify_history.py", tmp_path / "out")
    result = subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, str(tmp_path / "out" / "access-history" / "verify_history.py"), str(path)],
        cwd=tmp_path, env={"PATH": os.environ.get("PATH", "")}, capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "OK: 1 entries" in result.stdout and "compare it with the published one" in result.stdout
