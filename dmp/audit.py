"""The access ledger: appending to the audit log, signing checkpoints, verifying it all
(the tables are in dmp/models/audit.py; docs/audit.md "The access ledger").

Entries are written explicitly by dmp/access_log.py where the policy answers, never from
signals, so reads by Celery tasks and management commands are logged like web requests.

- One hash chain per record (and one for entries about no record): an append locks its own
  chain's head row only, so appends for different records never wait for each other.
- Each entry's hash carries an HMAC under AUDIT_HMAC_KEYS, which the database does not hold:
  whoever holds the database can delete or rewrite rows, not forge them.
- Every minute a checkpoint (Merkle root over the chain heads changed since the previous one,
  linked to it) is signed with AUDIT_SIGNING_KEY (Ed25519) and appended to a file in
  AUDIT_CHECKPOINT_DIR and to the log stream: a chain cut short below what a checkpoint signed
  is seen, whoever rewrote the heads.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from .models import AuditChainHead, AuditCheckpoint, AuditEntry
from .models.audit import CHAIN_WITHOUT_RECORD
from .verify_history import (
    GENESIS_HASH,
    canonical,
    checkpoint_signed_text,
    leaf_hash,
    merkle_proof,
    merkle_root,
    sha256,
    signature_valid,
)

if TYPE_CHECKING:
    from .policy import Decision

checkpoint_logger = logging.getLogger("dmp.audit.checkpoint")


# --- Keys ------------------------------------------------------------------------------------

def key_id(key: str) -> str:
    """A short public name of an HMAC key (which key signed an entry), not the key."""
    return hashlib.sha256(b"dmp-audit-key-id:" + key.encode()).hexdigest()[:12]


def _mac(key: str, entry_hash: str) -> str:
    return hmac.new(key.encode(), entry_hash.encode(), hashlib.sha256).hexdigest()


def _signing_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(settings.AUDIT_SIGNING_KEY))


def public_key() -> str:
    """The checkpoints' public key (base64), to publish and give to `verify_audit`'s readers."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = _signing_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


# --- Appending ---------------------------------------------------------------------------------

def chain_of(record_id: int | None) -> int:
    return record_id if record_id is not None else CHAIN_WITHOUT_RECORD


def _lock_chain(chain: int) -> tuple[int, str]:
    """Create the chain's head row if it is the chain's first entry, and lock it, in one
    statement that cannot race (an upsert takes the row lock either way); returns the chain's
    last position and hash. Only appends to the same chain wait here."""
    table = connection.ops.quote_name(AuditChainHead._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (chain, last_chain_seq, last_hash, last_seq, checkpointed_chain_seq) "  # noqa: S608
            "VALUES (%s, 0, %s, 0, 0) ON CONFLICT (chain) DO UPDATE SET last_chain_seq = "
            f"{table}.last_chain_seq RETURNING last_chain_seq, last_hash",
            [chain, GENESIS_HASH],
        )
        last_chain_seq, last_hash = cursor.fetchone()
    return last_chain_seq, last_hash


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
    """Append one entry to its record's chain. Nothing medical is stored: ids, action, rule,
    outcome. Inside the caller's transaction if there is one (a write's success entry rolls
    back with the write)."""
    entry = _new_entry(actor_user=actor_user, actor_label=actor_label, role=role, ip=ip, action=action,
                       decision=decision, record_id=record_id, obj=obj, object_id=object_id, at=at)
    # No savepoint of its own: an error here fails the caller's transaction as a whole.
    with transaction.atomic(savepoint=False):
        _append_to_chain([entry])
    return entry


def log_accesses(entries: list[dict]) -> list[AuditEntry]:
    """Append several entries (each given as `log_access`'s arguments), in their order: one
    lock, one insert and one head update per chain, whatever their number (a page that reads
    a record, its synthesis and its reimbursements writes its three entries at once)."""
    built = [_new_entry(**fields) for fields in entries]
    chains: dict[int, list[AuditEntry]] = {}
    for entry in built:
        chains.setdefault(entry.chain, []).append(entry)
    with transaction.atomic(savepoint=False):
        for chain in sorted(chains):  # always the same order: two writers never lock crosswise
            _append_to_chain(chains[chain])
    return built


def _new_entry(*, actor_user, actor_label: str, role: str, ip: str | None, action: str, decision: Decision,
               record_id: int | None, obj=None, object_id: str = "", at=None) -> AuditEntry:
    return AuditEntry(
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
        chain=chain_of(record_id),
    )


