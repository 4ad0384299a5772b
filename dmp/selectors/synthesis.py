"""The medical synthesis as professionals read it: one version (the latest, or an earlier one)
with the list of every version, and the latest loaded for the médecin traitant to edit.
Each asks the policy and writes one audit entry; a refusal, like a missing version, is 404."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.http import Http404

from .. import access_log
from ..access_log import authorise_read
from ..models import Record, Synthesis
from ..policy import Action, Actor, decide


@dataclass(frozen=True)
class SynthesisVersion:
    """One line of the versions list: who wrote which version, when."""

    version: int
    author: str
    written_at: datetime


@dataclass(frozen=True)
class SynthesisPage:
    shown: Synthesis | None  # with its problems and author loaded; None while nobody wrote one
    versions: list[SynthesisVersion]  # newest first

    @property
    def latest_version(self) -> int | None:
        return self.versions[0].version if self.versions else None

    @property
    def is_latest(self) -> bool:
        return self.shown is not None and self.shown.version == self.latest_version


def synthesis_page_for(actor: Actor, record: Record, *, version: int | None = None) -> SynthesisPage:
    """The synthesis of `record` (version `version`, else the latest) and its versions, if the
    actor may read the synthesis: one audit entry (Action.VIEW_SYNTHESIS), three queries."""
    listed = list(record.syntheses.order_by("-version").select_related("author__user").only(
        "version", "created_at", "record_id", "author__user__first_name", "author__user__last_name",
        "author__user__username"))
    wanted = version if version is not None else (listed[0].version if listed else None)
    if version is not None and all(s.version != version for s in listed):
        authorise_read(actor, Action.VIEW_SYNTHESIS, None, object_id=f"synthesis:record-{record.pk}-v{version}")
        raise Http404
    shown = None
    if wanted is not None:
        shown = (record.syntheses.filter(version=wanted).select_related("author__user")
                 .prefetch_related("problems").first())
    if not authorise_read(actor, Action.VIEW_SYNTHESIS, shown or record):
        raise Http404
    versions = [
        SynthesisVersion(s.version, s.author.user.get_full_name() or s.author.user.username, s.created_at)
        for s in listed
    ]
    return SynthesisPage(shown, versions)


def synthesis_for_editing(actor: Actor, record: Record) -> Synthesis | None:
    """The latest synthesis, for the médecin traitant to write the next version from it. Anyone
    else: 404, and the refusal logged. Reading it to edit is a read of the synthesis (logged);
    the write is logged by `synthesis_write` when it happens."""
    decision = decide(actor, Action.EDIT_SYNTHESIS, record)
    if not decision.allowed:
        access_log.refusal(actor, Action.EDIT_SYNTHESIS, decision, record, record=record)
        raise Http404
    latest = record.syntheses.order_by("-version").select_related("author__user").prefetch_related("problems").first()
    if not authorise_read(actor, Action.VIEW_SYNTHESIS, latest or record):
        raise Http404
    return latest
