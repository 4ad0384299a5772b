"""The policy answers "who may open which record" in three directions: for one actor and one
record (`decide`, `record_access`), as the records an actor may open (`records_open_to`, the
counter's onboarded records) and as the people standing on a record (`who_may_see`, emergency
rows included). They are read from one set of rules (RECORD_RULES); these tests check that the
three directions agree for every persona, every record and every patient choice, so a standing
added, or a consent check dropped, in one direction only fails here."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from dmp.models import CareAuthorisation, Record, User
from dmp.policy import (
    Action,
    Actor,
    Clause,
    decide,
    document_scope,
    record_access,
    records_onboarded_q,
    records_open_to,
    who_may_see,
)
from dmp.selectors import records_followed_by
from tests.personas import World, user_of
from tests.test_policy_matrix import PERSONAS, STATES

A = Action
# Every patient choice of the grid, and none.
CASES = [None, *STATES]


def _more_standings(w: World) -> None:
    """Standings the base world lacks, so every rule meets every other: the SAMU regulator also
    broke the glass (the SAMU rule comes first), the médecin traitant also holds a care
    authorisation, and the physiotherapist broke the glass on Léo's record."""
    until = timezone.now() + timedelta(hours=4)
    CareAuthorisation.objects.create(record=w.record, professional=w.regulator,
                                     kind=CareAuthorisation.Kind.BREAK_GLASS, justification="Call", expires_at=until)
    CareAuthorisation.objects.create(record=w.record, professional=w.dr_house,
                                     kind=CareAuthorisation.Kind.GRANTED_BY_PATIENT)
    CareAuthorisation.objects.create(record=w.leo_record, professional=w.kine,
                                     kind=CareAuthorisation.Kind.BREAK_GLASS, justification="Fall", expires_at=until)


def _prepare(world: World, case: str | None) -> list[Record]:
    _more_standings(world)
    if case:
        STATES[case](world)
    return list(Record.objects.all())  # fresh: the patient's choices as stored


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=[c or "as_built" for c in CASES])
def test_the_records_an_actor_may_open_are_those_a_read_allows(world, case):
    """The queryset answer equals the one-record answer, standing included, for every persona."""
    records = _prepare(world, case)
    for persona in PERSONAS:
        user = user_of(world, persona)
        listed = {(r.pk, r.standing) for r in records_open_to(Actor(user))}
        answered = set()
        for record in records:
            access = record_access(Actor(user), record)
            assert decide(Actor(user), A.VIEW_RECORD, record).allowed == access.decision.allowed
            if access.decision.allowed:
                answered.add((record.pk, access.standing.value))
        assert listed == answered, persona


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=[c or "as_built" for c in CASES])
def test_a_professional_follows_only_records_they_may_open(world, case):
    records = _prepare(world, case)
    for persona in PERSONAS:
        actor = Actor(user_of(world, persona))
        followed = set(records_followed_by(actor).values_list("pk", flat=True))
        assert all(decide(actor, A.VIEW_RECORD, r).allowed for r in records if r.pk in followed), persona