def _append_to_chain(entries: list[AuditEntry]) -> None:
    """Chain, sign and insert entries of one chain, under its head's lock (the caller's
    transaction): each links to the one before, the head to the last."""
    signing_key = settings.AUDIT_HMAC_KEYS[0]
    chain = entries[0].chain
    last_chain_seq, prev = _lock_chain(chain)
    for entry in entries:
        last_chain_seq += 1
        entry.chain_seq, entry.prev_hash = last_chain_seq, prev
        entry.hash = entry.compute_hash()
        entry.key_id, entry.mac = key_id(signing_key), _mac(signing_key, entry.hash)
        prev = entry.hash
    # One INSERT for them all; the database gives each its `seq`, in order.
    AuditEntry.objects.bulk_create(entries)
    _move_head(chain, last_chain_seq, prev, entries[-1].seq)


def _move_head(chain: int, last_chain_seq: int, last_hash: str, last_seq: int) -> None:
    """Point the chain's head (locked by `_lock_chain`) at its new last entry. Written as SQL
    like the lock: every read of a record appends, and compiling the ORM's UPDATE cost more
    than running it."""
    table = connection.ops.quote_name(AuditChainHead._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_chain_seq = %s, last_hash = %s, last_seq = %s WHERE chain = %s",  # noqa: S608
            [last_chain_seq, last_hash, last_seq, chain],
        )


# --- Checkpoints -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Checkpoint:
    body: dict
    signature: str

    @property
    def seq(self) -> int:
        return self.body["seq"]

    @property
    def line(self) -> str:
        return canonical({"body": self.body, "signature": self.signature})

    @property
    def digest(self) -> str:
        """What the next checkpoint links to."""
        return sha256(checkpoint_signed_text(self.body))


class CheckpointUnreadable(Exception):
    pass


def _checkpoint_dir() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_DIR)


