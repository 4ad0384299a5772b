"""An emergency opening happens once per professional and record while it is in force (issue
15): twenty submissions at the same moment (a double-click, a retrying browser) give one care
authorisation and one set of notices; opening again later reuses it, written in the log as
such; once it has expired, a new opening is a new authorisation."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.urls import reverse
from django.utils import timezone

from dmp.models import AuditEntry, CareAuthorisation, Notification, Record
from dmp.policy import Actor
from dmp.selectors import get_record_for
from dmp.services import break_glass_open

IDENTITY = {"family_name": "MARTIN", "given_names": "alice", "birth_date": date(1970, 5, 17), "emergency": True}


def _open(world, justification="Unconscious after a fall, brought by the firemen."):
    record = Record.objects.get(pk=world.record.pk)
    return break_glass_open(actor=Actor(world.stranger.user), record=record, justification=justification, **IDENTITY)


def _openings(world):
    return CareAuthorisation.objects.filter(professional=world.stranger, kind=CareAuthorisation.Kind.BREAK_GLASS)


def _notices():
    return list(Notification.objects.filter(event__startswith="break_glass").order_by("pk"))


def _one_set_of_notices(grant):
    """The notices of one opening: each recipient told once per channel, all about this grant."""
    notices = _notices()
    assert notices, "an opening is told"
    assert len({(n.event, n.recipient_id, n.channel) for n in notices}) == len(notices)
    assert all(f"break_glass:{grant.pk}" in n.idempotency_key for n in notices)
    return notices


def _race(n: int, submit) -> list:
    """`submit` from `n` threads released at the same moment, each on its own connection: what
    each returned (any thread's error fails the test)."""
    start, answers, errors = threading.Barrier(n), [], []

    def run():
        try:
            start.wait(10)
            answers.append(submit())
        except Exception as exc:  # noqa: BLE001 - reported below, with the thread's error
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, daemon=True) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    return answers


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_break_glass_give_one_authorisation_and_one_set_of_notices(world):
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent connections")
    grants = _race(20, lambda: _open(world).pk)
    [grant] = _openings(world)
    assert grants == [grant.pk] * 20  # every submission answers with the one opening
    _one_set_of_notices(grant)
    entries = AuditEntry.objects.filter(actor=world.stranger.user, action="break_glass", allowed=True)
    # Each submission is in the log, naming the one authorisation: one opening, 19 reuses.
    assert sorted(entries.values_list("rule", flat=True)) == ["break_glass"] + ["break_glass_in_force"] * 19
    assert set(entries.values_list("object_id", flat=True)) == {str(grant.pk)}


@pytest.mark.django_db(transaction=True)
def test_concurrent_samu_reads_tell_the_patient_once(world):
    """The SAMU regulator opens no authorisation (the standing is the regulator's own): the
    opening the patient hears of is the day's first read, kept to one notice per regulator,
    record and day by the notice's unique key, even when the reads race."""
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent connections")
    _race(10, lambda: get_record_for(Actor(world.regulator.user), world.record.pk))
    notices = Notification.objects.filter(event="samu_access")
    assert notices.exists()
    assert len({(n.recipient_id, n.channel) for n in notices}) == notices.count()
    assert not CareAuthorisation.objects.filter(professional=world.regulator).exists()
    assert AuditEntry.objects.filter(actor=world.regulator.user, mode="samu", allowed=True).count() == 10


@pytest.mark.django_db
def test_opening_again_while_in_force_reuses_it_and_tells_nobody(world):
    first = _open(world)
    notices = _one_set_of_notices(first)
    later = _open(world, justification="Still unconscious, a second look.")
    assert later.pk == first.pk and _openings(world).count() == 1
    assert later.justification == first.justification and later.expires_at == first.expires_at
    assert _notices() == notices
    reuse = AuditEntry.objects.filter(actor=world.stranger.user, action="break_glass").order_by("-seq").first()
    assert (reuse.allowed, reuse.rule, reuse.mode, reuse.object_id) == (
        True, "break_glass_in_force", "break_glass", str(first.pk))


