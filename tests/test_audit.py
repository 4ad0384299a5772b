"""The access ledger: every read by someone other than the patient and every refusal is
written; each record has its own hash chain, every entry carries an HMAC under a key the
database does not hold, signed checkpoints live outside the database, and `verify_audit`
names the first bad entry whatever a database holder did: altered, inserted, deleted (middle,
newest, whole chain), reordered, or a consistent rewrite without the key. PostgreSQL itself
refuses UPDATE and DELETE on the entries; appends to different records do not wait for each
other."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction

from dmp import audit
from dmp.access_log import authorise_read
from dmp.models import AuditChainHead, AuditCheckpoint, AuditEntry, AuditMode
from dmp.policy import Action, Actor, Decision


def _reads(world, n=3):
    for persona in ("dr_house", "dr_grant", "urgentist")[:n]:
        authorise_read(Actor(getattr(world, persona).user, ip="10.0.0.7"), Action.VIEW_RECORD, world.record)


@pytest.mark.django_db
def test_reads_by_professionals_are_logged_with_who_mode_and_address(world):
    _reads(world)
    entries = list(AuditEntry.objects.order_by("seq"))
    assert [(e.mode, e.allowed, e.ip) for e in entries] == [
        ("treating_doctor", True, "10.0.0.7"),
        ("normal", True, "10.0.0.7"),
        ("break_glass", True, "10.0.0.7"),
    ]
    assert entries[0].actor_id == world.dr_house.user.pk
    assert "RPPS" in entries[0].actor_label and entries[0].record_id_ref == world.record.pk


@pytest.mark.django_db
def test_the_client_address_comes_from_the_proxy_header_only_when_configured(rf, settings, world):
    request = rf.get("/", HTTP_X_REAL_IP="203.0.113.9", REMOTE_ADDR="127.0.0.1")
    request.user = world.dr_house.user
    assert Actor.from_request(request).ip == "127.0.0.1"
    settings.CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    assert Actor.from_request(request).ip == "203.0.113.9"


@pytest.mark.django_db
def test_refused_attempts_are_logged(world):
    authorise_read(Actor(world.stranger.user), Action.VIEW_DOCUMENT, world.docs["consultation"])
    entry = AuditEntry.objects.get()
    assert (entry.allowed, entry.rule, entry.object_type) == (False, "no_care_authorisation", "document")


@pytest.mark.django_db
def test_the_patients_own_reads_are_not_logged_but_their_refusals_are(world):
    authorise_read(Actor(world.alice), Action.VIEW_RECORD, world.record)
    assert not AuditEntry.objects.exists()
    authorise_read(Actor(world.alice), Action.VIEW_DOCUMENT, world.docs["withheld"])
    assert AuditEntry.objects.get().rule == "document_not_visible"


@pytest.mark.django_db
def test_the_log_refuses_updates_and_deletes_through_the_orm(world):
    _reads(world, 1)
    entry = AuditEntry.objects.get()
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().update(allowed=False)
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()


def _sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _tamper(statement, params=()):
    """What whoever holds the database can do: switch the table's triggers off (as its owner),
    then write SQL. Rolled back with the test's transaction."""
    if connection.vendor == "postgresql":
        _sql(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
    _sql(statement, params)


TABLE = AuditEntry._meta.db_table
HEADS = AuditChainHead._meta.db_table


def _chain(world):
    return list(AuditEntry.objects.filter(chain=world.record.pk).order_by("chain_seq"))


def _verify(*args):
    out = StringIO()
    call_command("verify_audit", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_verify_audit_passes_on_an_intact_ledger(world):
    _reads(world)
    assert "intact: 3 entries in 1 chains" in _verify("--full")
    entries = _chain(world)
    assert [e.chain_seq for e in entries] == [1, 2, 3]
    assert entries[1].prev_hash == entries[0].hash and entries[0].prev_hash == "0" * 64
    assert entries[0].key_id == audit.key_id(audit.settings.AUDIT_HMAC_KEYS[0]) and len(entries[0].mac) == 64


@pytest.mark.django_db
def test_each_record_has_its_own_chain_and_entries_without_a_record_theirs(world):
    _reads(world, 1)
    authorise_read(Actor(world.dr_house.user), Action.VIEW_RECORD, world.leo_record)
    audit.log_access(actor_user=None, actor_label="system", role="system", ip=None, action="admin_change",
                     decision=Decision(True, "delegated_administration", AuditMode.ADMIN, ""), record_id=None)
    heads = dict(AuditChainHead.objects.values_list("chain", "last_chain_seq"))
    assert heads == {world.record.pk: 1, world.leo_record.pk: 1, 0: 1}
    assert audit.verify_chain() is None


@pytest.mark.django_db
def test_verify_audit_catches_an_altered_row(world):
    _reads(world)
    # Someone with database access turns a break-glass read into a normal one.
    _tamper(f"UPDATE {TABLE} SET mode = 'normal' WHERE seq = %s", [_chain(world)[2].seq])
    with pytest.raises(CommandError, match=r"position 3\): its content was altered"):
        _verify("--full")


@pytest.mark.django_db
def test_verify_audit_catches_a_consistent_rewrite_by_someone_without_the_key(world):
    """The old ledger's weakness: change one decision, recompute every later hash and the head.
    Every hash and link is right again; the MACs are not, and cannot be without the key."""
    _reads(world)
    entries = _chain(world)
    entries[1].allowed, entries[1].rule = False, "no_care_authorisation"
    prev = entries[0].hash
    for entry in entries[1:]:
        entry.prev_hash = prev
        entry.hash = entry.compute_hash()
        _tamper(f"UPDATE {TABLE} SET allowed = %s, rule = %s, prev_hash = %s, hash = %s WHERE seq = %s",
                [entry.allowed, entry.rule, entry.prev_hash, entry.hash, entry.seq])
        prev = entry.hash
    _sql(f"UPDATE {HEADS} SET last_hash = %s WHERE chain = %s", [prev, world.record.pk])
    with pytest.raises(CommandError, match=r"position 2\): its MAC is not valid"):
        _verify("--full")


@pytest.mark.django_db
def test_verify_audit_catches_a_deleted_row_in_the_middle(world):
    _reads(world)
    _tamper(f"DELETE FROM {TABLE} WHERE seq = %s", [_chain(world)[1].seq])
    with pytest.raises(CommandError, match=r"position 3\): an entry is missing before it"):
        _verify("--full")


@pytest.mark.django_db
def test_verify_audit_catches_the_newest_row_deleted_against_the_chain_head(world):
    _reads(world)
    _tamper(f"DELETE FROM {TABLE} WHERE seq = %s", [_chain(world)[2].seq])
    with pytest.raises(CommandError, match=r"chain \d+: entries after position 2 were deleted"):
        _verify("--full")


@pytest.mark.django_db
def test_verify_audit_catches_the_newest_row_deleted_and_the_head_rewritten_against_the_checkpoint(world):
    """The head lives in the database too: whoever deletes the newest entry rewrites it. The
    signed checkpoint, outside the database, still says how far the chain went."""
    _reads(world)
    audit.checkpoint_create()
    entries = _chain(world)
    _tamper(f"DELETE FROM {TABLE} WHERE seq = %s", [entries[2].seq])
    _sql(f"UPDATE {HEADS} SET last_chain_seq = 2, last_hash = %s WHERE chain = %s", [entries[1].hash, world.record.pk])
    with pytest.raises(CommandError, match=r"entries up to position 3, signed by checkpoint #1, were deleted"):
        _verify("--full")


@pytest.mark.django_db
def test_verify_audit_catches_a_whole_chain_deleted_after_a_checkpoint(world):
    _reads(world)
    audit.checkpoint_create()
    _tamper(f"DELETE FROM {TABLE} WHERE chain = %s", [world.record.pk])
    _sql(f"DELETE FROM {HEADS} WHERE chain = %s", [world.record.pk])
    with pytest.raises(CommandError, match=r"signed by checkpoint #1, were deleted \(the chain ends at 0\)"):
        _verify("--full")


@pytest.mark.django_db
def test_verify_audit_catches_an_inserted_row(world):
    _reads(world)
    entries = _chain(world)
    # A forged entry slipped in at position 2, self-consistent and linked, later ones moved up.
    _tamper(f"UPDATE {TABLE} SET chain_seq = chain_seq + 1000 WHERE chain = %s AND chain_seq >= 2", [world.record.pk])
    _sql(f"UPDATE {TABLE} SET chain_seq = chain_seq - 999 WHERE chain = %s AND chain_seq >= 1000", [world.record.pk])
    forged = AuditEntry(**{f.attname: getattr(entries[0], f.attname) for f in AuditEntry._meta.concrete_fields
                           if f.attname not in ("seq", "hash")})
    forged.chain_seq, forged.rule, forged.prev_hash = 2, "forged", entries[0].hash
    forged.hash = forged.compute_hash()
    forged.mac = hmac.new(b"a guessed key", forged.hash.encode(), hashlib.sha256).hexdigest()
    forged.save()
    with pytest.raises(CommandError, match=r"position 2\): its MAC is not valid"):
        _verify("--full")


@pytest.mark.django_db
def test_verify_audit_catches_two_entries_swapped_in_the_chain(world):
    _reads(world)
    second, third = _chain(world)[1:]
    _tamper(f"UPDATE {TABLE} SET chain_seq = 1000 WHERE seq = %s", [second.seq])
    _sql(f"UPDATE {TABLE} SET chain_seq = 2 WHERE seq = %s", [third.seq])
    _sql(f"UPDATE {TABLE} SET chain_seq = 3 WHERE seq = %s", [second.seq])
    with pytest.raises(CommandError, match=r"position 2\): it does not link to the previous entry"):
        _verify("--full")


@pytest.mark.django_db
def test_verify_audit_catches_entries_reordered_in_the_global_sequence(world):
    _reads(world)
    second, third = _chain(world)[1:]
    _tamper(f"UPDATE {TABLE} SET seq = -1 WHERE seq = %s", [second.seq])
    _sql(f"UPDATE {TABLE} SET seq = %s WHERE seq = %s", [second.seq, third.seq])
    _sql(f"UPDATE {TABLE} SET seq = %s WHERE seq = -1", [third.seq])
    with pytest.raises(CommandError, match=r"position 3\): it comes before the previous entry"):
        _verify("--full")


@pytest.mark.django_db
def test_entries_signed_with_an_earlier_key_verify_while_it_is_listed(world, settings):
    _reads(world)
    settings.AUDIT_HMAC_KEYS = ["a-new-audit-key-put-first-for-rotation-0123456789", *settings.AUDIT_HMAC_KEYS]
    _reads(world, 1)
    assert len({e.key_id for e in _chain(world)}) == 2
    assert audit.verify_chain() is None
    settings.AUDIT_HMAC_KEYS = settings.AUDIT_HMAC_KEYS[:1]
    assert "its MAC is not valid" in str(audit.verify_chain())


# --- signed checkpoints outside the database ---------------------------------------------------

def _lines(settings):
    return [json.loads(line) for path in sorted(settings.AUDIT_CHECKPOINT_DIR.glob("*.jsonl"))
            for line in path.read_text().splitlines()]


@pytest.mark.django_db
def test_a_checkpoint_signs_the_heads_changed_since_the_last_one_to_a_file_and_the_log(world, settings, caplog):
    _reads(world)
    authorise_read(Actor(world.dr_house.user), Action.VIEW_RECORD, world.leo_record)
    with caplog.at_level("INFO", logger="dmp.audit.checkpoint"):
        first = audit.checkpoint_create()
    assert audit.checkpoint_create() is None  # nothing changed since
    _reads(world, 1)
    second = audit.checkpoint_create()
    lines = _lines(settings)
    assert [line["body"]["seq"] for line in lines] == [1, 2]
    assert first.body["chains"] == 2 and second.body["chains"] == 1
    assert second.body["leaves"] == [[world.record.pk, 4, _chain(world)[-1].hash]]
    assert second.body["prev"] == first.digest
    assert audit.signature_valid(audit.public_key(), lines[0]["body"], lines[0]["signature"])
    assert first.body["root"] in caplog.text and "leaves" not in caplog.text
    assert AuditCheckpoint.objects.count() == 2
    assert AuditChainHead.objects.get(chain=world.record.pk).checkpointed_chain_seq == 4
    out = StringIO()
    call_command("audit_checkpoint", "--public-key", stdout=out)
    assert out.getvalue().strip() == audit.public_key()


@pytest.mark.django_db
def test_the_beat_task_and_the_command_write_checkpoints(world, settings):
    from dmp.tasks import audit_checkpoint

    assert settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"] == {"task": "dmp.tasks.audit_checkpoint", "schedule": 60.0}
    _reads(world, 1)
    assert audit_checkpoint() == 1
    assert audit_checkpoint() is None
    _reads(world, 1)
    out = StringIO()
    call_command("audit_checkpoint", stdout=out)
    assert out.getvalue().startswith("Checkpoint #2: 1 chains")
    assert "2 signed checkpoints" in _verify("--full")


@pytest.mark.django_db
def test_verify_audit_refuses_an_altered_or_missing_checkpoint_line(world, settings):
    _reads(world)
    audit.checkpoint_create()
    _reads(world, 1)
    audit.checkpoint_create()
    path = next(settings.AUDIT_CHECKPOINT_DIR.glob("*.jsonl"))
    good = path.read_text()
    first, second = good.splitlines()
    path.write_text(first.replace('"chains":1', '"chains":9') + "\n" + second + "\n")
    with pytest.raises(CommandError, match=r"checkpoint #1: its signature is not valid"):
        _verify("--full")
    path.write_text(second + "\n")
    with pytest.raises(CommandError, match=r"checkpoint #1 is missing from the files"):
        _verify("--full")
    path.write_text(good + "not a checkpoint\n")
    with pytest.raises(CommandError, match=r"a line that is not a checkpoint"):
        _verify("--full")
    path.write_text(good)
    assert "2 signed checkpoints" in _verify("--full")


@pytest.mark.django_db
def test_verify_audit_is_incremental_from_the_last_verified_checkpoint_and_full_on_demand(world):
    _reads(world)
    audit.checkpoint_create()
    assert "3 entries in 1 chains" in _verify()
    assert AuditCheckpoint.objects.get().verified_at is not None
    authorise_read(Actor(world.dr_house.user), Action.VIEW_RECORD, world.leo_record)
    # Only Léo's chain changed since the verified checkpoint: Alice's is not walked again...
    assert "1 entries in 1 chains" in _verify()
    # ...so an old entry altered since is found by the full run (docs/deployment.md: run it nightly).
    _tamper(f"UPDATE {TABLE} SET rule = 'x' WHERE seq = %s", [_chain(world)[0].seq])
    _verify()
    with pytest.raises(CommandError, match="its content was altered"):
        _verify("--full")


# --- the database refuses, and nobody waits for another record ---------------------------------


@pytest.mark.django_db
def test_postgresql_refuses_update_and_delete_of_audit_entries(world):
    if connection.vendor != "postgresql":
        pytest.skip("the trigger is PostgreSQL's")
    _reads(world, 1)
    for statement in (f"UPDATE {TABLE} SET allowed = false", f"DELETE FROM {TABLE}"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            _sql(statement)
    assert AuditEntry.objects.count() == 1


def _append(record_id, label="x"):
    return audit.log_access(actor_user=None, actor_label=label, role="system", ip=None, action="view_record",
                            decision=Decision(True, "test", AuditMode.ADMIN, ""), record_id=record_id)


def _in_thread(target):
    def run():
        try:
            target()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _blocked_by(pid: int, waiter: threading.Thread, timeout: float = 10) -> bool:
    """Whether some backend comes to wait on a lock `pid` holds while `waiter` still runs."""
    deadline = time.monotonic() + timeout
    while waiter.is_alive() and time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [pid])
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.01)
    return False


@pytest.mark.django_db(transaction=True)
def test_appends_to_different_records_do_not_wait_and_one_records_order_is_kept():
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent connections")
    holding, release, done, holder_pid = threading.Event(), threading.Event(), [], []

    def hold_record_1():
        with transaction.atomic():
            _append(900001, "first")
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                holder_pid.append(cursor.fetchone()[0])
            holding.set()
            release.wait(20)

    holder = _in_thread(hold_record_1)
    assert holding.wait(10)
    other = _in_thread(lambda: done.append(_append(900002)))
    other.join(5)
    assert done, "an append to another record waited for record 900001's open transaction"
    same = _in_thread(lambda: done.append(_append(900001, "second")))
    # PostgreSQL says when a backend waits on the holder's lock: no fixed delay to sit out.
    assert _blocked_by(holder_pid[0], same), "an append to the same record must wait for the chain's lock"
    assert same.is_alive(), "an append to the same record must wait for the chain's lock"
    release.set()
    holder.join(10)
    same.join(10)
    chain = list(AuditEntry.objects.filter(chain=900001).order_by("chain_seq"))
    assert [(e.chain_seq, e.actor_label) for e in chain] == [(1, "first"), (2, "second")]
    assert chain[0].seq < chain[1].seq and chain[1].prev_hash == chain[0].hash
    assert audit.verify_chain() is None