def _last_line(path: Path) -> str | None:
    """The last line of a file, read from its end (checkpoint files grow all day)."""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        position = handle.tell()
        data = b""
        while position > 0:
            step = min(65536, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
            if data.rstrip(b"\n").count(b"\n") >= 1:
                break
    lines = data.rstrip(b"\n").split(b"\n")
    return lines[-1].decode() if lines and lines[-1] else None


def _checkpoint_files() -> list[Path]:
    folder = _checkpoint_dir()
    return sorted(folder.glob("checkpoints-*.jsonl")) if folder.is_dir() else []


def read_checkpoints() -> list[Checkpoint]:
    """Every checkpoint of the files, in file order (the verifier's source of truth)."""
    found = []
    for path in _checkpoint_files():
        with path.open() as handle:
            for line in handle:
                if line.strip():
                    try:
                        data = json.loads(line)
                        found.append(Checkpoint(data["body"], data["signature"]))
                    except (ValueError, KeyError, TypeError) as exc:
                        raise CheckpointUnreadable(f"{path.name}: a line that is not a checkpoint") from exc
    return found


def checkpoint_create(*, now=None) -> Checkpoint | None:
    """Sign the chain heads changed since the previous checkpoint (Celery beat, every minute;
    `manage.py audit_checkpoint`). The signed line is appended to today's file first (the
    files are the truth: the next number and link come from their last line), then to the
    log stream and the database copy. Returns None when no head changed."""
    now = now or timezone.now()
    folder = _checkpoint_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"checkpoints-{now:%Y-%m-%d}.jsonl"
    with path.open("a") as handle:
        # One writer at a time (two beat runs, a command): the lock covers reading the heads and
        # the last line, appending, and marking the heads covered.
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            heads = list(
                AuditChainHead.objects.filter(last_chain_seq__gt=F("checkpointed_chain_seq"))
                .order_by("chain").values_list("chain", "last_chain_seq", "last_hash")
            )
            if not heads:
                return None
            previous = _latest_checkpoint_in_files()
            leaves = [[chain, chain_seq, head] for chain, chain_seq, head in heads]
            body = {
                "seq": previous.seq + 1 if previous else 1,
                "at": now.isoformat(timespec="seconds"),
                "prev": previous.digest if previous else GENESIS_HASH,
                "chains": len(leaves),
                "root": merkle_root([leaf_hash(*leaf) for leaf in leaves]),
                "leaves": leaves,
            }
            signature = base64.b64encode(_signing_key().sign(checkpoint_signed_text(body).encode())).decode()
            checkpoint = Checkpoint(body, signature)
            handle.write(checkpoint.line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            # The log stream gets the signed statement; the leaves stay in the file.
            checkpoint_logger.info("audit checkpoint %s", canonical(
                {"body": {k: v for k, v in body.items() if k != "leaves"}, "signature": signature}))
            # A heads' update lost here only means these chains are signed again next time.
            with transaction.atomic():
                AuditCheckpoint.objects.update_or_create(
                    seq=checkpoint.seq, defaults={"at": now, "root": body["root"], "line": checkpoint.line}
                )
                for chain, chain_seq, _head in leaves:
                    AuditChainHead.objects.filter(chain=chain, checkpointed_chain_seq__lt=chain_seq).update(
                        checkpointed_chain_seq=chain_seq, checkpoint=checkpoint.seq
                    )
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return checkpoint


def _latest_checkpoint_in_files() -> Checkpoint | None:
    for path in reversed(_checkpoint_files()):
        line = _last_line(path)
        if line:
            data = json.loads(line)
            return Checkpoint(data["body"], data["signature"])
    return None


@dataclass(frozen=True)
class ChainProof:
    """What the patient's export needs to check their record's chain offline."""

    checkpoint: Checkpoint
    chain: int
    chain_seq: int
    hash: str
    proof: list = field(default_factory=list)


def chain_proof(record_id: int) -> ChainProof | None:
    """The latest signed checkpoint covering the record's chain, and the Merkle proof of the
    chain's head in it (from the database copy, which the patient checks against the
    signature). None if no checkpoint covers the chain yet."""
    chain = chain_of(record_id)
    head = AuditChainHead.objects.filter(chain=chain).first()
    if head is None or head.checkpoint is None:
        return None
    stored = AuditCheckpoint.objects.filter(seq=head.checkpoint).first()
    if stored is None:
        return None
    data = json.loads(stored.line)
    checkpoint = Checkpoint(data["body"], data["signature"])
    leaves = checkpoint.body["leaves"]
    index = next((i for i, leaf in enumerate(leaves) if leaf[0] == chain), None)
    if index is None:
        return None
    _chain, chain_seq, head_hash = leaves[index]
    proof = merkle_proof([leaf_hash(*leaf) for leaf in leaves], index)
    return ChainProof(checkpoint, chain, chain_seq, head_hash, proof)


# --- Verifying ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChainProblem:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def _entry_where(entry: AuditEntry) -> str:
    return f"audit entry #{entry.seq} (chain {entry.chain}, position {entry.chain_seq})"


@dataclass
class VerifyReport:
    problems: list[ChainProblem] = field(default_factory=list)
    chains: int = 0
    entries: int = 0
    checkpoints: int = 0
    last_checkpoint: int | None = None


def _verify_checkpoint_files(report: VerifyReport, keys: list[str]) -> list[Checkpoint]:
    try:
        checkpoints = read_checkpoints()
    except CheckpointUnreadable as problem:
        report.problems.append(ChainProblem("checkpoint files", str(problem)))
        return []
    prev = GENESIS_HASH
    for expected, checkpoint in enumerate(checkpoints, start=1):
        where = f"checkpoint #{checkpoint.seq}"
        if checkpoint.seq != expected:
            report.problems.append(ChainProblem(where, f"checkpoint #{expected} is missing from the files"))
            return []
        if not any(signature_valid(key, checkpoint.body, checkpoint.signature) for key in keys):
            report.problems.append(ChainProblem(where, "its signature is not valid"))
            return []
        if checkpoint.body["prev"] != prev:
            report.problems.append(ChainProblem(where, "it does not link to the previous checkpoint"))
            return []
        leaves = checkpoint.body["leaves"]
        if merkle_root([leaf_hash(*leaf) for leaf in leaves]) != checkpoint.body["root"]:
            report.problems.append(ChainProblem(where, "its leaves do not give its signed root"))
            return []
        prev = checkpoint.digest
    report.checkpoints = len(checkpoints)
    report.last_checkpoint = checkpoints[-1].seq if checkpoints else None
    return checkpoints


def _verify_one_chain(chain: int, signed: dict[int, tuple[str, int]], keys: dict[str, str],
                      report: VerifyReport, batch: int) -> ChainProblem | None:
    """Walk one chain from its first entry: position, link, hash, MAC, global order; then its
    head and what the checkpoints signed about it."""
    expected, prev, last_seq, after = 1, GENESIS_HASH, 0, 0
    while True:
        rows = list(AuditEntry.objects.filter(chain=chain, chain_seq__gt=after).order_by("chain_seq")[:batch])
        if not rows:
            break
        for entry in rows:
            where = _entry_where(entry)
            if entry.chain != chain_of(entry.record_id_ref):
                return ChainProblem(where, "it is not in its record's chain")
            if entry.chain_seq != expected:
                what = "an entry is missing before it" if entry.chain_seq > expected else "unexpected position"
                return ChainProblem(where, what)
            if entry.prev_hash != prev:
                return ChainProblem(where, "it does not link to the previous entry (inserted or reordered)")
            if entry.compute_hash() != entry.hash:
                return ChainProblem(where, "its content was altered")
            key = keys.get(entry.key_id)
            if key is None or not hmac.compare_digest(_mac(key, entry.hash), entry.mac):
                return ChainProblem(where, "its MAC is not valid (written without the ledger's key)")
            if entry.seq <= last_seq:
                return ChainProblem(where, "it comes before the previous entry in the global order (reordered)")
            if entry.chain_seq in signed and signed[entry.chain_seq][0] != entry.hash:
                return ChainProblem(where, f"it is not the entry checkpoint #{signed[entry.chain_seq][1]} signed")
            prev, last_seq = entry.hash, entry.seq
            expected += 1
            report.entries += 1
        after = rows[-1].chain_seq
    last = expected - 1
    beyond = [position for position in signed if position > last]
    if beyond:
        position = max(beyond)
        return ChainProblem(f"chain {chain}", f"entries up to position {position}, signed by checkpoint "
                            f"#{signed[position][1]}, were deleted (the chain ends at {last})")
    head = AuditChainHead.objects.filter(chain=chain).first()
    if head is None and last:
        return ChainProblem(f"chain {chain}", "its chain head is missing")
    if head is not None and (head.last_chain_seq != last or head.last_hash != prev):
        return ChainProblem(f"chain {chain}", f"entries after position {last} were deleted (the chain ends early)")
    return None


def verify_ledger(*, full: bool = True, batch: int = 2000, stop_at_first: bool = True) -> VerifyReport:
    """Check the ledger against the HMAC keys and the signed checkpoint files. `full` walks
    every chain; otherwise only the chains changed since the last verified checkpoint (and
    those not yet checkpointed), each from its first entry."""
    report = VerifyReport()
    keys = {key_id(key): key for key in settings.AUDIT_HMAC_KEYS}
    checkpoints = _verify_checkpoint_files(report, [public_key()])
    if report.problems:
        return report
    verified_up_to = 0
    if not full:
        verified_up_to = (AuditCheckpoint.objects.filter(verified_at__isnull=False)
                          .order_by("-seq").values_list("seq", flat=True).first() or 0)
    # What the checkpoints signed, per chain: position -> (hash, checkpoint).
    signed: dict[int, dict[int, tuple[str, int]]] = {}
    for checkpoint in checkpoints:
        for chain, chain_seq, head in checkpoint.body["leaves"]:
            signed.setdefault(chain, {})[chain_seq] = (head, checkpoint.seq)
    if full:
        chains = set(AuditEntry.objects.values_list("chain", flat=True).distinct())
        chains |= set(AuditChainHead.objects.values_list("chain", flat=True))
        chains |= set(signed)
    else:
        chains = {chain for checkpoint in checkpoints if checkpoint.seq > verified_up_to
                  for chain, _position, _head in checkpoint.body["leaves"]}
        chains |= set(AuditChainHead.objects.filter(last_chain_seq__gt=F("checkpointed_chain_seq"))
                      .values_list("chain", flat=True))
    for chain in sorted(chains):
        problem = _verify_one_chain(chain, signed.get(chain, {}), keys, report, batch)
        report.chains += 1
        if problem is not None:
            report.problems.append(problem)
            if stop_at_first:
                return report
    if not report.problems and checkpoints:
        AuditCheckpoint.objects.filter(seq__lte=checkpoints[-1].seq, verified_at__isnull=True).update(
            verified_at=timezone.now()
        )
    return report


def verify_chain(*, batch: int = 2000) -> ChainProblem | None:
    """Check the whole ledger; return the first problem, or None if it is intact."""
    report = verify_ledger(full=True, batch=batch)
    return report.problems[0] if report.problems else None
