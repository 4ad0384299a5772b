"""What a counter agent may see: the administrative status of the records their organisation
onboarded (created by one of its agents, or holding a deposit right of one of its agents)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.paginator import Page
from django.db.models import Max, Q, TextChoices
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..models import AuditEntry, CounterReset, PostalLetter, Record
from ..paging import LIST_PAGE_SIZE, page_of
from ..policy import Action, Actor, decide, records_onboarded_q
from .access import name_words_q


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


class OnboardedStatus(TextChoices):
    """What the counter dashboard may filter on: administrative facts only."""

    NOT_ACTIVATED = "not_activated", _("Created, not yet activated")
    ACTIVATED = "activated", _("Activated by the person")
    WITHOUT_NIR = "without_nir", _("Without a NIR")
    CLOSED = "closed", _("Closed")


@dataclass(frozen=True)
class OnboardedSearch:
    """What a counter agent looks for: an identifier typed whole (NIR or provisional, spaces
    ignored), the beginning of a family or given name (accents and case ignored), a status."""

    identifier: str = ""
    name: str = ""
    status: str = ""

    def __bool__(self) -> bool:
        return bool(self.identifier or self.name or self.status)


def _activated_q() -> Q:
    # The person logged in and replaced the temporary password (`OnboardedRecord.activated`).
    return Q(holder__last_login__isnull=False, holder__must_change_password=False)


def _searched(records, search: OnboardedSearch):
    identifier = "".join(search.identifier.split()).upper()
    if identifier:
        records = records.filter(Q(nir=identifier) | Q(provisional_id=identifier))
    if search.name:
        records = records.filter(name_words_q(search.name, "family_name", "given_names"))
    if search.status == OnboardedStatus.NOT_ACTIVATED:
        records = records.exclude(_activated_q())
    elif search.status == OnboardedStatus.ACTIVATED:
        records = records.filter(_activated_q())
    elif search.status == OnboardedStatus.WITHOUT_NIR:
        records = records.filter(Q(nir__isnull=True) | Q(nir=""))
    elif search.status == OnboardedStatus.CLOSED:
        records = records.exclude(state=Record.State.OPEN)
    return records


def records_onboarded_page(actor: Actor, search: OnboardedSearch | None = None, page: int = 1) -> Page:
    """One page of the records the agent's organisation onboarded that match `search`, newest
    first (the primary key breaks ties, so a record never moves between pages), at most
    `LIST_PAGE_SIZE` rows of `OnboardedRecord`. Three queries whatever the page or the
    organisation's size: the count, the page's rows, their last reprints."""
    records = Record.objects.none()
    if actor.counter_agent is not None:
        records = _searched(_organisation_records(actor), search or OnboardedSearch())
    records = records.select_related("holder", "created_by__counter_agent").order_by("-created_at", "-pk")
    found = page_of(records, page)
    found.object_list = _onboarded_rows(list(found.object_list))
    return found


def _onboarded_rows(rows: list[Record]) -> list[OnboardedRecord]:
    """Identity and status only: the fields are chosen here so no template can reach further."""
    reprints = dict(
        AuditEntry.objects.filter(
            record_id_ref__in=[r.pk for r in rows], action=Action.RESET_CREDENTIALS, allowed=True
        ).order_by().values("record_id_ref").annotate(last=Max("at")).values_list("record_id_ref", "last")
    ) if rows else {}
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
    have no phone or e-mail), oldest first: at most `LIST_PAGE_SIZE`, one more to say that
    others wait (a printed letter leaves the list, so the next ones come up)."""
    if actor.counter_agent is None:
        return []
    return list(PostalLetter.objects.filter(organisation_id=actor.counter_agent.organisation_id,
                                            printed_at__isnull=True).select_related("record")
                .order_by("created_at", "pk")[:LIST_PAGE_SIZE + 1])


def letter_for(actor: Actor, pk: int) -> PostalLetter:
    """One letter of the agent's organisation, to print; 404 otherwise."""
    letter = None
    if actor.counter_agent is not None:
        letter = PostalLetter.objects.select_related("record").filter(
            pk=pk, organisation_id=actor.counter_agent.organisation_id).first()
    if letter is None:
        raise Http404
    return letter
