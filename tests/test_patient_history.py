"""The patient's access history, through the views: what professionals, emergency doctors,
counter agents and representatives did shows, the patient's own visits never do, emergency
and SAMU accesses stand out, refusals are marked, filters narrow, and the page costs the same
number of queries whatever the length of the history."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dmp import audit, services
from dmp.access_log import authorise_read
from dmp.models import AuditEntry, Record
from dmp.policy import Action, Actor, decide
from tests.personas import user_of

pytestmark = pytest.mark.django_db


def _history(client, record, **params):
    return client.get(reverse("portal_patient:history", args=[record.pk]), params)


def _pro_get(client, professional, name, pk):
    client.force_login(professional.user)
    return client.get(reverse(f"portal_pro:{name}", args=[pk])).status_code


def _rows(response):
    """The detail entries on the page, as shown (HistoryRow)."""
    return list(response.context["history"].page)


def real_pdf(label: str) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=72, height=72)
    writer.add_metadata({"/Title": label})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(("persona", "record_key", "status"), [
    ("alice", "record", 200),
    ("mother", "leo_record", 200),
    ("leo", "leo_record", 200),
    ("alice", "leo_record", 404),
    ("mother", "record", 404),
    ("dr_house", "record", 403),  # the médecin traitant reads the history, but not in the patient portal
    ("agent", "record", 403),
    ("admin", "record", 403),
    (None, "record", 302),
])
def test_who_reaches_the_history(client, world, persona, record_key, status):
    if persona:
        client.force_login(user_of(world, persona))
    response = _history(client, getattr(world, record_key))
    assert response.status_code == status
    if status == 302:
        assert reverse("account_login") in response["Location"]


def test_a_professionals_read_shows_with_what_was_seen(client, world):
    assert _pro_get(client, world.dr_grant, "record", world.record.pk) == 200
    assert _pro_get(client, world.dr_grant, "document_file", world.docs["consultation"].pk) == 200
    client.force_login(world.alice)
    response = _history(client, world.record)
    page = response.content.decode()
    assert "Anna Grant" in page and "General practitioner" in page
    assert "Opened the record" in page
    assert "Read a document: “<bdi>consultation</bdi>”" in page
    rows = _rows(response)
    assert [(r.entry.actor_id, r.how) for r in rows] == [(world.dr_grant.user.pk, "Care authorisation")] * 2
    assert [p.who for p in response.context["history"].people] == [rows[0].who]  # the summary: one person
    assert response.context["history"].people[0].accesses == 2


def test_the_treating_doctor_reads_as_such(client, world):
    _pro_get(client, world.dr_house, "record", world.record.pk)
    client.force_login(world.alice)
    rows = _rows(_history(client, world.record))
    assert [r.how for r in rows] == ["Médecin traitant"]


def test_break_glass_and_samu_reads_stand_out(client, world):
    assert _pro_get(client, world.dr_grant, "record", world.record.pk) == 200
    assert _pro_get(client, world.urgentist, "record", world.record.pk) == 200
    assert _pro_get(client, world.regulator, "record", world.record.pk) == 200
    client.force_login(world.alice)
    response = _history(client, world.record)
    history = response.context["history"]
    assert [r.entry.actor_id for r in history.emergencies] == [world.regulator.user.pk, world.urgentist.user.pk]
    assert history.emergencies_count == 2
    page = response.content.decode()
    # Listed at the top, before the detail, marked by a class AND by words.
    top = page[page.index("Emergency and SAMU accesses"):page.index("<h3>Who</h3>")]
    assert "Ursula Urgences" in top and "Regis Samu" in top and "Anna Grant" not in top
    assert top.count('class="history-entry history-emergency"') == 2
    assert "Emergency access</span>" in top and "SAMU access</span>" in top
    urgent = next(r for r in _rows(response) if r.entry.actor_id == world.urgentist.user.pk)
    assert urgent.is_emergency and urgent.how == "Emergency access"
    normal = next(r for r in _rows(response) if r.entry.actor_id == world.dr_grant.user.pk)
    assert not normal.is_emergency


def test_counter_creation_and_deposit_show_as_counter(client, world):
    agent = Actor(world.agent.user)
    record, _credentials = services.record_create(
        actor=agent, family_name="Haddad", given_names="Samir", birth_date=timezone.localdate() - timedelta(days=9000),
        consented=True, break_glass_allowed=True, samu_allowed=True, preferred_language="en",
    )
    services.document_deposit(actor=Actor(world.agent.user), record=record, content=real_pdf("folder"),
                              doc_type="certificate", title="Housing certificate", act_date=timezone.localdate())
    holder = record.holder
    holder.must_change_password = False
    holder.save(update_fields=["must_change_password"])
    client.force_login(holder)
    response = _history(client, record)
    history = response.context["history"]
    assert [r.entry.action for r in history.counter] == ["deposit_document", "create_record"]
    assert all(r.is_counter and r.how == "Counter" for r in history.counter)
    page = response.content.decode()
    assert "Created the record" in page and "Deposited a paper into the record" in page
    assert "Sonia Agent (CADA Lille)" in page and "Counter agent" in page
    assert 'history-counter' in page


def test_the_patients_own_reads_never_appear(client, world):
    client.force_login(world.alice)
    client.get(reverse("portal_patient:record", args=[world.record.pk]))
    client.get(reverse("portal_patient:document_file", args=[world.docs["own"].pk]))
    _history(client, world.record)
    response = _history(client, world.record)
    assert response.context["history"].total == 0
    assert "Nobody but you has opened this record over this period." in response.content.decode()
    # A representative is not the patient: the mother's reads show in Léo's history.
    client.force_login(world.mother)
    client.get(reverse("portal_patient:record", args=[world.leo_record.pk]))
    client.force_login(world.leo)
    rows = _rows(_history(client, world.leo_record))
    assert rows and {r.entry.actor_id for r in rows} == {world.mother.pk}
    assert {r.how for r in rows} == {"Legal representative"}
    assert world.leo.pk not in {r.entry.actor_id for r in rows}


def test_a_refused_attempt_appears_as_refused(client, world):
    assert _pro_get(client, world.stranger, "record", world.record.pk) == 404
    client.force_login(world.alice)
    response = _history(client, world.record)
    history = response.context["history"]
    assert history.refusals_count == 1
    assert [r.entry.actor_id for r in history.refusals] == [world.stranger.user.pk]
    assert history.people[0].refusals == 1 and history.people[0].accesses == 0
    page = response.content.decode()
    assert "Sam Stranger" in page and "Refused</span>" in page and "the attempt was refused" in page
    assert 'history-refused' in page


def test_filter_by_professional(client, world):
    _pro_get(client, world.dr_grant, "record", world.record.pk)
    _pro_get(client, world.kine, "record", world.record.pk)
    client.force_login(world.alice)
    everyone = _history(client, world.record)
    choices = dict(everyone.context["history"].who_choices)
    assert set(choices) == {world.dr_grant.user.pk, world.kine.user.pk}  # only people present in the history
    response = _history(client, world.record, who=world.dr_grant.user.pk)
    rows = _rows(response)
    assert rows and {r.entry.actor_id for r in rows} == {world.dr_grant.user.pk}
    assert "Kim Kine" not in response.content.decode().split('id="detail"')[1]
    assert response.context["history"].total < everyone.context["history"].total


def test_filter_by_period(client, world):
    now = timezone.now()
    for days_ago in (40, 10):
        audit.log_access(
            actor_user=world.dr_house.user, actor_label=Actor(world.dr_house.user).label, role="gp", ip=None,
            action=Action.VIEW_RECORD, decision=decide(Actor(world.dr_house.user), Action.VIEW_RECORD, world.record),
            record_id=world.record.pk, at=now - timedelta(days=days_ago),
        )
    _pro_get(client, world.dr_grant, "record", world.record.pk)  # today
    client.force_login(world.alice)
    today = timezone.localdate()
    assert _history(client, world.record).context["history"].total == 3
    last_week = _history(client, world.record, date_from=(today - timedelta(days=7)).isoformat())
    assert [r.entry.actor_id for r in _rows(last_week)] == [world.dr_grant.user.pk]
    month = _history(client, world.record, date_from=(today - timedelta(days=30)).isoformat(),
                     date_to=(today - timedelta(days=1)).isoformat())
    assert [r.at.date() for r in _rows(month)] == [(now - timedelta(days=10)).date()]
    assert month.context["history"].people[0].who.startswith("Gregory House")


def test_a_period_that_ends_before_it_starts_is_said(client, world):
    _pro_get(client, world.dr_grant, "record", world.record.pk)
    client.force_login(world.alice)
    today = timezone.localdate()
    response = _history(client, world.record, date_from=today.isoformat(),
                        date_to=(today - timedelta(days=3)).isoformat())
    assert response.status_code == 200
    assert "The start of the period is after its end." in response.content.decode()
    assert response.context["history"].total == 1  # unfiltered rather than empty


@pytest.mark.parametrize(("date_from", "date_to", "shown"), [
    ("0001-01-01", "9999-12-31", 1),  # the first and the last day a date can be: no overflow
    ("", "0001-01-01", 0),
    ("9999-12-31", "", 0),
])
def test_the_period_can_be_as_wide_as_the_calendar(client, world, date_from, date_to, shown):
    _pro_get(client, world.dr_grant, "record", world.record.pk)
    client.force_login(world.alice)
    response = _history(client, world.record, date_from=date_from, date_to=date_to)
    assert response.status_code == 200
    assert response.context["history"].total == shown


def test_titles_are_shown_only_when_the_reader_may_see_the_document(client, world):
    # A result not yet announced to Alice: its reading shows, its title does not.
    assert _pro_get(client, world.dr_grant, "document_file", world.docs["withheld"].pk) == 200
    # Léo's confidential document, hidden from his mother.
    assert _pro_get(client, world.dr_house, "document_file", world.docs["leo_confidential"].pk) == 200
    client.force_login(world.alice)
    page = _history(client, world.record).content.decode()
    assert "Read a document" in page and "withheld" not in page
    client.force_login(world.mother)
    page = _history(client, world.leo_record).content.decode()
    assert "Read a document" in page and "leo confidential" not in page
    client.force_login(world.leo)
    assert "Read a document: “<bdi>leo confidential</bdi>”" in _history(client, world.leo_record).content.decode()


def test_the_filters_and_pages_put_nothing_medical_in_the_url(client, world):
    for doc in ("consultation", "imaging"):
        _pro_get(client, world.dr_grant, "document_file", world.docs[doc].pk)
    client.force_login(world.alice)
    page = _history(client, world.record).content.decode()
    for href in (h.split('"')[0] for h in page.split('href="')[1:]):
        assert "consultation" not in href and "imaging" not in href


def test_the_query_count_does_not_grow_with_the_history(client, world, django_assert_max_num_queries):
    def read_a_lot(n):
        dr_grant, urgentist = Actor(world.dr_grant.user), Actor(world.urgentist.user)
        docs = [world.docs["consultation"], world.docs["imaging"], world.docs["released"]]
        for i in range(n):
            authorise_read(dr_grant, Action.VIEW_DOCUMENT, docs[i % 3])
            authorise_read(urgentist, Action.VIEW_DOCUMENT, docs[i % 2])
            authorise_read(Actor(world.stranger.user), Action.VIEW_RECORD, world.record)

    read_a_lot(2)
    client.force_login(world.alice)
    with django_assert_max_num_queries(22) as few:
        _history(client, world.record)
    read_a_lot(40)  # 120 more entries: more than a page, more than each top list
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = _history(client, world.record)
    history = response.context["history"]
    assert history.total == 126 and history.page.paginator.num_pages == 3
    assert len(history.emergencies) == 20 and history.emergencies_count == 42
    with django_assert_max_num_queries(len(few.captured_queries)):
        second = _history(client, world.record, page=2)
    assert second.status_code == 200 and len(_rows(second)) == 50
    assert "Newer" in second.content.decode() and "Older" in second.content.decode()


def test_the_history_page_of_a_closed_record_is_gone(client, world):
    Record.objects.filter(pk=world.record.pk).update(state=Record.State.CLOSED, closed_at=timezone.now())
    client.force_login(world.alice)
    assert _history(client, world.record).status_code == 404
    assert AuditEntry.objects.filter(record_id_ref=world.record.pk, allowed=False, rule="record_closed").exists()