@pytest.mark.django_db
def test_after_expiry_a_new_opening_is_a_new_authorisation(world):
    first = _open(world)
    # Its time is over, and the periodic task has not marked it ended yet.
    CareAuthorisation.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - timedelta(hours=5), expires_at=timezone.now() - timedelta(hours=1))
    second = _open(world, justification="Back in the emergency room.")
    assert second.pk != first.pk
    first.refresh_from_db()
    assert first.ended_at == first.expires_at  # ended at its expiry, as the task would have done
    assert second.ended_at is None and second.expires_at > timezone.now()
    assert {n.idempotency_key.split(":")[1] for n in _notices()} == {str(first.pk), str(second.pk)}


@pytest.mark.django_db
def test_the_database_refuses_a_second_emergency_opening_in_force(world):
    first = _open(world)
    with pytest.raises(IntegrityError), transaction.atomic():
        CareAuthorisation.objects.create(record=world.record, professional=world.stranger, kind=first.kind,
                                         justification="again", expires_at=first.expires_at)
    # Ended, it leaves its place: the history of openings is kept.
    CareAuthorisation.objects.filter(pk=first.pk).update(ended_at=timezone.now())
    CareAuthorisation.objects.create(record=world.record, professional=world.stranger, kind=first.kind,
                                     justification="again", expires_at=first.expires_at)
    assert _openings(world).count() == 2


@pytest.mark.django_db
def test_a_double_post_of_the_form_opens_once(client, world):
    client.force_login(world.stranger.user)
    data = {"family_name": "MARTIN", "given_names": "alice", "birth_date": "1970-05-17",
            "justification": "Unconscious after a fall, brought by the firemen.", "emergency": "on"}
    url = reverse("portal_pro:break_glass", args=[world.record.pk])
    for _ in range(2):
        response = client.post(url, data)
        assert response.status_code == 302
        assert response["Location"] == reverse("portal_pro:record", args=[world.record.pk])
    [grant] = _openings(world)
    _one_set_of_notices(grant)
    assert client.get(reverse("portal_pro:record", args=[world.record.pk])).status_code == 200


@pytest.mark.django_db
def test_the_migration_settles_the_openings_the_constraint_would_refuse(world):
    """Before the constraint: 3 openings in force for one professional and record, one expired
    but not marked ended. The migration ends the expired one at its expiry and keeps the
    longest of the others in force; the constraint can then be added."""
    import importlib

    from django.apps import apps

    if connection.vendor != "postgresql":
        pytest.skip("SQLite changes a schema only outside a transaction, and the test runs in one")

    migration = importlib.import_module("dmp.migrations.0013_one_emergency_opening")
    [constraint] = [c for c in CareAuthorisation._meta.constraints if c.name == "one_emergency_opening_in_force"]
    now = timezone.now()

    def opening(**times):
        return CareAuthorisation.objects.create(record=world.record, professional=world.stranger,
                                                kind=CareAuthorisation.Kind.BREAK_GLASS, justification="Fall", **times)

    with connection.schema_editor() as editor:
        editor.remove_constraint(CareAuthorisation, constraint)
        expired = opening(created_at=now - timedelta(hours=6), expires_at=now - timedelta(hours=2))
        shorter = opening(created_at=now - timedelta(hours=1), expires_at=now + timedelta(hours=3))
        longest = opening(created_at=now, expires_at=now + timedelta(hours=4))
        migration.settle_duplicate_openings(apps, editor)
        editor.add_constraint(CareAuthorisation, constraint)
    for grant in (expired, shorter, longest):
        grant.refresh_from_db()
    assert expired.ended_at == expired.expires_at
    assert shorter.ended_at is not None and shorter.ended_at <= timezone.now()
    assert longest.ended_at is None
    assert [g.pk for g in _openings(world).active()] == [longest.pk]
