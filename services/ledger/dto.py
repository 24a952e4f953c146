from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import msgspec

from services.ledger.canonical import Checkpoint, Entry
from services.ledger.merkle import leaf_hash

if TYPE_CHECKING:
    from services.ledger.service import InclusionProof

Hex32 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$", description="32 bytes, lowercase hex")]
Time = Annotated[str, msgspec.Meta(description="UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ (as hashed and signed)")]


class LedgerEntry(msgspec.Struct):
    seq: int
    kind: str
    debit: str
    credit: str
    amount: int
    xp: int
    ref_type: str | None
    ref_id: str | None
    memo: str | None
    created_at: Time
    prev_hash: Hex32
    entry_hash: Hex32

    @classmethod
    def of(cls, e: Entry) -> LedgerEntry:
        return cls(**e.to_json())


class LedgerCheckpoint(msgspec.Struct):
    tree_size: int
    root: Hex32
    signature: Annotated[str, msgspec.Meta(description="Ed25519 signature, hex (see GET /api/ledger/keys)")]
    key_id: str
    created_at: Time

    @classmethod
    def of(cls, cp: Checkpoint) -> LedgerCheckpoint:
        return cls(**cp.to_json())


class EntryPage(msgspec.Struct):
    items: list[LedgerEntry]
    next_cursor: str | None


class CheckpointPage(msgspec.Struct):
    items: list[LedgerCheckpoint]
    next_cursor: str | None


class InclusionProofOut(msgspec.Struct):
    """RFC 9162 2.1.3: ``leaf_hash = SHA-256(0x00 || entry.entry_hash)`` is leaf ``leaf_index``
    of the tree of ``checkpoint.tree_size`` leaves whose root is ``checkpoint.root``."""

    entry: LedgerEntry
    leaf_index: int
    leaf_hash: Hex32
    tree_size: int
    audit_path: list[Hex32]
    checkpoint: LedgerCheckpoint

    @classmethod
    def of(cls, p: InclusionProof) -> InclusionProofOut:
        return cls(
            entry=LedgerEntry.of(p.entry),
            leaf_index=p.leaf_index,
            leaf_hash=leaf_hash(p.entry.entry_hash).hex(),
            tree_size=p.checkpoint.tree_size,
            audit_path=[h.hex() for h in p.path],
            checkpoint=LedgerCheckpoint.of(p.checkpoint),
        )


class ConsistencyProofOut(msgspec.Struct):
    """RFC 9162 2.1.4: the tree of ``first.tree_size`` entries is a prefix of ``second``'s."""

    first: LedgerCheckpoint
    second: LedgerCheckpoint
    proof: list[Hex32]


class PublicKey(msgspec.Struct):
    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str
    created_at: str


class PublicKeys(msgspec.Struct):
    """Ed25519 public keys (JWK, RFC 8037) that sign this territory's checkpoints. A signature
    covers ``oneheart-ledger-checkpoint-v1|<territory>|<tree_size>|<root hex>|<created_at>``."""

    territory: str
    keys: list[PublicKey]


class Balance(msgspec.Struct):
    account: str
    tokens: int
    xp: int