@pytest.mark.django_db
def test_an_emergency_opening_the_patient_refused_is_no_longer_followed(world):
    """The drift this rule set removed: the home page listed an active break-glass after the
    patient refused emergency access, and the record then answered 404."""
    actor = Actor(world.urgentist.user)
    assert world.record.pk in set(records_followed_by(actor).values_list("pk", flat=True))
    Record.objects.filter(pk=world.record.pk).update(break_glass_allowed=False)
    actor = Actor(world.urgentist.user)
    assert not decide(actor, A.VIEW_RECORD, Record.objects.get(pk=world.record.pk)).allowed
    assert world.record.pk not in set(records_followed_by(actor).values_list("pk", flat=True))


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=[c or "as_built" for c in CASES])
def test_the_counter_lists_exactly_the_records_whose_status_it_may_see(world, case):
    records = _prepare(world, case)
    for persona in ("agent", "other_agent"):
        actor = Actor(user_of(world, persona))
        listed = set(Record.objects.filter(records_onboarded_q(actor)).values_list("pk", flat=True))
        allowed = {r.pk for r in records if decide(actor, A.VIEW_ADMIN_STATUS, r).allowed}
        assert listed == allowed, persona


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=[c or "as_built" for c in CASES])
def test_who_may_see_agrees_with_decide_emergency_rows_included(world, case):
    """Every person listed answers as `decide` does; each emergency row answers as `decide` does
    for a professional in that standing whose profession may read the document's type (the
    urgentist who broke the glass, the SAMU regulator)."""
    _prepare(world, case)
    emergency = {role: (pro, Actor(pro.user)) for role, pro in (("break_glass", world.urgentist),
                                                                 ("samu", world.regulator))}
    # One actor per person for the whole record, as over one request: their standing towards the
    # record is answered once, the document rule once per document.
    actors: dict[int, Actor] = {}
    compared = set()
    for doc in Record.objects.get(pk=world.record.pk).documents.all():
        for viewer in who_may_see(doc):
            if viewer.user_id is not None:
                if viewer.user_id not in actors:
                    actors[viewer.user_id] = Actor(User.objects.get(pk=viewer.user_id))
                again = decide(actors[viewer.user_id], A.VIEW_DOCUMENT, doc)
                assert again == viewer.decision, (doc.title, viewer.label)
                continue
            pro, actor = emergency[viewer.role]
            if doc.doc_type not in actor.matrix_types or doc.author_professional_id == pro.pk:
                continue  # the row speaks of a profession that may read the type; this one may not
            again = decide(actor, A.VIEW_DOCUMENT, doc)
            compared.add((viewer.role, again.allowed))
            assert (again.allowed, again.rule, again.mode, again.clause) == (
                viewer.decision.allowed, viewer.decision.rule, viewer.decision.mode, viewer.decision.clause), (
                doc.title, viewer.role)
        if case == "closed":
            assert not [v for v in who_may_see(doc) if v.user_id is None]
    if case != "closed":  # both rows were checked, not skipped
        assert {role for role, _allowed in compared} == {"break_glass", "samu"}


# What lifting one clause of the document rule means, as a DocumentScope field.
_LIFTED = {
    Clause.WITHHELD: {"sees_withheld": True},
    Clause.HIDDEN_FROM_REPRESENTATIVES: {"sees_hidden_from_representatives": True},
    Clause.MATRIX: {"types": None},
    Clause.HIDDEN_FROM_PROFESSIONALS: {"sees_hidden": True},
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=[c or "as_built" for c in CASES])
def test_a_refused_document_names_the_clause_that_failed_first(world, case):
    """`decide()` names the first clause of the document rule that refused (the patient's page
    explains it without re-deriving it): lifting that clause alone admits the document or meets a
    later clause, and the queryset form of the lifted rule agrees with the one-document answer."""
    records = _prepare(world, case)
    order = list(Clause)
    named = set()
    for persona in PERSONAS:
        # One actor per persona, as over one request: the standing towards each record is
        # answered once, by the same rule `decide()` would ask a fresh actor.
        actor = Actor(user_of(world, persona))
        for record in records:
            scope = document_scope(actor, record)
            for doc in record.documents.all():
                decision = decide(actor, A.VIEW_DOCUMENT, doc)
                if decision.rule != "document_not_visible":
                    assert decision.clause == ("" if not decision.allowed else scope.clause(doc)), (persona, doc.title)
                    continue
                clause = Clause(decision.clause)
                assert clause == scope.clause(doc) and not clause.admits, (persona, doc.title)
                named.add(clause)
                lifted = replace(scope, **_LIFTED[clause])
                assert order.index(lifted.clause(doc)) > order.index(clause), (persona, doc.title, clause)
                in_list = record.documents.filter(lifted.q(), pk=doc.pk).exists()
                assert in_list == lifted.clause(doc).admits, (persona, doc.title, clause)
    # Every refusing clause was met (a closed record opens to no one), so no check above was skipped.
    assert named == (set() if case == "closed" else set(_LIFTED))


def test_every_question_is_answered_by_one_rule_function():
    """`decide()` is a table, not an ordered chain: each action a caller may ask about has its
    rule function in exactly one table, and the few names only written in the log have none."""
    from dmp.policy import DOCUMENT_ACTIONS, RECORD_ACTIONS

    asked = {value for name, value in vars(Action).items() if name.isupper() and isinstance(value, str)}
    elsewhere = {A.CREATE_RECORD, A.APPROVE_CREDENTIALS_RESET}  # no record: their own rule functions
    logged_only = {A.REQUEST_CREDENTIALS_RESET, A.CHANGE_LOGIN_CONTACT, A.DESTROY_RECORD}
    assert not set(RECORD_ACTIONS) & set(DOCUMENT_ACTIONS)
    assert set(RECORD_ACTIONS) | set(DOCUMENT_ACTIONS) | elsewhere | logged_only == asked
