"""Recording what the policy answered, and what happened: the one module that writes the
access log (DOMAIN.md §4 "every access is logged").

`dmp/policy.py` decides and explains, without side effects; this module records. It is
separate so that the log says what happened, not what was intended:

- `read()`: an allowed read — its audit entry and the notice it may cause the patient
  (first access, every access, SAMU: `notifications.professional_read`) in one transaction.
  The patient's own reads are not logged.
- `refusal()`: a refused question, written at once in its own transaction. Callers ask the
  policy before they open the transaction of their write, so a refusal is committed even
  when nothing else happens; a refusal recorded inside a caller's `transaction.atomic()`
  block would roll back with it, which is why services never do that.
- `write()`: an allowed change, called INSIDE the write's own transaction, after the input
  was checked and with the id of what was created or changed: a change never exists without
  its entry, and an entry never exists without its change (an add whose files were all
  refused, a break-glass with a wrong identity leave no "allowed" line).
- `authorise_read()`: `decide()` + `read()` or `refusal()`, for selectors and reads.
- `reads_logged_together()`: the allowed reads of one page are written at the end of the
  page's work, before anything is sent, in one append (one lock and one insert however many
  parts the page read: `dmp/http.py` opens it around every GET of a record page).

Nothing medical is written: ids, the action, the rule and the outcome (`dmp/audit.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.utils import timezone

from . import audit, notifications
from .models import AuditEntry, AuditMode, CounterReset, Document, Record, Synthesis
from .policy import Action, Actor, Decision, decide, record_access


def role_of(actor: Actor, record: Record | None) -> str:
    """The role an entry names: the actor's relation to the record for the holder's side, else
    what the actor is (a profession, the SAMU regulator, a counter agent, an administrator)."""
    if record is not None and actor.user is not None:
        standing = record_access(actor, record).standing
        if standing.acts_for_patient:
            return standing.value
    if actor.professional is not None:
        return "samu_regulator" if actor.professional.is_samu_regulator else actor.professional.profession
    if actor.counter_agent is not None:
        return "counter_agent"
    if actor.is_administrator:
        return "administrator"
    return "anonymous" if actor.user is None else "none"


def _entry_fields(actor: Actor, action: str, decision: Decision, obj, *, record: Record | None, object_id: str,
                  role: str | None, at=None) -> dict:
    """One entry as `audit.log_access()`'s arguments."""
    return {
        "actor_user": actor.user,
        "actor_label": actor.label,
        "role": role or role_of(actor, record),
        "ip": actor.ip,
        "action": action,
        "decision": decision,
        "record_id": record.pk if record is not None else None,
        # A record is named by the entry's record id; any other object by its type and id.
        "obj": obj if obj is not None and not isinstance(obj, Record) else None,
        "object_id": object_id,
        "at": at,
    }


def _append(actor: Actor, action: str, decision: Decision, obj, *, record: Record | None, object_id: str,
            role: str | None) -> AuditEntry:
    return audit.log_access(**_entry_fields(actor, action, decision, obj, record=record, object_id=object_id,
                                            role=role))


def _inside_a_transaction() -> bool:
    # The test runner's own wrapping transaction does not count: a test must fail where
    # production would.
    return any(not getattr(block, "_from_testcase", False) for block in transaction.get_connection().atomic_blocks)


def _patients_own(decision: Decision) -> bool:
    # The holder's (and only the holder's) own actions are not logged: it is their record.
    return decision.allowed and decision.mode == AuditMode.PATIENT


def read(actor: Actor, action: str, decision: Decision, obj=None, *, record: Record | None,
         object_id: str = "") -> None:
    """Record an answer to a read: an allowed read with the notice it may cause, in one
    transaction (no savepoint of its own inside a caller's transaction: the whole of it rolls
    back on an error); a refused one is handed to `refusal()`. Inside
    `reads_logged_together()`, an allowed read is kept, with its time, for the block's end."""
    if not decision.allowed:
        refusal(actor, action, decision, obj, record=record, object_id=object_id)
        return
    if _patients_own(decision):
        return
    fields = _entry_fields(actor, action, decision, obj, record=record, object_id=object_id, role=None,
                           at=timezone.now())
    if actor.pending_reads is not None:
        actor.pending_reads.append((fields, record))
        return
    _write_reads(actor, [(fields, record)])


def _write_reads(actor: Actor, reads: list[tuple[dict, Record | None]]) -> None:
    """The entries of allowed reads and the notices they may cause, in one transaction."""
    if not reads:
        return
    with transaction.atomic(savepoint=False):
        audit.log_accesses([fields for fields, _record in reads])
        for fields, record in reads:
            if fields["action"] in Action.READS and record is not None and actor.professional is not None:
                notifications.professional_read(actor, record, fields["decision"])


@contextmanager
def reads_logged_together(actor: Actor) -> Iterator[None]:
    """Keep the actor's allowed reads and write them when the block ends, together: one append
    per record whatever the number of parts a page reads. The block ends before the response
    leaves (a page is never sent before its reads are in the log); it ends on an error too,
    since what was read was read. Refusals are not kept: `refusal()` writes what is kept, then
    the refusal, at once. Only around work that writes nothing else (a GET): a write's entry
    goes in its own transaction and must not carry reads with it."""
    if actor.pending_reads is not None:  # already inside one: the outer block writes
        yield
        return
    actor.pending_reads = []
    try:
        yield
    finally:
        reads, actor.pending_reads = actor.pending_reads, None
        _write_reads(actor, reads)


def refusal(actor: Actor, action: str, decision: Decision, obj=None, *, record: Record | None,
            object_id: str = "", role: str | None = None) -> AuditEntry:
    """Record a refusal, at once (its own transaction when none is open). Call it before the
    transaction of the write it refuses, so it stays when nothing else does. Reads kept by
    `reads_logged_together()` are written first, so the log keeps the order things happened."""
    if decision.allowed:
        raise ValueError("refusal() records refused decisions only")
    with transaction.atomic():
        if actor.pending_reads:
            reads, actor.pending_reads = actor.pending_reads, []
            _write_reads(actor, reads)
        return _append(actor, action, decision, obj, record=record, object_id=object_id, role=role)


def write(actor: Actor, action: str, decision: Decision, obj=None, *, record: Record | None,
          object_id: str = "", role: str | None = None) -> AuditEntry | None:
    """Record a change that happened, inside its transaction: `obj` (or `object_id`) names what
    was created or changed. Refuses to run outside a transaction, where an entry could outlive
    a change that failed."""
    if not decision.allowed:
        raise ValueError("write() records allowed changes only; a refusal goes to refusal()")
    if not _inside_a_transaction():
        raise RuntimeError("write() belongs inside the transaction of the change it records")
    if _patients_own(decision):
        return None
    return _append(actor, action, decision, obj, record=record, object_id=object_id, role=role)


def record_of(obj) -> Record | None:
    """The record an object of the policy belongs to."""
    return obj.record if isinstance(obj, Document | Synthesis | CounterReset) else obj


def authorise_read(actor: Actor, action: str, obj: Record | Document | Synthesis | None = None, *,
                   doc_type: str | None = None, object_id: str = "") -> Decision:
    """Ask the policy about a read and record the answer (`read()` or `refusal()`)."""
    decision = decide(actor, action, obj, doc_type=doc_type)
    read(actor, action, decision, obj, record=record_of(obj), object_id=object_id)
    return decision
