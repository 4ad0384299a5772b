"""The access history tells the truth plainly (issue 15): the reason a professional typed at a
break-glass is shown to the patient and to the médecin traitant; a person's repeated accesses
of one day are one line with a count, on the history page and on the patient's home page,
without ever merging a refusal or an emergency access into ordinary accesses."""

from __future__ import annotations

import html
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dmp.access_log import authorise_read
from dmp.models import AuditEntry, AuditMode, User
from dmp.policy import Action, Actor
from dmp.selectors import get_record_for
from dmp.selectors.history import HistoryRow, history_lines
from dmp.services import break_glass_open

REASON = "Unconscious, suspected overdose, brought by the firemen"


def _page(response) -> str:
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def _break_glass(world):
    return break_glass_open(actor=Actor(world.stranger.user), record=world.record, family_name="Martin",
                            given_names="Alice", birth_date=date(1970, 5, 17), justification=REASON, emergency=True)


@pytest.mark.django_db
@pytest.mark.parametrize(("persona", "url_name"), [("alice", "portal_patient:history"),
                                                   ("dr_house", "portal_pro:history")])
def test_the_history_shows_the_reason_given_at_a_break_glass(client, world, persona, url_name):
    _break_glass(world)
    get_record_for(Actor(world.stranger.user), world.record.pk)
    client.force_login(world.alice if persona == "alice" else world.dr_house.user)
    response = client.get(reverse(url_name, args=[world.record.pk]))
    page = _page(response)
    emergencies = page[page.index("Emergency and SAMU accesses"):page.index("<h3>Who</h3>")]
    assert f"Reason given: “<bdi>{REASON}</bdi>”" in emergencies
    assert f"Reason given: “<bdi>{REASON}</bdi>”" in page[page.index('id="detail"'):]
    # The reason is on the page, never in a link.
    for href in (h.split('"')[0] for h in page.split('href="')[1:]):
        assert "overdose" not in href
    [line] = response.context["history"].emergency_lines
    assert line.justifications == [REASON] and line.count == 2  # the opening and the read that followed


@pytest.mark.django_db
def test_the_history_is_in_french_too(client, world):
    _break_glass(world)
    get_record_for(Actor(world.stranger.user), world.record.pk)
    User.objects.filter(pk=world.alice.pk).update(preferred_language="fr")
    client.force_login(world.alice)
    page = _page(client.get(reverse("portal_patient:history", args=[world.record.pk])))
    assert f"Motif indiqué : “<bdi>{REASON}</bdi>”" in page
    assert "2 fois ce jour-là, la première à" in page


@pytest.mark.django_db
def test_a_persons_accesses_of_one_day_are_one_line_with_a_count(client, world):
    grant = Actor(world.dr_grant.user)
    get_record_for(grant, world.record.pk)
    for doc in ("consultation", "imaging", "consultation"):
        authorise_read(grant, Action.VIEW_DOCUMENT, world.docs[doc])
    authorise_read(Actor(world.stranger.user), Action.VIEW_RECORD, world.record)  # refused
    client.force_login(world.alice)
    response = client.get(reverse("portal_patient:history", args=[world.record.pk]))
    history = response.context["history"]
    assert len(list(history.page)) == 5  # every entry is still there, one row each
    refused, visit = history.page_lines
    assert (refused.refused, refused.count, refused.entry.actor_id) == (True, 1, world.stranger.user.pk)
    assert (visit.refused, visit.count, visit.entry.actor_id) == (False, 4, world.dr_grant.user.pk)
    assert [(d.what, d.document_title, d.count) for d in visit.doings] == [
        ("Read a document", "consultation", 2), ("Read a document", "imaging", 1), ("Opened the record", "", 1)]
    page = _page(response)
    detail = page[page.index('id="detail"'):]
    assert detail.count('class="history-entry') == 2
    assert "4 times that day, the first at" in detail
    assert "Read a document: “<bdi>consultation</bdi>” (×2); Read a document: “<bdi>imaging</bdi>”" in detail


def _entry(actor_id, *, at, allowed=True, mode=AuditMode.NORMAL, action=Action.VIEW_RECORD):
    return HistoryRow(AuditEntry(actor_id=actor_id, actor_label=f"person {actor_id}", role="gp", at=at,
                                 allowed=allowed, mode=mode, action=action))


def test_refusals_emergencies_other_days_and_other_people_are_never_merged():
    now = timezone.now().replace(hour=12)
    rows = [
        _entry(1, at=now),
        _entry(1, at=now - timedelta(minutes=1)),
        _entry(1, at=now - timedelta(minutes=2), mode=AuditMode.BREAK_GLASS),
        _entry(1, at=now - timedelta(minutes=3), allowed=False),
        _entry(2, at=now - timedelta(minutes=4)),
        _entry(1, at=now - timedelta(minutes=5)),
        _entry(1, at=now - timedelta(days=1)),
    ]
    assert [line.count for line in history_lines(rows)] == [2, 1, 1, 1, 1, 1]
    # Grouped by person and day for a short list: the ordinary accesses of person 1 today join,
    # the emergency and the refusal stay apart, yesterday is another line.
    apart = history_lines(rows, consecutive=False)
    assert [(line.entry.actor_id, line.count, line.is_emergency, line.refused) for line in apart] == [
        (1, 3, False, False), (1, 1, True, False), (1, 1, False, True), (2, 1, False, False), (1, 1, False, False)]


@pytest.mark.django_db
def test_the_home_page_lists_a_visit_once(client, world):
    grant = Actor(world.dr_grant.user)
    get_record_for(grant, world.record.pk)
    authorise_read(grant, Action.VIEW_DOCUMENT, world.docs["consultation"])
    authorise_read(grant, Action.VIEW_DOCUMENT, world.docs["imaging"])
    get_record_for(Actor(world.urgentist.user), world.record.pk)  # a break-glass read, listed apart
    client.force_login(world.alice)
    page = _page(client.get(reverse("portal_patient:record", args=[world.record.pk])))
    last = page.split("Last accesses by a professional")[1].split("</ul>")[0]
    assert last.count("<li>") == 1 and "Anna Grant" in last and "(3 accesses)" in last
    emergency = page.split('<div class="emergency">')[1].split("</div>")[0]
    assert emergency.count("<li>") == 1 and "Urgences" in emergency and "accesses)" not in emergency
