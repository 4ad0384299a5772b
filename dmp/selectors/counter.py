"""What a counter agent may see: the administrative status of the records they created."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..models import Record
from ..policy import Actor


@dataclass(frozen=True)
class OnboardedRecord:
    identifier: str
    full_name: str
    created_at: datetime
    activated: bool  # the person has logged in and changed the temporary password
    state: str


def records_onboarded_by(actor: Actor) -> list[OnboardedRecord]:
    """Identity and status only: the fields are chosen here so no template can reach further."""
    if actor.counter_agent is None:
        return []
    rows = (
        Record.objects.filter(created_by=actor.user)
        .select_related("holder")
        .order_by("-created_at")
    )
    return [
        OnboardedRecord(
            identifier=r.identifier, full_name=r.full_name, created_at=r.created_at,
            activated=bool(r.holder and r.holder.last_login and not r.holder.must_change_password),
            state=r.get_state_display(),
        )
        for r in rows
    ]
