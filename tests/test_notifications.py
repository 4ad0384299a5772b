"""Notifications (DOMAIN.md §5): each event writes its outbox rows in the transaction of the
change, on the channels the patient chose (every channel for emergencies and account security),
in their language, never with medical content; the sender claims a row once, retries with
backoff, ends dead in admin, and a row sent again after a crash is delivered once."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from dmp import notifications
from dmp.access_log import authorise_read
from dmp.models import AuditEntry, CareAuthorisation, Document, Notification, Record, TreatingDoctor, User
from dmp.notifications import message_id, notification_send, notify
from dmp.policy import Action, Actor, decide
from dmp.selectors import get_record_for
from dmp.services import (
    AccessRefused,
    InvalidInput,
    break_glass_open,
    document_add,
    record_create,
    record_nir_attach,
)
from dmp.sms import BrevoSmsBackend, MemorySmsBackend, SmsError
from tests.outbox import notifications_sent_at_once  # noqa: F401 - autouse: notices sent at commit
from tests.sample_files import text_pdf

NIR = "255081416802538"  # a valid NIR (key 38)


def rows(**filters) -> list[Notification]:
    return list(Notification.objects.filter(**filters).order_by("pk"))


def create(world, **extra) -> Record:
    values = {"family_name": "Haddad", "given_names": "Nour", "birth_date": date(1990, 2, 3), "consented": True,
              "break_glass_allowed": True, "samu_allowed": True} | extra
    record, _credentials = record_create(actor=Actor(world.agent.user), **values)
    return record


def read_as(world, persona: str, record: Record | None = None) -> None:
    """One request's worth of reads by a professional: the record, then its synthesis."""
    actor = Actor(getattr(world, persona).user)
    record = get_record_for(actor, (record or world.record).pk)
    authorise_read(actor, Action.VIEW_SYNTHESIS, record)


# --- each event, its rows, its channels ---------------------------------------------------------------


