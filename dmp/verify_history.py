"""Check a record's access history offline, from the ZIP of a record export.

    python -m dmp.verify_history record-export.zip [--public-key BASE64]

The ZIP's `access-history/` folder holds the record's audit chain (each entry's canonical text
and hash), the latest signed checkpoint that covers the chain's newest entry, the Merkle proof
that ties that entry to the checkpoint's root, and the public key that signed it. This file
needs Python and the `cryptography` package only: no database, no Django (the export ships a
copy of it, so it runs without the project). The ledger itself (dmp/audit.py) uses the same
functions below, so what is written and what is checked cannot drift apart.

Compare the public key with the one the operator publishes (`--public-key`): the key inside
the ZIP proves nothing by itself.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import zipfile

GENESIS_HASH = "0" * 64
FOLDER = "access-history/"


def canonical(data: dict) -> str:
    """The one text form of a JSON object that is hashed and signed."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


# --- Merkle tree over chain heads (leaves sorted by chain) -------------------------------------

def leaf_hash(chain: int, chain_seq: int, head: str) -> str:
    return sha256(b"\x00" + f"{chain}:{chain_seq}:{head}".encode())


def _node(left: str, right: str) -> str:
    return sha256(b"\x01" + bytes.fromhex(left) + bytes.fromhex(right))


def merkle_root(leaves: list[str]) -> str:
    """Root over leaf hashes; an odd node is carried up unchanged. No leaves: sha256("")."""
    if not leaves:
        return sha256(b"")
    level = list(leaves)
    while len(level) > 1:
        level = [_node(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
    return level[0]


def merkle_proof(leaves: list[str], index: int) -> list[list[str]]:
    """The sibling hashes from leaf `index` up to the root, each with its side ("L" or "R")."""
    proof, level = [], list(leaves)
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(["L" if sibling < index else "R", level[sibling]])
        level = [_node(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
        index //= 2
    return proof


def root_from_proof(leaf: str, proof: list[list[str]]) -> str:
    node = leaf
    for side, sibling in proof:
        node = _node(sibling, node) if side == "L" else _node(node, sibling)
    return node


# --- Checkpoints ---------------------------------------------------------------------------------

def checkpoint_signed_text(body: dict) -> str:
    """What the Ed25519 signature covers: the checkpoint's body without its leaves (the root
    stands for them)."""
    return canonical({k: v for k, v in body.items() if k != "leaves"})


def signature_valid(public_key_b64: str, body: dict, signature_b64: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
        key.verify(base64.b64decode(signature_b64), checkpoint_signed_text(body).encode())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# --- The check of an export ---------------------------------------------------------------------

class HistoryInvalid(Exception):
    pass


def verify_chain_entries(chain: int, entries: list[dict]) -> str:
    """Check one chain given as [{"payload": text, "hash": hex}] from its first entry; return
    the newest entry's hash."""
    prev = GENESIS_HASH
    for position, entry in enumerate(entries, start=1):
        payload = json.loads(entry["payload"])
        if payload.get("chain") != chain or payload.get("chain_seq") != position:
            raise HistoryInvalid(f"entry {position}: not the next entry of this record's history")
        if payload.get("prev") != prev:
            raise HistoryInvalid(f"entry {position}: does not follow the previous entry")
        if sha256(entry["payload"]) != entry["hash"]:
            raise HistoryInvalid(f"entry {position}: its content was altered")
        prev = entry["hash"]
    return prev


def verify_export(path: str, public_key: str | None = None) -> str:
    """Check the access history inside an export ZIP; return a one-line summary or raise
    HistoryInvalid."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            entries = [json.loads(line) for line in archive.read(FOLDER + "chain.jsonl").decode().splitlines() if line]
            if not entries and FOLDER + "checkpoint.json" not in names:
                return "OK: no access to this record was recorded when the copy was made (nothing signed to check)."
            checkpoint = json.loads(archive.read(FOLDER + "checkpoint.json"))
            proof = json.loads(archive.read(FOLDER + "proof.json"))
            shipped_key = archive.read(FOLDER + "public-key.txt").decode().strip()
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise HistoryInvalid(f"cannot read the access history in this file ({type(exc).__name__})") from exc
    key = public_key or shipped_key
    body = checkpoint["body"]
    if not signature_valid(key, body, checkpoint["signature"]):
        raise HistoryInvalid("the checkpoint's signature is not valid for this public key")
    chain = proof["chain"]
    try:
        newest = verify_chain_entries(chain, entries)
    except (KeyError, TypeError, ValueError) as exc:
        raise HistoryInvalid(f"an entry cannot be read ({type(exc).__name__})") from exc
    if proof["chain_seq"] != len(entries) or proof["hash"] != newest:
        raise HistoryInvalid("the history does not end where the signed checkpoint says it does")
    if root_from_proof(leaf_hash(chain, len(entries), newest), proof["proof"]) != body["root"]:
        raise HistoryInvalid("the history is not the one the signed checkpoint covers")
    origin = ("the public key given" if public_key
              else "the public key inside the ZIP (compare it with the published one)")
    return (f"OK: {len(entries)} entries of record {chain}, covered by checkpoint #{body['seq']} "
            f"of {body['at']}, signed with {origin}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the access history of a record export, offline.")
    parser.add_argument("zip", help="the record export (ZIP)")
    parser.add_argument("--public-key", help="the operator's published public key (base64)")
    args = parser.parse_args(argv)
    try:
        print(verify_export(args.zip, args.public_key))
    except HistoryInvalid as problem:
        print(f"NOT VALID: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
