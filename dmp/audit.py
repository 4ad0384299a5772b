"""Writing and verifying the audit log (the model is dmp/models/audit.py).

Entries are written explicitly where the policy answers (`policy.authorise`), never from
signals, so reads by Celery tasks and management commands are logged like web requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from .models import AuditChainHead, AuditEntry
from .models.audit import GENESIS_HASH

if TYPE_CHECKING:
    from .policy import Decision


def log_access(
    *,
    actor_user,
    actor_label: str,
    role: str,
    ip: str | None,
    action: str,
    decision: Decision,
    record_id: int | None,
    obj=None,
    object_id: str = "",
    at=None,
) -> AuditEntry:
    """Append one entry to the chain. Nothing medical is stored: ids, action, rule, outcome."""
    # The chain head row is locked so two concurrent appends cannot take the same sequence
    # number or link to the same previous hash.
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().get(pk=1)
        entry = AuditEntry(
            seq=head.last_seq + 1,
            at=at or timezone.now(),
            actor=actor_user,
            actor_label=actor_label[:200],
            role=role,
            mode=decision.mode,
            action=action,
            allowed=decision.allowed,
            rule=decision.rule,
            record_id_ref=record_id,
            object_type=type(obj).__name__.lower() if obj is not None else "",
            object_id=str(obj.pk) if obj is not None else object_id[:40],
            ip=ip,
            prev_hash=head.last_hash,
        )
        entry.hash = entry.compute_hash()
        entry.save()
        AuditChainHead.objects.filter(pk=1).update(last_seq=entry.seq, last_hash=entry.hash)
    return entry


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    what: str

    def __str__(self) -> str:
        return f"audit entry #{self.seq}: {self.what}"


def verify_chain(*, batch: int = 2000) -> ChainProblem | None:
    """Walk the whole chain in order; return the first problem, or None if it is intact."""
    expected_seq, prev = 1, GENESIS_HASH
    last_pk = 0
    while True:
        rows = list(AuditEntry.objects.filter(seq__gt=last_pk).order_by("seq")[:batch])
        if not rows:
            break
        for entry in rows:
            if entry.seq != expected_seq:
                what = "an entry is missing before it" if entry.seq > expected_seq else "unexpected sequence"
                return ChainProblem(entry.seq, what)
            if entry.prev_hash != prev:
                return ChainProblem(entry.seq, "it does not link to the previous entry (inserted or reordered)")
            if entry.compute_hash() != entry.hash:
                return ChainProblem(entry.seq, "its content was altered")
            prev = entry.hash
            expected_seq += 1
        last_pk = rows[-1].seq
    head = AuditChainHead.objects.get(pk=1)
    if head.last_seq != expected_seq - 1 or head.last_hash != prev:
        return ChainProblem(expected_seq, f"entries after #{expected_seq - 1} were deleted (the chain ends early)")
    return None
