"""The access log says what happened, not what was intended (issue 13): the policy decides
and records nothing; `dmp/access_log.py` records a read, a refusal at once, and a write inside
the write's own transaction. So a break-glass with a wrong identity, or an add whose files are
all refused, leaves no "allowed" entry, and every write's entry rolls back with its write."""

from __future__ import annotations

import ast
import base64
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dmp import access_log, audit
from dmp.models import (
    ApiToken,
    AuditEntry,
    Block,
    CareAuthorisation,
    CounterReset,
    DepositRight,
    Document,
    DocumentType,
    PersonalProfile,
    Record,
    RecordExport,
    Synthesis,
    TreatingDoctor,
)
from dmp.policy import Action, Actor, decide
from dmp.services import (
    AccessRefused,
    InvalidInput,
    api_token_create,
    api_token_revoke,
    break_glass_open,
    care_authorisation_declare,
    care_authorisation_grant,
    care_authorisation_revoke,
    deposit_right_withdraw,
    document_add,
    document_archive_set,
    document_deposit,
    document_release,
    document_visibility_set,
    professional_block,
    professional_unblock,
    record_close,
    record_create,
    record_export_request,
    record_nir_attach,
    synthesis_write,
    treating_doctor_designate,
    treating_doctor_end,
)
from dmp.services.access import record_emergency_access_set
from dmp.services.accounts import counter_reset_finish
from dmp.services.documents import NewDocument, document_add_batch, document_deposit_batch
from dmp.services.personal import personal_notes_set
from dmp.services.records import record_notifications_set, record_onboard
from dmp.services.synthesis import Problem
from tests.sample_files import text_pdf

pytestmark = pytest.mark.django_db

ROOT = Path(settings.BASE_DIR)
RECORDING_MODULES = ("dmp.audit", "dmp.notifications", "dmp.tasks", "dmp.access_log", "dmp.services")
ALICE = {"family_name": "MARTIN", "given_names": "alice", "birth_date": "1970-05-17"}
NOT_A_PDF = b"%PDF-1.4 not really"


def _client(user) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def _allowed(action: str, **filters) -> AuditEntry | None:
    return AuditEntry.objects.filter(action=action, allowed=True, **filters).first()


# --- policy.py decides and records nothing ------------------------------------------------------


def _imported_modules(tree: ast.AST) -> set[str]:
    """Every module dmp/policy.py imports, at module or function level, resolved to a name."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative to the dmp package
                base = ".".join(["dmp", *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def test_policy_imports_no_recording_module():
    imported = _imported_modules(ast.parse((ROOT / "dmp" / "policy.py").read_text()))
    for module in RECORDING_MODULES:
        assert not any(name == module or name.startswith(f"{module}.") for name in imported), module


def test_importing_the_policy_loads_no_recording_module():
    # A fresh interpreter with the dmp app's models only (its ready() wires checks and signals,
    # which is not what is measured here).
    probe = f"""
import sys
from django.apps import AppConfig, apps
from django.conf import settings

class BareDmp(AppConfig):
    name = label = "dmp"
    default_auto_field = "django.db.models.BigAutoField"

