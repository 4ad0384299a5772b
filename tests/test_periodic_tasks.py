"""The periodic tasks of Celery beat, each at its boundary date: a withheld result is told when
its date comes and not a second before; an emergency access is marked ended when it expires; a
record is destroyed ten years after its closure and not a day earlier (files, rows, a tombstone,
the audit chain intact); stuck notifications are sent again once their lease is over."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from dmp import tasks
from dmp.access_log import authorise_read
from dmp.audit import verify_chain
from dmp.celery import app
from dmp.models import (
    AuditEntry,
    CareAuthorisation,
    Document,
    Notification,
    PersonalProfile,
    Record,
    ReimbursementLine,
    User,
)
from dmp.notifications import notifications_send_due, notify
from dmp.policy import Action, Actor, decide
from dmp.selectors import documents_visible_to
from dmp.services.access import break_glass_expire_due
from dmp.services.documents import documents_release_due
from dmp.services.records import record_destruction_date, records_destroy_due
from tests.outbox import notifications_sent_at_once  # noqa: F401 - autouse: notices sent at commit

PARIS = ZoneInfo("Europe/Paris")


def test_every_periodic_task_names_a_real_task():
    import dmp.tasks  # noqa: F401 - registers the tasks

    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert names <= set(app.tasks), names - set(app.tasks)
    assert {"dmp.tasks.send_due_notifications", "dmp.tasks.release_withheld_documents", "dmp.tasks.expire_break_glass",
            "dmp.tasks.destroy_expired_records", "dmp.tasks.import_reimbursement_inbox"} <= names


# --- "not yet visible to the patient" ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_withheld_result_is_told_at_its_date_not_a_second_before(world, sms_outbox,
                                                                  django_capture_on_commit_callbacks):
    Document.objects.filter(pk=world.docs["released"].pk).update(patient_notified_at=timezone.now())
    document = world.docs["withheld"]
    due = timezone.now() + timedelta(hours=1)
    Document.objects.filter(pk=document.pk).update(withheld_from_patient_until=due)

    assert documents_release_due(at=due - timedelta(seconds=1)) == 0
    assert not Notification.objects.exists()
    assert decide(Actor(world.alice), Action.VIEW_DOCUMENT, Document.objects.get(pk=document.pk),
                  at=due - timedelta(seconds=1)).allowed is False

    with django_capture_on_commit_callbacks(execute=True):
        assert documents_release_due(at=due) == 1
    [notice] = Notification.objects.all()
    assert (notice.event, notice.record_id, notice.status) == ("document_added", world.record.pk, "sent")
    assert "a new document from Anna Grant" in sms_outbox[0][1] and "withheld" not in sms_outbox[0][1]
    assert decide(Actor(world.alice), Action.VIEW_DOCUMENT, Document.objects.get(pk=document.pk), at=due).allowed
    assert documents_release_due(at=due + timedelta(minutes=5)) == 0  # told once
    assert Notification.objects.count() == 1


@pytest.mark.django_db
def test_a_result_the_author_released_is_told_by_the_next_run(world):
    Document.objects.filter(pk=world.docs["withheld"].pk).update(withheld_from_patient_until=timezone.now())
    assert world.docs["withheld"].pk in set(documents_visible_to(Actor(world.alice), world.record).values_list(
        "pk", flat=True))
    assert documents_release_due() == 2  # this one and the one whose delay passed yesterday
    assert Notification.objects.filter(event="document_added").count() == 2


@pytest.mark.django_db
def test_a_result_in_a_closed_record_is_not_told(world):
    Record.objects.filter(pk=world.record.pk).update(state="closed", closed_at=timezone.now())
    assert documents_release_due() == 0


# --- break-glass -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_emergency_access_is_marked_ended_when_it_expires_and_nobody_is_told(world):
    grant = CareAuthorisation.objects.get(record=world.record, professional=world.urgentist)
    expires = grant.expires_at
    late = CareAuthorisation.objects.get(record=world.record, professional=world.late_urgentist)

    assert break_glass_expire_due(at=expires - timedelta(seconds=1)) == 1  # only the one already over
    grant.refresh_from_db()
    late.refresh_from_db()
    assert grant.ended_at is None and late.ended_at == late.expires_at
    assert decide(Actor(world.urgentist.user), Action.VIEW_RECORD, world.record, at=expires - timedelta(seconds=1))

    assert break_glass_expire_due(at=expires) == 1
    grant.refresh_from_db()
    assert grant.ended_at == expires
    refused = decide(Actor(world.urgentist.user), Action.VIEW_RECORD, world.record, at=expires)
    assert (refused.allowed, refused.rule) == (False, "break_glass_expired")
    assert break_glass_expire_due(at=expires + timedelta(hours=1)) == 0
    assert not Notification.objects.exists()


# --- destruction ten years after closure -------------------------------------------------------------


def _close(record: Record, when: datetime) -> None:
    Record.objects.filter(pk=record.pk).update(state="closed", closed_at=when, closure_reason="request")


@pytest.mark.django_db
def test_a_record_is_kept_ten_years_minus_a_day_and_destroyed_at_ten_years(world):
    record = world.record
    call_command("verify_audit", stdout=StringIO())
    # The record was read, so it has audit entries; it has documents with files, a profile,
    # reimbursements and notifications.
    authorise_read(Actor(world.dr_grant.user), Action.VIEW_RECORD, record)
    PersonalProfile.objects.create(record=record, blood_group="A+")
    ReimbursementLine.objects.create(record=record, date=date(2015, 1, 1), kind="care", code="G",
                                     label="Consultation", amount="19.00", external_id="X-1")
    notify(world.alice, "credentials_reset", record=record, organisation="CADA Lille", when=timezone.now())
    files = [d.file.name for d in Document.objects.filter(record=record)]
    assert files and all(default_storage.exists(name) for name in files)
    entries_before = AuditEntry.objects.filter(record_id_ref=record.pk).count()
    assert entries_before

    closed = datetime(2016, 3, 10, 15, 0, tzinfo=PARIS)
    _close(record, closed)
    assert record_destruction_date(Record.objects.get(pk=record.pk)).isoformat() == "2026-03-10"

    assert records_destroy_due(at=datetime(2026, 3, 9, 23, 59, 59, tzinfo=PARIS)) == []
    assert Record.objects.filter(pk=record.pk).exists() and all(default_storage.exists(n) for n in files)

    assert records_destroy_due(at=datetime(2026, 3, 10, 0, 0, 1, tzinfo=PARIS)) == [record.pk]
    assert not Record.objects.filter(pk=record.pk).exists()
    assert not any(default_storage.exists(name) for name in files)
    for model in (Document, PersonalProfile, ReimbursementLine, CareAuthorisation, Notification):
        assert not model.objects.filter(record_id=record.pk).exists(), model
    assert not User.objects.filter(pk=world.alice.pk).exists()
    # Only a tombstone, with ids: the earlier entries about the record stay, the chain holds.
    tombstone = AuditEntry.objects.get(action="destroy_record")
    assert (tombstone.record_id_ref, tombstone.object_id, tombstone.actor_id, tombstone.rule) == (
        record.pk, str(record.pk), None, "retention_period_over")
    assert AuditEntry.objects.filter(record_id_ref=record.pk).count() == entries_before + 1
    assert verify_chain() is None
    call_command("verify_audit", stdout=StringIO())
    # Everything else is untouched.
    assert Record.objects.filter(pk=world.leo_record.pk).exists()
    assert User.objects.filter(pk=world.dr_grant.user.pk).exists()
    assert records_destroy_due(at=datetime(2026, 3, 11, tzinfo=PARIS)) == []


@pytest.mark.django_db
def test_an_open_record_is_never_destroyed_and_a_29_february_closure_ends_on_28_february(world):
    Record.objects.filter(pk=world.leo_record.pk).update(created_at=datetime(2000, 1, 1, tzinfo=PARIS))
    _close(world.record, datetime(2016, 2, 29, 12, 0, tzinfo=PARIS))
    assert records_destroy_due(at=datetime(2026, 2, 27, 23, 0, tzinfo=PARIS)) == []
    assert records_destroy_due(at=datetime(2026, 2, 28, 1, 0, tzinfo=PARIS)) == [world.record.pk]
    assert records_destroy_due(at=datetime(2040, 1, 1, tzinfo=PARIS)) == []  # Léo's record is open


@pytest.mark.django_db
def test_a_destroyed_patient_who_represents_a_child_keeps_the_account_as_a_parent(world):
    from dmp.models import LegalRepresentative

    LegalRepresentative.objects.create(record=world.leo_record, user=world.alice, relationship="parent")
    _close(world.record, datetime(2010, 1, 1, tzinfo=PARIS))
    assert records_destroy_due() == [world.record.pk]
    assert User.objects.filter(pk=world.alice.pk).exists()
    assert decide(Actor(User.objects.get(pk=world.alice.pk)), Action.VIEW_RECORD, world.leo_record)


# --- stuck notifications -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_notification_stuck_in_sending_is_sent_again_once_its_lease_is_over(world, sms_outbox):
    [notice] = notify(world.alice, "credentials_reset", record=world.record, organisation="CADA Lille",
                      when=timezone.now())
    lease_end = timezone.now() + timedelta(seconds=30)
    Notification.objects.filter(pk=notice.pk).update(status="sending", lease_until=lease_end, attempts=1)
    assert notifications_send_due(now=lease_end) == 0  # its worker may still be sending
    assert notifications_send_due(now=lease_end + timedelta(microseconds=1)) == 1  # past it: stuck
    assert tasks.send_due_notifications() == 0  # the beat task, now: the lease still holds
    assert not sms_outbox
    Notification.objects.filter(pk=notice.pk).update(lease_until=timezone.now() - timedelta(microseconds=1))
    assert tasks.send_due_notifications() == 1
    notice.refresh_from_db()
    assert (notice.status, notice.attempts, len(sms_outbox)) == ("sent", 2, 1)
