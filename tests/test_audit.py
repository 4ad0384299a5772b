"""The audit log: every read by someone other than the patient and every refusal is written;
the chain is tamper-evident and `verify_audit` names the first bad entry."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from dmp.access_log import authorise_read
from dmp.models import AuditEntry
from dmp.policy import Action, Actor


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


@pytest.mark.django_db
def test_verify_audit_passes_on_an_intact_chain(world, capsys):
    _reads(world)
    call_command("verify_audit")
    assert "intact: 3 entries" in capsys.readouterr().out


def _sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@pytest.mark.django_db
def test_verify_audit_catches_an_altered_row(world):
    _reads(world)
    # Someone with database access turns a break-glass read into a normal one.
    _sql(f"UPDATE {AuditEntry._meta.db_table} SET mode = 'normal' WHERE seq = 3")
    with pytest.raises(CommandError, match=r"#3: its content was altered"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_verify_audit_catches_a_deleted_row(world):
    _reads(world)
    _sql(f"DELETE FROM {AuditEntry._meta.db_table} WHERE seq = 2")
    with pytest.raises(CommandError, match=r"#3: an entry is missing before it"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_verify_audit_catches_the_newest_rows_deleted(world):
    _reads(world)
    _sql(f"DELETE FROM {AuditEntry._meta.db_table} WHERE seq = 3")
    with pytest.raises(CommandError, match=r"#3: entries after #2 were deleted"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_verify_audit_catches_an_inserted_row(world):
    _reads(world)
    # A forged entry slipped in first, with a self-consistent hash: the next entry no longer links.
    _sql(f"UPDATE {AuditEntry._meta.db_table} SET seq = seq + 1000")
    _sql(f"UPDATE {AuditEntry._meta.db_table} SET seq = seq - 999")
    model = AuditEntry.objects.get(seq=2)
    forged = AuditEntry(**{f.attname: getattr(model, f.attname) for f in AuditEntry._meta.concrete_fields
                           if f.attname not in ("id", "hash")})
    forged.seq, forged.rule, forged.prev_hash = 1, "forged", "0" * 64
    forged.hash = forged.compute_hash()
    forged.save()
    with pytest.raises(CommandError, match=r"#2: it does not link to the previous entry"):
        call_command("verify_audit")