mine = {{"django.contrib.admin", "dmp", "portal_patient", "portal_pro", "social_workers"}}
apps.populate([a for a in settings.INSTALLED_APPS if a not in mine] + ["__main__.BareDmp"])
import dmp.policy
print(sorted(m for m in {RECORDING_MODULES!r} if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,  # noqa: S603 - our code
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


# --- the three ways of recording ----------------------------------------------------------------


def test_write_refuses_to_run_outside_the_transaction_of_its_change(world):
    actor = Actor(world.dr_grant.user)
    decision = decide(actor, Action.ADD_DOCUMENT, world.record, doc_type=DocumentType.LAB_REPORT)
    with pytest.raises(RuntimeError):
        access_log.write(actor, Action.ADD_DOCUMENT, decision, world.record, record=world.record)
    with transaction.atomic():
        access_log.write(actor, Action.ADD_DOCUMENT, decision, world.record, record=world.record)
    assert _allowed(Action.ADD_DOCUMENT, actor=world.dr_grant.user)
    with pytest.raises(ValueError):
        access_log.refusal(actor, Action.ADD_DOCUMENT, decision, world.record, record=world.record)


def test_a_refusal_is_written_at_once_and_survives_the_failed_write(world):
    with pytest.raises(AccessRefused):
        document_add(actor=Actor(world.stranger.user), record=world.record, content=text_pdf("x"),
                     doc_type=DocumentType.LAB_REPORT, title="x", act_date=date(2025, 1, 1))
    assert AuditEntry.objects.filter(actor=world.stranger.user, action="add_document", allowed=False).exists()


# --- break-glass with a wrong identity ----------------------------------------------------------


@pytest.mark.parametrize("wrong", [{"family_name": "Dupont"}, {"birth_date": "1970-05-18"},
                                   {"given_names": "Alicia"}])
def test_a_break_glass_with_a_wrong_identity_is_a_failed_attempt_never_an_opening(world, wrong):
    pro = _client(world.stranger.user)
    response = pro.post(reverse("portal_pro:break_glass", args=[world.record.pk]), {
        **ALICE, "justification": "Unconscious after a fall.", "emergency": "on", **wrong})
    assert response.status_code == 400
    assert not CareAuthorisation.objects.filter(professional=world.stranger).exists()
    assert not _allowed("break_glass", actor=world.stranger.user)
    failed = AuditEntry.objects.get(actor=world.stranger.user, action="break_glass")
    assert (failed.allowed, failed.rule) == (False, "identity_mismatch")

    history = _client(world.alice).get(reverse("portal_patient:history", args=[world.record.pk]))
    assert history.status_code == 200
    assert history.context["history"].emergencies_count == 0
    assert [row.entry.rule for row in history.context["history"].refusals] == ["identity_mismatch"]
    assert "Opened the record in an emergency — the attempt was refused" in history.content.decode()


def test_a_break_glass_without_the_tick_or_a_reason_leaves_nothing(world):
    actor = Actor(world.stranger.user)
    for emergency, justification in ((False, "Unconscious."), (True, "  ")):
        with pytest.raises(InvalidInput):
            break_glass_open(actor=actor, record=world.record, family_name="Martin", given_names="Alice",
                             birth_date=date(1970, 5, 17), justification=justification, emergency=emergency)
    assert not AuditEntry.objects.filter(actor=world.stranger.user, action="break_glass").exists()


def test_a_break_glass_that_opens_is_in_the_history_with_its_grant(world):
    grant = break_glass_open(actor=Actor(world.stranger.user), record=world.record, family_name="martin",
                             given_names="Alice", birth_date=date(1970, 5, 17), justification="Unconscious.",
                             emergency=True)
    entry = _allowed("break_glass", actor=world.stranger.user)
    assert (entry.mode, entry.object_type, entry.object_id) == ("break_glass", "careauthorisation", str(grant.pk))


# --- adds whose files are all refused ----------------------------------------------------------


def test_a_patient_upload_whose_files_are_all_refused_leaves_no_add(world):
    # The mother: a representative's adds are logged (the holder's own are not).
    response = _client(world.mother).post(reverse("portal_patient:documents_add", args=[world.leo_record.pk]), {
        "doc_type": DocumentType.PATIENT_DOCUMENT, "act_date": "2025-06-01", "title": "",
        "files": [SimpleUploadedFile("broken.pdf", NOT_A_PDF)]})
    assert "broken.pdf" in response.content.decode()
    assert not _allowed("add_document", record_id_ref=world.leo_record.pk)


def test_a_professional_add_whose_files_are_all_refused_leaves_no_add(world):
    before = Document.objects.count()
    response = _client(world.dr_grant.user).post(reverse("portal_pro:documents_add", args=[world.record.pk]), {
        "files": [SimpleUploadedFile("broken.pdf", NOT_A_PDF)], "doc_type": DocumentType.LAB_REPORT,
        "act_date": "2025-06-01"})
    assert response.status_code in (200, 400)
    assert Document.objects.count() == before
    assert not _allowed("add_document", actor=world.dr_grant.user)


def test_a_counter_deposit_whose_files_are_all_refused_leaves_no_deposit(world):
    response = _client(world.agent.user).post(reverse("social_workers:counter_deposit", args=[world.record.pk]), {
        "files": [SimpleUploadedFile("broken.pdf", NOT_A_PDF)], "file_type": [DocumentType.LAB_REPORT],
        "file_date": ["2025-01-06"]})
    assert "broken.pdf" in response.content.decode()
    assert not _allowed("deposit_document", actor=world.agent.user)


def test_a_fhir_create_whose_file_is_refused_leaves_no_add(world):
    raw = api_token_create(actor=Actor(world.dr_house.user), label="Logiciel de cabinet")[1]
    body = {
        "resourceType": "DocumentReference", "status": "current",
        "subject": {"reference": f"Patient/{world.record.pk}"},
        "type": {"coding": [{"system": "urn:dmp:document-type", "code": DocumentType.CONSULTATION_REPORT}]},
        "description": "Consultation", "context": {"period": {"start": "2026-03-03"}},
        "content": [{"attachment": {"contentType": "application/pdf", "data": base64.b64encode(NOT_A_PDF).decode()}}],
    }
    response = Client().post("/fhir/DocumentReference", body, content_type="application/fhir+json",
                             HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 422
    assert not _allowed("add_document", actor=world.dr_house.user)


def test_an_add_that_happened_names_the_document_it_created(world):
    document = document_add(actor=Actor(world.dr_grant.user), record=world.record, content=text_pdf("CRP"),
                            doc_type=DocumentType.LAB_REPORT, title="CRP", act_date=date(2025, 1, 1))
    entry = _allowed("add_document", actor=world.dr_grant.user)
    assert (entry.object_type, entry.object_id, entry.record_id_ref) == ("document", str(document.pk), world.record.pk)


# --- every write's entry rolls back with its write ----------------------------------------------


def _pdf(label: str) -> bytes:
    return text_pdf(f"Compte rendu {label}")


def _titled(record, title: str) -> bool:
    return any(d.title == title for d in Document.objects.filter(record=record))  # titles are encrypted


def _leo_grant(world):
    CareAuthorisation.objects.create(record=world.leo_record, professional=world.dr_grant,
                                     kind=CareAuthorisation.Kind.GRANTED_BY_PATIENT)


def _leo_deposit_right(world):
    return DepositRight.objects.create(record=world.leo_record, agent=world.agent).pk


# (name, action written, who acts, what to prepare, the write, what must not be left behind)
WRITES = [
    ("care_authorisation_grant", "manage_access", "mother", None,
     lambda w, a, _: care_authorisation_grant(actor=a, record=w.leo_record, professional=w.dr_grant),
     lambda w: CareAuthorisation.objects.filter(record=w.leo_record, professional=w.dr_grant).exists()),
    ("care_authorisation_declare", "declare_care", "stranger", None,
     lambda w, a, _: care_authorisation_declare(actor=a, record=w.record),
     lambda w: CareAuthorisation.objects.filter(professional=w.stranger).exists()),
    ("break_glass_open", "break_glass", "stranger", None,
     lambda w, a, _: break_glass_open(actor=a, record=w.record, family_name="Martin", given_names="Alice",
                                      birth_date=date(1970, 5, 17), justification="Unconscious.", emergency=True),
     lambda w: CareAuthorisation.objects.filter(professional=w.stranger).exists()),
    ("treating_doctor_designate", "manage_access", "mother", None,
     lambda w, a, _: treating_doctor_designate(actor=a, record=w.leo_record, professional=w.dr_grant),
     lambda w: TreatingDoctor.objects.filter(record=w.leo_record, professional=w.dr_grant).exists()),
    ("treating_doctor_end", "manage_access", "mother", None,
     lambda w, a, _: treating_doctor_end(actor=a, record=w.leo_record),
     lambda w: not TreatingDoctor.objects.active().filter(record=w.leo_record).exists()),
    ("care_authorisation_revoke", "manage_access", "mother", _leo_grant,
     lambda w, a, _: care_authorisation_revoke(actor=a, record=w.leo_record, professional=w.dr_grant),
     lambda w: not CareAuthorisation.objects.active().filter(record=w.leo_record, professional=w.dr_grant).exists()),
    ("professional_block", "block_professional", "dr_house", None,
     lambda w, a, _: professional_block(actor=a, record=w.record, professional=w.kine),
     lambda w: Block.objects.filter(record=w.record, professional=w.kine).exists()),
    ("professional_unblock", "block_professional", "dr_house", None,
     lambda w, a, _: professional_unblock(actor=a, record=w.record, professional=w.blocked_kine),
     lambda w: not Block.objects.active().filter(record=w.record, professional=w.blocked_kine).exists()),
    ("deposit_right_withdraw", "manage_access", "mother", _leo_deposit_right,
     lambda w, a, pk: deposit_right_withdraw(actor=a, record=w.leo_record, deposit_right_id=pk),
     lambda w: not DepositRight.objects.active().filter(record=w.leo_record).exists()),
    ("record_emergency_access_set", "manage_access", "mother", None,
     lambda w, a, _: record_emergency_access_set(actor=a, record=w.leo_record, break_glass_allowed=False,
                                                 samu_allowed=False),
     lambda w: not Record.objects.get(pk=w.leo_record.pk).break_glass_allowed),
    ("record_notifications_set", "manage_access", "mother", None,
     lambda w, a, _: record_notifications_set(actor=a, record=w.leo_record, by_email=False, by_sms=False,
                                              every_access=True),
     lambda w: Record.objects.get(pk=w.leo_record.pk).notify_every_access),
    ("record_close", "close_record", "mother", None,
     lambda w, a, _: record_close(actor=a, record=w.leo_record),
     lambda w: Record.objects.get(pk=w.leo_record.pk).state == Record.State.CLOSED),
    ("record_create", "create_record", "agent", None,
     lambda w, a, _: record_create(actor=a, family_name="Diallo", given_names="Awa", birth_date=date(1990, 1, 2),
                                   consented=True, break_glass_allowed=True, samu_allowed=True),
     lambda w: Record.objects.filter(family_name="Diallo").exists()),
    ("record_nir_attach", "attach_nir", "agent", None,
     lambda w, a, _: record_nir_attach(actor=a, record=w.record, nir="255081416802538"),
     lambda w: bool(Record.objects.get(pk=w.record.pk).nir)),
    ("document_add", "add_document", "dr_grant", None,
     lambda w, a, _: document_add(actor=a, record=w.record, content=_pdf("add"), doc_type=DocumentType.LAB_REPORT,
                                  title="CRP", act_date=date(2025, 1, 1)),
     lambda w: _titled(w.record, "CRP")),
    ("document_add_batch", "add_document", "dr_grant", None,
     lambda w, a, _: document_add_batch(actor=a, record=w.record, documents=[
         NewDocument("a.pdf", _pdf("batch"), DocumentType.LAB_REPORT, "Batch", date(2025, 1, 1))]),
     lambda w: _titled(w.record, "Batch")),
    ("document_deposit", "deposit_document", "agent", None,
     lambda w, a, _: document_deposit(actor=a, record=w.record, content=_pdf("deposit"),
                                      doc_type=DocumentType.LAB_REPORT, title="Paper", act_date=date(2025, 1, 1)),
     lambda w: _titled(w.record, "Paper")),
    ("document_deposit_batch", "deposit_document", "agent", None,
     lambda w, a, _: document_deposit_batch(actor=a, record=w.record, documents=[
         NewDocument("p.pdf", _pdf("papers"), DocumentType.LAB_REPORT, "Papers", date(2025, 1, 1))]),
     lambda w: _titled(w.record, "Papers")),
    ("document_release", "release_document", "dr_grant", None,
     lambda w, a, _: document_release(actor=a, document=w.docs["withheld"]),
     lambda w: not Document.objects.get(pk=w.docs["withheld"].pk).is_withheld_from_patient()),
    ("document_visibility_set", "hide_document", "mother", None,
     lambda w, a, _: document_visibility_set(actor=a, document=w.docs["leo_visit"], hidden=True),
     lambda w: Document.objects.get(pk=w.docs["leo_visit"].pk).hidden_from_professionals),
    ("document_archive_set", "archive_document", "mother", None,
     lambda w, a, _: document_archive_set(actor=a, document=w.docs["leo_visit"], archived=True),
     lambda w: Document.objects.get(pk=w.docs["leo_visit"].pk).status == Document.Status.ARCHIVED),
    ("synthesis_write", "edit_synthesis", "dr_house", None,
     lambda w, a, _: synthesis_write(actor=a, record=w.record, problems=[Problem("E11", "Diabète de type 2")]),
     lambda w: Synthesis.objects.filter(record=w.record).exists()),
    ("record_export_request", "export_record", "mother", None,
     lambda w, a, _: record_export_request(actor=a, record=w.leo_record),
     lambda w: RecordExport.objects.filter(record=w.leo_record).exists()),
    ("personal_notes_set", "edit_personal_data", "mother", None,
     lambda w, a, _: personal_notes_set(actor=a, record=w.leo_record, notes="Allergique aux arachides"),
     lambda w: any(p.notes for p in PersonalProfile.objects.filter(record=w.leo_record))),
    ("api_token_create", "api_token_create", "dr_house", None,
     lambda w, a, _: api_token_create(actor=a, label="Poste 1"),
     lambda w: ApiToken.objects.filter(professional=w.dr_house).exists()),
]


def _actor_for(world, who: str) -> Actor:
    persona = getattr(world, who)
    return Actor(getattr(persona, "user", persona))


@pytest.mark.parametrize(("action", "who", "prepare", "write", "happened"),
                         [pytest.param(*row[1:], id=row[0]) for row in WRITES])
def test_a_write_that_fails_after_its_entry_leaves_neither(world, monkeypatch, action, who, prepare, write, happened):
    prepared = prepare(world) if prepare else None
    actor = _actor_for(world, who)
    original = audit.log_access

    def failing_after_the_entry(**entry):
        written = original(**entry)
        if entry["action"] == action and entry["decision"].allowed:
            raise RuntimeError("the write fails after its entry")
        return written

    monkeypatch.setattr(audit, "log_access", failing_after_the_entry)
    with pytest.raises(RuntimeError, match="after its entry"):
        write(world, actor, prepared)
    monkeypatch.undo()
    assert not _allowed(action, actor=actor.user), "the entry outlived its write"
    assert not happened(world), "the write outlived its failure"


@pytest.mark.parametrize(("action", "who", "prepare", "write", "happened"),
                         [pytest.param(*row[1:], id=row[0]) for row in WRITES])
def test_a_write_that_happens_has_exactly_its_entry(world, action, who, prepare, write, happened):
    prepared = prepare(world) if prepare else None
    actor = _actor_for(world, who)
    write(world, actor, prepared)
    assert happened(world)
    assert _allowed(action, actor=actor.user)


def test_a_token_revocation_is_logged_with_it_and_rolls_back_with_it(world, monkeypatch):
    actor = Actor(world.dr_house.user)
    token, _raw = api_token_create(actor=actor, label="Poste 1")
    original = audit.log_access

    def failing(**entry):
        written = original(**entry)
        if entry["action"] == "api_token_revoke":
            raise RuntimeError("boom")
        return written

    monkeypatch.setattr(audit, "log_access", failing)
    with pytest.raises(RuntimeError):
        api_token_revoke(actor=actor, token=token)
    monkeypatch.undo()
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None
    assert not _allowed("api_token_revoke")
    api_token_revoke(actor=actor, token=token)
    assert _allowed("api_token_revoke", actor=world.dr_house.user).object_id == str(token.pk)
    # Someone else's token: refused, and the refusal is written.
    with pytest.raises(AccessRefused):
        api_token_revoke(actor=Actor(world.dr_grant.user), token=token)
    assert AuditEntry.objects.filter(action="api_token_revoke", allowed=False, actor=world.dr_grant.user).exists()


def test_a_new_record_without_consent_leaves_no_creation(world):
    with pytest.raises(InvalidInput):
        record_create(actor=Actor(world.agent.user), family_name="Diallo", given_names="Awa",
                      birth_date=date(1990, 1, 2), consented=False, break_glass_allowed=True, samu_allowed=True)
    assert not _allowed("create_record", actor=world.agent.user)


# --- refusals that must outlive the caller's transaction -----------------------------------------


def test_a_refused_onboarding_keeps_its_refusal(world):
    # record_onboard creates the record in its own transaction: the refusal is written before it.
    with pytest.raises(AccessRefused):
        record_onboard(actor=Actor(world.nobody), family_name="Diallo", given_names="Awa",
                       birth_date=date(1990, 1, 2), consented=True, break_glass_allowed=True, samu_allowed=True)
    assert AuditEntry.objects.filter(actor=world.nobody, action="create_record", allowed=False).exists()


def test_a_counter_reset_refused_at_its_last_step_keeps_its_refusal(world):
    # The record closed while the request waited: the refusal is written once the locked block is
    # left, so it is not rolled back with it.
    now = timezone.now()
    reset = CounterReset.objects.create(
        record=world.record, requested_by=world.other_agent.user, organisation=world.other_agent.organisation,
        created_at=now, expires_at=now + timedelta(minutes=15), identity_document="residence_permit",
        identity_document_end="789", rule="counter_reset_person_present")
    Record.objects.filter(pk=world.record.pk).update(state=Record.State.CLOSED, closed_at=now)
    with pytest.raises(AccessRefused):
        counter_reset_finish(actor=Actor(world.other_agent.user), reset=reset)
    refused = AuditEntry.objects.get(actor=world.other_agent.user, action="reset_credentials")
    assert (refused.allowed, refused.rule) == (False, "record_closed")
    assert CounterReset.objects.get(pk=reset.pk).state == CounterReset.State.PENDING


# --- A page's reads, written together -----------------------------------------------------------

def test_a_pages_reads_are_kept_until_it_is_done_then_written_in_one_append(world, django_assert_num_queries):
    actor = Actor(world.dr_house.user)
    actor.notified_records.add(world.record.pk)  # the patient's notice is not what is counted here
    page = access_log.reads_logged_together(actor)
    page.__enter__()
    access_log.authorise_read(actor, Action.VIEW_RECORD, world.record)
    access_log.authorise_read(actor, Action.VIEW_SYNTHESIS, world.record)
    access_log.authorise_read(actor, Action.VIEW_DOCUMENT, world.docs["consultation"])
    assert not AuditEntry.objects.filter(actor=actor.user).exists()
    with django_assert_num_queries(3):  # the chain's lock, one insert, the chain's head
        page.__exit__(None, None, None)
    entries = list(AuditEntry.objects.filter(actor=actor.user).order_by("seq"))
    assert [e.action for e in entries] == [Action.VIEW_RECORD, Action.VIEW_SYNTHESIS, Action.VIEW_DOCUMENT]
    assert [e.chain_seq for e in entries] == list(range(entries[0].chain_seq, entries[0].chain_seq + 3))
    assert entries[-1].object_id == str(world.docs["consultation"].pk)
    assert audit.verify_chain() is None


def test_a_refusal_inside_a_page_is_written_at_once_after_the_reads_kept(world):
    actor = Actor(world.dr_house.user)
    with access_log.reads_logged_together(actor):
        access_log.authorise_read(actor, Action.VIEW_RECORD, world.record)
        assert not access_log.authorise_read(actor, Action.EXPORT_RECORD, world.record)
        written = list(AuditEntry.objects.filter(actor=actor.user).order_by("seq").values_list("action", "allowed"))
        assert written == [(Action.VIEW_RECORD, True), (Action.EXPORT_RECORD, False)]
    assert AuditEntry.objects.filter(actor=actor.user).count() == 2
    assert audit.verify_chain() is None


def test_the_reads_kept_are_written_when_the_page_fails(world):
    actor = Actor(world.dr_house.user)
    with pytest.raises(RuntimeError), access_log.reads_logged_together(actor):
        access_log.authorise_read(actor, Action.VIEW_RECORD, world.record)
        raise RuntimeError("the page fails after reading")
    assert _allowed(Action.VIEW_RECORD, actor=actor.user) is not None


def test_a_record_page_logs_everything_it_read_before_it_answers(client, world):
    client.force_login(world.mother)
    response = client.get(reverse("portal_patient:record", args=[world.leo_record.pk]))
    assert response.status_code == 200
    actions = set(AuditEntry.objects.filter(actor=world.mother, record_id_ref=world.leo_record.pk)
                  .values_list("action", flat=True))
    assert {Action.VIEW_RECORD, Action.VIEW_PERSONAL_DATA, Action.VIEW_ACCESS_HISTORY} <= actions


def test_the_standing_loaded_with_a_record_is_its_readers_only(world):
    from dmp.selectors import get_record_for

    record = get_record_for(Actor(world.dr_house.user), world.record.pk)
    assert not [name for name in vars(record) if name.startswith("standing_fact_")]
    blocked = Actor(world.blocked_kine.user)
    assert decide(blocked, Action.VIEW_RECORD, record).rule == "blocked_professional"
    assert decide(Actor(world.stranger.user), Action.VIEW_RECORD, record).rule == "no_care_authorisation"
