"""The canonical encoding of a ledger entry, and its hash.

The canonical bytes of an entry are compact JSON (RFC 8785 / JCS for this shape: keys sorted,
no whitespace, UTF-8, integers only, ``null`` for absent values) of::

    {"amount": int, "created_at": "YYYY-MM-DDTHH:MM:SS.ffffffZ", "credit": str, "debit": str,
     "kind": str, "memo": str|null, "ref_id": str|null, "ref_type": str|null, "seq": int,
     "territory": str, "xp": int}

``created_at`` is UTC with exactly six fractional digits. Then::

    entry_hash = SHA-256(prev_hash || canonical)      (prev_hash of entry 1: 32 zero bytes)

and the entry's Merkle leaf is ``SHA-256(0x00 || entry_hash)``. The territory is part of the
hashed content, so an entry cannot be replayed into another territory's ledger.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import msgspec

GENESIS = bytes(32)
KINDS = ("mint", "transfer", "burn", "adjust")
MINT, BURN = "mint", "burn"
PLAYER = "player:"  # a player's account: player:<uuid>


def is_private(account: str) -> bool:
    """A player's balance is theirs (and the territory staff's) to read; pool, sponsor, mint
    and burn balances are public. Entries are public either way (they name opaque ids)."""
    return account.startswith(PLAYER)


# player:<uuid>, sponsor:<uuid>, pool:<name>, mint, burn (see services/ledger/__init__.py).
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ACCOUNT = re.compile(rf"^(mint|burn|pool:[a-z0-9_-]{{1,64}}|(player|sponsor):{_UUID})$")
REF_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_AMOUNT = 10**15
MAX_REF_ID, MAX_MEMO = 128, 500


@lru_cache(maxsize=65536)
def _valid_account(account: str) -> bool:
    return ACCOUNT.fullmatch(account) is not None


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def entry_problem(
    kind: str, debit: str, credit: str, amount: int, xp: int, ref_type: str | None, ref_id: str | None, memo: str | None
) -> str | None:
    """Why an entry with these values is not allowed, or None. Shared by append and verify."""
    if kind not in KINDS:
        return f"kind must be one of {', '.join(KINDS)}, not {kind!r}"
    for side, account in (("debit", debit), ("credit", credit)):
        if not _valid_account(account):
            return f"{side} account {account!r} is not player:<uuid>, sponsor:<uuid>, pool:<name>, mint or burn"
    if debit == credit:
        return "debit and credit must be different accounts"
    if not (0 <= amount <= MAX_AMOUNT and 0 <= xp <= MAX_AMOUNT):
        return f"amount and xp must be whole numbers from 0 to {MAX_AMOUNT}"
    if amount == 0 and xp == 0:
        return "an entry must move tokens or XP"
    if kind == "mint" and (debit != MINT or credit == BURN):
        return "a mint entry debits the mint account and credits another account than burn"
    if kind == "burn" and (credit != BURN or debit == MINT):
        return "a burn entry credits the burn account from another account than mint"
    if kind == "transfer" and ({debit, credit} & {MINT, BURN}):
        return "a transfer moves tokens between accounts other than mint and burn (use mint or burn)"
    if kind == "adjust" and not (memo and memo.strip()):
        return "an adjust entry needs a memo saying why"
    if (ref_type is None) != (ref_id is None):
        return "ref_type and ref_id come together"
    if ref_type is not None and not REF_TYPE.fullmatch(ref_type):
        return "ref_type must match ^[a-z][a-z0-9_]{0,31}$"
    for name, text, limit in (("ref_id", ref_id, MAX_REF_ID), ("memo", memo, MAX_MEMO)):
        if text is not None and (not 1 <= len(text) <= limit or "\x00" in text or not _utf8(text)):
            return f"{name} must be 1-{limit} characters of valid text without NUL"
    return None


class _Canonical(msgspec.Struct):
    # Declared in sorted key order: msgspec writes fields in declaration order.
    amount: int
    created_at: str
    credit: str
    debit: str
    kind: str
    memo: str | None
    ref_id: str | None
    ref_type: str | None
    seq: int
    territory: str
    xp: int


_encode = msgspec.json.Encoder().encode
_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    kind: str
    debit: str
    credit: str
    amount: int
    xp: int
    ref_type: str | None
    ref_id: str | None
    memo: str | None
    created_at: datetime
    prev_hash: bytes
    entry_hash: bytes
    # Hashes of the complete Merkle subtrees this entry finished (levels 1, 2, ...), as stored;
    # derived data, not part of the hashed content. ``None`` when not known (exports).
    subtrees: list[bytes] | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The entry as served and exported (hashes in lowercase hex)."""
        return {
            "seq": self.seq,
            "kind": self.kind,
            "debit": self.debit,
            "credit": self.credit,
            "amount": self.amount,
            "xp": self.xp,
            "ref_type": self.ref_type,
            "ref_id": self.ref_id,
            "memo": self.memo,
            "created_at": format_time(self.created_at),
            "prev_hash": self.prev_hash.hex(),
            "entry_hash": self.entry_hash.hex(),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Entry:
        """The inverse of :meth:`to_json`; raises ``ValueError``/``KeyError``/``TypeError`` on bad input."""
        return cls(
            seq=_int(doc["seq"]),
            kind=str(doc["kind"]),
            debit=str(doc["debit"]),
            credit=str(doc["credit"]),
            amount=_int(doc["amount"]),
            xp=_int(doc["xp"]),
            ref_type=_opt(doc.get("ref_type")),
            ref_id=_opt(doc.get("ref_id")),
            memo=_opt(doc.get("memo")),
            created_at=parse_time(doc["created_at"]),
            prev_hash=bytes.fromhex(doc["prev_hash"]),
            entry_hash=bytes.fromhex(doc["entry_hash"]),
        )


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def format_time(at: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC."""
    if at.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    u = at.astimezone(UTC)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"


def parse_time(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return at.astimezone(UTC)


def canonical(territory: str, entry: Entry) -> bytes:
    return _encode(
        _Canonical(
            entry.amount,
            format_time(entry.created_at),
            entry.credit,
            entry.debit,
            entry.kind,
            entry.memo,
            entry.ref_id,
            entry.ref_type,
            entry.seq,
            territory,
            entry.xp,
        )
    )


def entry_hash(territory: str, entry: Entry, prev_hash: bytes | None = None) -> bytes:
    """SHA-256(prev_hash || canonical); ``prev_hash`` defaults to the entry's own."""
    return _sha256((entry.prev_hash if prev_hash is None else prev_hash) + canonical(territory, entry)).digest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    tree_size: int
    root: bytes
    signature: bytes
    key_id: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "signature": self.signature.hex(),
            "key_id": self.key_id,
            "created_at": format_time(self.created_at),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Checkpoint:
        return cls(
            tree_size=_int(doc["tree_size"]),
            root=bytes.fromhex(doc["root"]),
            signature=bytes.fromhex(doc["signature"]),
            key_id=str(doc["key_id"]),
            created_at=parse_time(doc["created_at"]),
        )