@pytest.mark.django_db
def test_record_creation_is_told_on_the_chosen_channels_in_the_persons_language(
        world, mailoutbox, sms_outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        record = create(world, email="nour@example.org", phone="06 11 22 33 44", preferred_language="en")
    queued = rows(record=record)
    assert [(n.event, n.channel, n.language, n.status) for n in queued] == [
        ("record_created", "email", "en", "sent"), ("record_created", "sms", "en", "sent")]
    assert queued[0].destination == "nour@example.org" and queued[1].destination == "+33611223344"
    [mail] = mailoutbox
    assert "your record was created" in mail.subject and "was created on" in mail.body
    assert 'lang="en"' in mail.alternatives[0][0]
    assert mail.extra_headers["Message-ID"] == message_id(queued[0].idempotency_key)
    [(to, text)] = sms_outbox
    assert to == "+33611223344" and text.startswith("DMP: your shared medical record was created")


@pytest.mark.django_db
def test_a_rolled_back_event_leaves_no_notification(world, sms_outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        with transaction.atomic():
            create(world, phone="06 11 22 33 44")
            assert rows(event="record_created")  # written with the record...
            raise RuntimeError("the counter's browser gave up")
    assert not Notification.objects.exists() and not Record.objects.filter(family_name="Haddad").exists()
    assert not callbacks and not sms_outbox  # ...and gone with it, never sent


@pytest.mark.django_db
def test_a_person_without_email_or_phone_gets_no_notification(world):
    record = create(world)
    assert record.pk and not Notification.objects.exists()


@pytest.mark.django_db
def test_only_the_channels_the_patient_chose_are_used(world):
    Record.objects.filter(pk=world.record.pk).update(notify_by_sms=False)
    User.objects.filter(pk=world.alice.pk).update(email="alice@example.org")
    read_as(world, "dr_grant")
    assert [(n.event, n.channel) for n in rows()] == [("first_access", "email")]


@pytest.mark.django_db
def test_first_access_is_told_once_per_care_authorisation_and_names_the_professional_not_the_specialty(
        world, sms_outbox, django_capture_on_commit_callbacks):
    world.dr_grant.specialty = "Psychiatrie"
    world.dr_grant.save()
    with django_capture_on_commit_callbacks(execute=True):
        read_as(world, "dr_grant")
        read_as(world, "dr_grant")  # a second request: nothing more
        read_as(world, "kine")  # declared at a consultation: told at first access too
    assert [n.event for n in rows()] == ["first_access", "first_access"]
    grants = CareAuthorisation.objects.filter(record=world.record, professional__in=[world.dr_grant, world.kine])
    assert all(grant.patient_notified_at for grant in grants)
    texts = [text for _to, text in sms_outbox]
    assert "Anna Grant opened your record for the first time" in texts[0] and "Kim Kine" in texts[1]
    assert not any("Psychiatr" in text for text in texts)


@pytest.mark.django_db
def test_each_member_of_a_care_team_is_a_first_access_once(world):
    from dmp.models import Organisation
    from tests.personas import make_professional

    clinic = Organisation.objects.create(name="Clinique du Parc", kind=Organisation.Kind.FACILITY)
    nurse = make_professional("nina_nurse", "nurse", facility=clinic)
    colleague = make_professional("carl_colleague", facility=clinic)
    CareAuthorisation.objects.create(record=world.record, professional=world.dr_grant, facility=clinic,
                                     kind=CareAuthorisation.Kind.DECLARED_BY_PROFESSIONAL)
    for professional in (nurse, colleague, nurse):
        actor = Actor(professional.user)
        assert authorise_read(actor, Action.VIEW_RECORD, world.record).rule == "facility_care_team"
    assert [(n.event, n.context["professional"]) for n in rows()] == [
        ("first_access", "Nina Nurse"), ("first_access", "Carl Colleague")]


@pytest.mark.django_db
def test_the_notice_is_written_in_the_patients_language_not_the_readers(world, sms_outbox,
                                                                        django_capture_on_commit_callbacks):
    from django.utils import formats, translation

    User.objects.filter(pk=world.alice.pk).update(preferred_language="fr")
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
        read_as(world, "dr_grant")
    [notice] = rows()
    assert notice.language == "fr"
    with translation.override("fr"):
        today = formats.date_format(timezone.localdate(), "DATE_FORMAT")
    assert today in sms_outbox[0][1]


@pytest.mark.django_db
def test_the_medecin_traitant_and_emergencies_are_not_first_accesses(world):
    read_as(world, "dr_house")
    read_as(world, "urgentist")  # break-glass: told when it was opened, not at each read
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_every_access_is_told_only_when_asked_and_once_per_professional_per_day(world, monkeypatch):
    read_as(world, "dr_house")
    assert not Notification.objects.exists()
    Record.objects.filter(pk=world.record.pk).update(notify_every_access=True)
    world.record.refresh_from_db()
    read_as(world, "dr_house")
    read_as(world, "dr_house")
    assert [n.event for n in rows()] == ["access"]
    tomorrow = timezone.now() + timedelta(days=1)
    monkeypatch.setattr(timezone, "now", lambda: tomorrow)
    read_as(world, "dr_house")
    assert [n.event for n in rows()] == ["access", "access"]


@pytest.mark.django_db
def test_samu_access_is_always_told_whatever_the_channels_chosen_once_per_day(world, sms_outbox,
                                                                             django_capture_on_commit_callbacks):
    Record.objects.filter(pk=world.record.pk).update(notify_by_email=False, notify_by_sms=False)
    world.record.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        read_as(world, "regulator")
        read_as(world, "regulator")
    assert [(n.event, n.channel) for n in rows()] == [("samu_access", "sms")]
    [(_to, text)] = sms_outbox
    assert "SAMU" in text and "Regis Samu" in text


@pytest.mark.django_db
def test_samu_access_to_a_record_without_any_channel_tells_nobody(world):
    User.objects.filter(pk=world.alice.pk).update(phone="")
    world.record.refresh_from_db()
    read_as(world, "regulator")
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_break_glass_tells_the_patient_always_and_the_medecin_traitant_by_email_once_per_opening(
        world, mailoutbox, sms_outbox, django_capture_on_commit_callbacks):
    Record.objects.filter(pk=world.record.pk).update(notify_by_sms=False)
    User.objects.filter(pk=world.dr_house.user.pk).update(email="house@example.org", phone="+33600000001")
    record = Record.objects.get(pk=world.record.pk)
    with django_capture_on_commit_callbacks(execute=True):
        grant = break_glass_open(actor=Actor(world.stranger.user), record=record, family_name="MARTIN",
                                 given_names="alice", birth_date=date(1970, 5, 17),
                                 justification="Unconscious, HIV treatment unknown", emergency=True)
        read_as(world, "stranger")  # the reads of the opening are not told one by one
    assert [(n.event, n.channel, n.recipient_id) for n in rows()] == [
        ("break_glass", "sms", world.alice.pk), ("break_glass_treating_doctor", "email", world.dr_house.user.pk)]
    [(_to, text)] = sms_outbox
    assert "Sam Stranger opened your record in an emergency" in text
    [mail] = mailoutbox
    assert mail.to == ["house@example.org"] and "Alice Martin" in mail.body and "Sam Stranger" in mail.body
    for sent in (text, mail.body, mail.alternatives[0][0]):
        assert "HIV" not in sent and "Unconscious" not in sent  # the justification is medical
    assert grant.expires_at > timezone.now()


@pytest.mark.django_db
def test_a_new_document_by_a_professional_is_told_without_its_title(world, sms_outbox,
                                                                   django_capture_on_commit_callbacks):
    actor = Actor(world.dr_grant.user)
    with django_capture_on_commit_callbacks(execute=True):
        document_add(actor=actor, record=world.record, content=text_pdf("HIV viral load"), doc_type="lab_report",
                     title="HIV viral load", act_date=date(2026, 1, 5))
    [notice] = rows()
    assert (notice.event, notice.status) == ("document_added", "sent")
    [(_to, text)] = sms_outbox
    assert "a new document from Anna Grant" in text and "HIV" not in text
    assert "HIV" not in json.dumps(notice.context)


@pytest.mark.django_db
def test_a_withheld_result_and_the_patients_own_document_are_not_told_at_once(world):
    document_add(actor=Actor(world.dr_grant.user), record=world.record, content=text_pdf("result"),
                 doc_type="lab_report", title="result", act_date=date(2026, 1, 5),
                 withheld_until=timezone.now() + timedelta(days=3))
    document_add(actor=Actor(world.alice), record=world.record, content=text_pdf("mine"),
                 doc_type="patient_document", title="mine", act_date=date(2026, 1, 5))
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_a_result_released_by_its_author_is_told_once(world):
    from dmp.services import document_release
    from dmp.services.documents import documents_release_due

    Document.objects.filter(pk=world.docs["released"].pk).update(patient_notified_at=timezone.now())
    document_release(actor=Actor(world.dr_grant.user), document=Document.objects.get(pk=world.docs["withheld"].pk))
    assert [(n.event, n.context["professional"]) for n in rows()] == [("document_added", "Anna Grant")]
    assert documents_release_due() == 0 and len(rows()) == 1


@pytest.mark.django_db
def test_credentials_reset_and_contact_changed_go_to_every_channel_whatever_the_choices(world):
    Record.objects.filter(pk=world.record.pk).update(notify_by_email=False, notify_by_sms=False)
    notify(world.alice, "credentials_reset", record=world.record, organisation="CADA Lille", when=timezone.now())
    assert [(n.event, n.channel) for n in rows()] == [("credentials_reset", "sms")]


@pytest.mark.django_db
def test_the_same_event_is_queued_once(world):
    for _ in range(2):
        notify(world.alice, "record_created", record=world.record, key="record_created:x", when=timezone.now())
    assert len(rows()) == 1


@pytest.mark.django_db
def test_a_notification_holds_plain_values_only(world):
    with pytest.raises(TypeError):
        notify(world.alice, "document_added", record=world.record, document=world.docs["hidden"])


# --- the NIR, attached later ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_onboarding_counter_attaches_a_nir_and_the_patient_is_told(world):
    record = record_nir_attach(actor=Actor(world.agent.user), record=world.record, nir="2 55 08 14 168 025 38")
    assert Record.objects.get(pk=world.record.pk).nir == NIR == record.nir
    assert [n.event for n in rows()] == ["nir_attached"]
    assert AuditEntry.objects.filter(action="attach_nir", actor=world.agent.user, allowed=True).exists()
    assert User.objects.get(pk=world.alice.pk).username == "alice_martin"  # she logs in as before


@pytest.mark.django_db
@pytest.mark.parametrize(("persona", "allowed", "rule"), [
    ("agent", True, "counter_agent_onboarded"),
    ("other_agent", False, "not_onboarded_here"),
    ("alice", True, "holder"),
    ("dr_house", False, "holder_or_onboarding_counter_only"),
    ("admin", False, "administrator_no_medical_access"),
])
def test_who_may_attach_a_nir(world, persona, allowed, rule):
    user = getattr(world, persona)
    user = user if isinstance(user, User) else user.user
    decision = decide(Actor(user), Action.ATTACH_NIR, world.record)
    assert (decision.allowed, decision.rule) == (allowed, rule)


@pytest.mark.django_db
def test_a_nir_is_checked_attached_once_and_never_twice_in_the_register(world):
    agent = Actor(world.agent.user)
    with pytest.raises(InvalidInput, match="key does not match"):
        record_nir_attach(actor=agent, record=world.record, nir="255081416802539")
    with pytest.raises(AccessRefused):
        record_nir_attach(actor=Actor(world.other_agent.user), record=world.record, nir=NIR)
    Record.objects.filter(pk=world.leo_record.pk).update(nir=NIR)
    with pytest.raises(InvalidInput, match="already exists"):
        record_nir_attach(actor=agent, record=world.record, nir=NIR)
    Record.objects.filter(pk=world.leo_record.pk).update(nir=None)
    record_nir_attach(actor=agent, record=world.record, nir=NIR)
    with pytest.raises(InvalidInput, match="already has"):
        record_nir_attach(actor=agent, record=world.record, nir="161045935012338")
    assert not Notification.objects.exclude(event="nir_attached").exists()


# --- sending: claim, retries, dead, exactly once ------------------------------------------------------


def queued_sms(world) -> Notification:
    [notice] = notify(world.alice, "credentials_reset", record=world.record, organisation="CADA Lille",
                      when=timezone.now())
    return notice


@pytest.mark.django_db
def test_a_row_is_sent_once_however_often_its_task_runs(world, sms_outbox):
    notice = queued_sms(world)
    assert notification_send(notice.pk) == "sent"
    assert notification_send(notice.pk) == ""  # a redelivered task finds it sent
    assert len(sms_outbox) == 1
    notice.refresh_from_db()
    assert (notice.status, notice.attempts, notice.lease_until) == ("sent", 1, None) and notice.sent_at


@pytest.mark.django_db
def test_a_row_held_by_another_worker_is_left_alone_until_its_lease_ends(world, sms_outbox, settings):
    notice = queued_sms(world)
    Notification.objects.filter(pk=notice.pk).update(status="sending", lease_until=timezone.now() + timedelta(
        seconds=settings.NOTIFICATION_LEASE_SECONDS), attempts=1)
    assert notification_send(notice.pk) == "" and not sms_outbox
    later = timezone.now() + timedelta(seconds=settings.NOTIFICATION_LEASE_SECONDS + 1)
    assert notification_send(notice.pk, now=later) == "sent"
    assert len(sms_outbox) == 1


@pytest.mark.django_db
def test_a_crash_after_the_provider_accepted_does_not_deliver_twice(world, sms_outbox):
    notice = queued_sms(world)
    notification_send(notice.pk)
    # The worker died before "sent" was written: the row is still "sending", its lease runs out.
    Notification.objects.filter(pk=notice.pk).update(status="sending", sent_at=None,
                                                     lease_until=timezone.now() - timedelta(seconds=1))
    assert notification_send(notice.pk) == "sent"
    assert len(sms_outbox) == 1  # the gateway saw the same key twice and delivered it once
    assert Notification.objects.get(pk=notice.pk).attempts == 2


class FailingSms:
    error = SmsError("provider down")

    def send(self, *, to, text, idempotency_key=None):
        raise self.error


@pytest.mark.django_db
def test_failures_are_retried_with_exponential_backoff_then_dead(world, settings, monkeypatch):
    settings.SMS_BACKEND = "tests.test_notifications.FailingSms"
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 60
    notice = queued_sms(world)
    now = timezone.now()
    assert notification_send(notice.pk, now=now) == "failed"
    notice.refresh_from_db()
    assert (notice.attempts, notice.last_error, notice.next_attempt_at) == (1, "sms_unreachable",
                                                                            now + timedelta(seconds=60))
    assert notification_send(notice.pk, now=now + timedelta(seconds=59)) == ""  # not due yet
    now += timedelta(seconds=60)
    assert notification_send(notice.pk, now=now) == "failed"
    assert Notification.objects.get(pk=notice.pk).next_attempt_at == now + timedelta(seconds=120)
    assert notification_send(notice.pk, now=now + timedelta(seconds=120)) == "dead"
    notice.refresh_from_db()
    assert (notice.status, notice.attempts) == ("dead", 3)
    assert notification_send(notice.pk, now=now + timedelta(days=1)) == ""  # dead stays dead


@pytest.mark.django_db
def test_a_number_the_provider_refuses_is_dead_at_once(world, settings):
    settings.SMS_BACKEND = "tests.test_notifications.FailingSms"
    FailingSms.error = SmsError("HTTP 400", permanent=True)
    try:
        notice = queued_sms(world)
        assert notification_send(notice.pk) == "dead"
        assert Notification.objects.get(pk=notice.pk).last_error == "sms_refused"
    finally:
        FailingSms.error = SmsError("provider down")


@pytest.mark.django_db
def test_stuck_and_due_rows_are_found_by_the_periodic_sender(world, sms_outbox, settings):
    stuck, due, later, sent = (queued_sms(world) for _ in range(4))
    now = timezone.now()
    Notification.objects.filter(pk=stuck.pk).update(status="sending", lease_until=now - timedelta(seconds=1),
                                                    attempts=1)
    Notification.objects.filter(pk=due.pk).update(status="failed", next_attempt_at=now - timedelta(seconds=1))
    Notification.objects.filter(pk=later.pk).update(status="failed", next_attempt_at=now + timedelta(minutes=5))
    notification_send(sent.pk)
    assert notifications.notifications_send_due() == 2  # eager here: sent in this process
    statuses = dict(Notification.objects.values_list("pk", "status"))
    assert (statuses[stuck.pk], statuses[due.pk], statuses[later.pk], statuses[sent.pk]) == (
        "sent", "sent", "failed", "sent")


@pytest.mark.django_db
def test_the_brevo_adapter_tags_each_message_with_its_key(settings, monkeypatch):
    settings.SMS_API_KEY = "k"
    sent = []

    class Reply:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return b'{"messageId": 1}'

    def urlopen(request, timeout):
        sent.append(json.loads(request.data))
        return Reply()

    monkeypatch.setattr("urllib.request.urlopen", urlopen)
    BrevoSmsBackend().send(to="+33612345678", text="hello", idempotency_key="first_access:7:sms:abc")
    BrevoSmsBackend().send(to="+33612345678", text="hello")
    assert sent[0]["tag"] == "first_access:7:sms:abc" and "tag" not in sent[1]


def test_the_memory_gateway_delivers_each_key_once():
    MemorySmsBackend().send(to="+33600000000", text="a", idempotency_key="k")
    MemorySmsBackend().send(to="+33600000000", text="a", idempotency_key="k")
    MemorySmsBackend().send(to="+33600000000", text="b")
    assert [text for _to, text in MemorySmsBackend.outbox] == ["a", "b"]


# --- dead notifications in admin ----------------------------------------------------------------------


@pytest.mark.django_db
def test_dead_notifications_are_in_admin_without_content_and_can_be_sent_again(client, world, sms_outbox,
                                                                            django_capture_on_commit_callbacks):
    notice = queued_sms(world)
    Notification.objects.filter(pk=notice.pk).update(status="dead", attempts=8, last_error="sms_unreachable")
    client.force_login(world.admin)
    page = client.get(reverse("admin:dmp_notification_changelist") + "?status__exact=dead").content.decode()
    assert "sms_unreachable" in page and "credentials_reset" in page
    assert "+33612345678" not in page and "CADA Lille" not in page and "…78" in page
    detail = client.get(reverse("admin:dmp_notification_change", args=[notice.pk])).content.decode()
    assert "+33612345678" not in detail and "CADA Lille" not in detail
    assert client.get(reverse("admin:dmp_notification_add")).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:dmp_notification_changelist"),
                    {"action": "send_again", "_selected_action": [notice.pk]})
    notice.refresh_from_db()
    assert (notice.status, notice.attempts) == ("sent", 1) and len(sms_outbox) == 1


@pytest.mark.django_db
def test_the_medecin_traitant_without_email_is_not_told_and_nothing_breaks(world):
    TreatingDoctor.objects.filter(record=world.record).update(ended_at=None)
    break_glass_open(actor=Actor(world.stranger.user), record=world.record, family_name="Martin",
                     given_names="Alice", birth_date=date(1970, 5, 17), justification="Fall", emergency=True)
    assert [n.event for n in rows()] == ["break_glass"]
