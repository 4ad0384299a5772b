"""What a counter agent may see: the administrative status of the records their organisation
onboarded (created by one of its agents, or holding a deposit right of one of its agents)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max
from django.http import Http404
from django.utils import timezone

from ..models import AuditEntry, CounterReset, PostalLetter, Record
from ..policy import Action, Actor, decide, records_onboarded_q


@dataclass(frozen=True)
class OnboardedRecord:
    pk: int
    identifier: str
    full_name: str
    created_at: datetime
    activated: bool  # the person has logged in and changed the temporary password
    state: str
    credentials_handed: bool  # created at a counter: the sheet was printed there
    reprinted_at: datetime | None  # the last counter reset of the credentials, if any
    closed: bool
    has_nir: bool


def _organisation_records(actor: Actor):
    """The records the policy says the agent's organisation onboarded (the filter its
    VIEW_ADMIN_STATUS answer reads for one record)."""
    return Record.objects.filter(records_onboarded_q(actor))


def records_onboarded_by(actor: Actor) -> list[OnboardedRecord]:
    """Identity and status only: the fields are chosen here so no template can reach further."""
    if actor.counter_agent is None:
        return []
    rows = list(
        _organisation_records(actor).select_related("holder", "created_by__counter_agent").order_by("-created_at")
    )
    reprints = dict(
        AuditEntry.objects.filter(
            record_id_ref__in=[r.pk for r in rows], action=Action.RESET_CREDENTIALS, allowed=True
        ).order_by().values("record_id_ref").annotate(last=Max("at")).values_list("record_id_ref", "last")
    )
    return [
        OnboardedRecord(
            pk=r.pk, identifier=r.identifier, full_name=r.full_name, created_at=r.created_at,
            activated=bool(r.holder and r.holder.last_login and not r.holder.must_change_password),
            state=r.get_state_display(),
            credentials_handed=bool(r.created_by and hasattr(r.created_by, "counter_agent")),
            reprinted_at=reprints.get(r.pk), closed=not r.is_open, has_nir=bool(r.nir),
        )
        for r in rows
    ]


def onboarded_record(actor: Actor, pk: int) -> Record | None:
    """One record the agent's organisation onboarded, for an administrative act (deposit, NIR,
    reprint); None otherwise. The acts themselves are decided again by their services."""
    if actor.counter_agent is None:
        return None
    record = Record.objects.filter(pk=pk).first()
    if record is None or not decide(actor, Action.VIEW_ADMIN_STATUS, record).allowed:
        return None
    return record


# --- Counter resets waiting for their proofs, letters to post -----------------------------------


def counter_reset_for(actor: Actor, pk: int) -> CounterReset:
    """A reset request, for the agent who asked for it only (404 for anyone else: a request
    names a person)."""
    return _reset_or_404(actor, pk=pk, requested_by_id=actor.user.pk if actor.user else None)


def counter_reset_for_approval(actor: Actor, pk: int) -> CounterReset:
    """A pending reset request as a possible approver sees it: any agent of the organisation
    that took it (the policy then says whether this one may approve it: not the agent who
    asked); 404 for everyone else, and once it no longer waits (its details stay private)."""
    return _reset_or_404(actor, pk=pk, organisation_id=actor.counter_agent.organisation_id
                         if actor.counter_agent else None,
                         state=CounterReset.State.PENDING, expires_at__gt=timezone.now())


def _reset_or_404(actor: Actor, **filters) -> CounterReset:
    reset = None
    if actor.counter_agent is not None:
        reset = CounterReset.objects.select_related(
            "record__holder", "organisation", "requested_by", "approved_by").filter(**filters).first()
    if reset is None:
        raise Http404
    return reset


def counter_resets_awaiting_approval(actor: Actor) -> list[CounterReset]:
    """The organisation's pending requests that wait for a second agent, other than this
    agent's own: what the counter home screen offers to approve."""
    if actor.counter_agent is None:
        return []
    return list(
        CounterReset.objects.filter(
            organisation_id=actor.counter_agent.organisation_id, state=CounterReset.State.PENDING,
            approval_required=True, approved_at__isnull=True, expires_at__gt=timezone.now(),
        ).exclude(requested_by_id=actor.user.pk).select_related("record", "requested_by").order_by("created_at")
    )


def letters_to_print(actor: Actor) -> list[PostalLetter]:
    """The letters the agent's organisation has to print and post (people it onboarded who
    have no phone or e-mail), oldest first."""
    if actor.counter_agent is None:
        return []
    return list(PostalLetter.objects.filter(organisation_id=actor.counter_agent.organisation_id,
                                            printed_at__isnull=True).select_related("record"))


def letter_for(actor: Actor, pk: int) -> PostalLetter:
    """One letter of the agent's organisation, to print; 404 otherwise."""
    letter = None
    if actor.counter_agent is not None:
        letter = PostalLetter.objects.select_related("record").filter(
            pk=pk, organisation_id=actor.counter_agent.organisation_id).first()
    if letter is None:
        raise Http404
    return letter
