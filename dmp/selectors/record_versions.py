"""When a record's identity last changed, for the FHIR Patient's `meta.lastUpdated` and
`Last-Modified`. The record keeps no versions of its identity: the access ledger says when a
change was made (never what it was), and the current identity is the only version there is."""

from __future__ import annotations

from datetime import datetime

from ..models import AuditEntry, Record
from ..policy import Action

# The changes that alter what a Patient resource says: identity, NIR, state.
IDENTITY_CHANGES = (Action.EDIT_PERSONAL_DATA, Action.ATTACH_NIR, Action.CLOSE_RECORD)


def record_last_changed(record: Record) -> datetime:
    """The record's creation, or the last allowed identity change written in its ledger."""
    changed = (AuditEntry.objects.filter(record_id_ref=record.pk, action__in=IDENTITY_CHANGES, allowed=True)
               .order_by("-at").values_list("at", flat=True).first())
    return max(record.created_at, changed) if changed else record.created_at
