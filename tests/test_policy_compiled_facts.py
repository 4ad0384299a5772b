"""The record-access queries (the facts alone, and the record with them) are compiled once per
shape and their parameters bound per call (`dmp.policy._FactsQuery`): a cache in front of the
access policy, so these tests check that they answer exactly what the queries Django compiles
for each call answer, and that what they keep holds nothing of the actor first asking."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dmp.models import CareAuthorisation, Record
from dmp.policy import (
    STANDING_FACT,
    Actor,
    _fact_expressions,
    _fact_names,
    _FactsQuery,
    _stored_facts,
    record_with_standing_facts,
    with_standing_facts,
)
from tests.personas import user_of
from tests.test_policy_matrix import PERSONAS, STATES


def _compiled_for_the_call(actor: Actor, record: Record, at) -> dict[str, bool]:
    expressions = _fact_expressions(actor, at)
    return Record.objects.filter(pk=record.pk).values(**expressions).first() or dict.fromkeys(expressions, False)


@pytest.mark.django_db
@pytest.mark.parametrize("state", [None, *STATES])
def test_the_compiled_query_answers_as_the_query_of_each_call(world, state):
    if state is not None:
        STATES[state](world)
    now = timezone.now()
    moments = (now, now - timedelta(days=400), now + timedelta(days=400))
    for persona in PERSONAS:
        actor = Actor(user_of(world, persona))
        if actor.user is None or not _fact_names(actor):
            continue
        for record in (world.record, world.leo_record):
            for at in moments:
                assert _stored_facts(actor, record, at) == _compiled_for_the_call(actor, record, at), (persona, at)
            loaded = record_with_standing_facts(actor, record.pk)
            compiled = with_standing_facts(actor, Record.objects.all()).filter(pk=record.pk).first()
            assert _row(loaded) == _row(compiled), persona
            assert any(name.startswith(STANDING_FACT) for name in _row(loaded)), persona


def _row(record: Record) -> dict:
    return {name: value for name, value in vars(record).items() if name != "_state"}


@pytest.mark.django_db
def test_a_missing_record_is_none_either_way(world):
    for persona in ("dr_house", "mother", "nobody"):
        assert record_with_standing_facts(Actor(user_of(world, persona)), -1) is None


@pytest.mark.django_db
def test_a_missing_record_holds_no_fact(world):
    actor = Actor(world.dr_house.user)
    missing = Record(pk=-1)
    assert _stored_facts(actor, missing, timezone.now()) == dict.fromkeys(_fact_names(actor), False)


@pytest.mark.django_db
def test_the_template_holds_no_value_of_an_actor(world):
    """Every parameter is a slot bound per call (the moment, its day, the record, the actor's ids) or a
    constant of the rules: a kind of care authorisation, or the 1 of a LIMIT."""
    for persona in PERSONAS:
        _stored_facts(Actor(user_of(world, persona)), world.record, timezone.now())
    templates = [t for t in _FactsQuery._cache.values() if t is not None]
    assert templates
    kinds = set(CareAuthorisation.Kind.values)
    for template in templates:
        assert STANDING_FACT in template.sql
        constants = [constant for slot, constant in template.params if slot is None]
        assert all(c in kinds if isinstance(c, str) else (type(c) is not bool and c == 1) for c in constants)
        assert {"day", "record"} <= {slot for slot, _ in template.params}  # "at" where a rule reads it
