"""Appending to a territory's ledger, checkpoints, proofs and exports.

Every function takes a connection from ``router.transaction(territory)`` (appends and
checkpoints: a write transaction; the caller's other writes commit or roll back with them).

Sequencing: :func:`append` locks the territory's one-row ``ledger_head`` (``FOR UPDATE``)
before anything else, so appends in one territory queue there, get gapless sequence numbers
and each links to the one before; the row is per schema, so territories never wait for each
other. The head also holds the Merkle frontier, so an append hashes O(log n) and stores the
complete subtrees it finishes on its own row (``subtrees``): proofs then read at most
~2 log2(n) rows by primary key, whatever the size of the ledger.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.errors import AppError, Conflict, Forbidden, InvalidInput, NotFound
from core.events.outbox import emit
from core.pagination import decode_int_cursor, encode_cursor
from core.routing import Router, Territory, territory_of
from core.settings import Settings
from services.ledger import keys as ledger_keys
from services.ledger import merkle
from services.ledger.canonical import (
    MINT,
    PLAYER,
    Checkpoint,
    Entry,
    entry_hash,
    entry_problem,
    format_time,
    is_private,
)
from services.ledger.dto import PublicKey, PublicKeys
from services.ledger.models import balances, ledger_checkpoints, ledger_entries, ledger_head

E, H, B, C = ledger_entries, ledger_head, balances, ledger_checkpoints
EXPORT_FORMAT = "oneheart-ledger-export/1"
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class InsufficientFunds(Conflict):
    code = "insufficient_funds"


class LedgerDamaged(AppError):
    status, code = 409, "ledger_damaged"


# Who may read every account's balance in a territory, not only public ones and their own.
STAFF = ("operator", "government", "global_admin")


def player_account(player_id: object) -> str:
    return f"{PLAYER}{player_id}"


def is_staff(identity: Identity, territory: str) -> bool:
    return any(identity.has(role, territory) for role in STAFF)


def may_read_balance(identity: Identity, territory: str, account: str) -> bool:
    return not is_private(account) or account == player_account(identity.user_id) or is_staff(identity, territory)


def check_balance_reader(identity: Identity, territory: str, account: str) -> None:
    """:class:`Forbidden` (403) unless ``identity`` may read ``account``'s balance."""
    if not may_read_balance(identity, territory, account):
        raise Forbidden("a player's balance is private to the player and the territory's staff")


def sponsor_account(sponsor_id: object) -> str:
    return f"sponsor:{sponsor_id}"


def _entry(row: Any) -> Entry:
    """An entry from a row with ``ledger_entries``' columns, by name (``subtrees`` optional)."""
    m = row._mapping
    return Entry(
        seq=m["seq"],
        kind=m["kind"],
        debit=m["debit"],
        credit=m["credit"],
        amount=m["amount"],
        xp=m["xp"],
        ref_type=m["ref_type"],
        ref_id=m["ref_id"],
        memo=m["memo"],
        created_at=m["created_at"],
        prev_hash=bytes(m["prev_hash"]),
        entry_hash=bytes(m["entry_hash"]),
        subtrees=[bytes(h) for h in m["subtrees"]] if "subtrees" in m else None,
    )


def _checkpoint(row: Any) -> Checkpoint:
    m = row._mapping
    return Checkpoint(m["tree_size"], bytes(m["root"]), bytes(m["signature"]), m["key_id"], m["created_at"])


# --- writes -------------------------------------------------------------------------------------
def _append_statement() -> Any:
    """Every write of an append in one statement (one round trip while the head is locked):
    debit the payer if it can pay, and only then credit, insert the entry, move the head.
    Data-modifying CTEs all run; each is conditional on ``debited`` returning its row."""
    p = {
        name: sa.bindparam(name, type_=column.type)
        for name, column in [
            ("debit", B.c.account),
            ("credit", B.c.account),
            ("amount", B.c.tokens),
            ("xp", B.c.xp),
            *((c.name, c) for c in E.c if c.name not in ("debit", "credit", "amount", "xp")),
            ("frontier", H.c.frontier),
        ]
    }
    debited = (
        B.update()
        .where(
            B.c.account == p["debit"],
            sa.or_(B.c.account == MINT, sa.and_(B.c.tokens >= p["amount"], B.c.xp >= p["xp"])),
        )
        .values(tokens=B.c.tokens - p["amount"], xp=B.c.xp - p["xp"], updated_seq=p["seq"])
        .returning(B.c.account)
        .cte("debited")
    )
    credit = pg_insert(B).from_select(
        ["account", "tokens", "xp", "updated_seq"],
        sa.select(p["credit"], p["amount"], p["xp"], p["seq"]).select_from(debited),
    )
    credited = (
        credit.on_conflict_do_update(
            index_elements=[B.c.account],
            set_={
                "tokens": B.c.tokens + credit.excluded.tokens,
                "xp": B.c.xp + credit.excluded.xp,
                "updated_seq": credit.excluded.updated_seq,
            },
        )
        .returning(B.c.account)
        .cte("credited")
    )
    names = [c.name for c in E.c]
    entered = (
        E.insert()
        .from_select(names, sa.select(*(p[n] for n in names)).select_from(debited))
        .returning(E.c.seq)
        .cte("entered")
    )
    moved = (
        H.update()
        .where(sa.exists(sa.select(debited.c.account)))
        .values(seq=p["seq"], hash=p["entry_hash"], frontier=p["frontier"])
        .returning(H.c.seq)
        .cte("moved")
    )
    counts = [sa.select(sa.func.count()).select_from(t).scalar_subquery() for t in (debited, credited, entered, moved)]
    return sa.select(*(c.label(n) for c, n in zip(counts, ("debited", "credited", "entered", "moved"), strict=True)))


_APPEND = _append_statement()
_HEAD_FOR_UPDATE = sa.select(H.c.seq, H.c.hash, H.c.frontier).with_for_update()


async def append(
    conn: AsyncConnection,
    territory: str,
    *,
    kind: str,
    debit: str,
    credit: str,
    amount: int,
    xp: int = 0,
    ref_type: str | None = None,
    ref_id: str | None = None,
    memo: str | None = None,
    clock: Clock = utcnow,
) -> Entry:
    """Append one entry and move its tokens and XP from ``debit`` to ``credit``, in ``conn``'s
    transaction. :class:`InvalidInput` (400) for an entry the rules refuse,
    :class:`InsufficientFunds` (409) when ``debit`` (other than ``mint``) has too little; in
    both cases nothing is written and the transaction can go on."""
    problem = entry_problem(kind, debit, credit, amount, xp, ref_type, ref_id, memo)
    if problem:
        raise InvalidInput(problem)
    options = conn.sync_connection.get_execution_options() if conn.sync_connection else {}
    if options.get("isolation_level") == "AUTOCOMMIT":
        # The head lock would end with the statement: appends would race. A bug, not bad input.
        raise RuntimeError("ledger appends need router.transaction(), not router.read()")
    if territory != territory_of(conn):
        # The code is hashed into the entry: a mismatch would chain an entry no verifier accepts.
        raise RuntimeError(f"appending a {territory!r} entry on a connection of {territory_of(conn)!r}")
    head = (await conn.execute(_HEAD_FOR_UPDATE)).one()
    seq = head.seq + 1
    try:
        frontier = merkle.Frontier(head.seq, [bytes(h) for h in head.frontier])
    except ValueError as exc:
        raise LedgerDamaged(f"ledger head is damaged ({exc}); run oneheart ledger verify {territory}") from None
    draft = Entry(seq, kind, debit, credit, amount, xp, ref_type, ref_id, memo, clock(), bytes(head.hash), b"")
    digest = entry_hash(territory, draft)
    subtrees = frontier.push(merkle.leaf_hash(digest))
    done = (
        await conn.execute(
            _APPEND,
            {
                "seq": seq,
                "kind": kind,
                "debit": debit,
                "credit": credit,
                "amount": amount,
                "xp": xp,
                "ref_type": ref_type,
                "ref_id": ref_id,
                "memo": memo,
                "created_at": draft.created_at,
                "prev_hash": draft.prev_hash,
                "entry_hash": digest,
                "subtrees": subtrees,
                "frontier": frontier.hashes,
            },
        )
    ).one()
    if not done.debited:
        have = (await conn.execute(sa.select(B.c.tokens, B.c.xp).where(B.c.account == debit))).first()
        tokens, points = (have.tokens, have.xp) if have else (0, 0)
        raise InsufficientFunds(
            f"account {debit} has {tokens} tokens and {points} XP; this {kind} needs {amount} tokens and {xp} XP"
        )
    if not (done.credited and done.entered and done.moved):  # cannot happen short of a damaged schema
        raise LedgerDamaged(f"append to the ledger of {territory} half done: {done._mapping}")
    return dataclasses.replace(draft, entry_hash=digest, subtrees=subtrees)


async def checkpoint(
    conn: AsyncConnection, territory: str, settings: Settings, *, clock: Clock = utcnow
) -> Checkpoint | None:
    """Sign the Merkle root of every entry so far, store it and emit ``ledger.checkpoint``.

    Returns the existing checkpoint when no entry came since the last one (no event), and
    None while the ledger is empty. Appends never wait for it (it reads the committed head).
    """
    head = (await conn.execute(sa.select(H.c.seq, H.c.frontier))).one()
    if head.seq == 0:
        return None
    latest = await get_checkpoint(conn)
    if latest is not None and latest.tree_size == head.seq:
        return latest
    try:
        root = merkle.Frontier(head.seq, [bytes(h) for h in head.frontier]).root()
    except ValueError as exc:
        raise LedgerDamaged(f"ledger head is damaged ({exc}); run oneheart ledger verify {territory}") from None
    key = ledger_keys.signing_key(settings, territory)
    created_at = clock()
    signature = key.sign(ledger_keys.checkpoint_message(territory, head.seq, root, created_at))
    cp = Checkpoint(head.seq, root, signature, key.key_id, created_at)
    stored = await conn.execute(
        pg_insert(C)
        .values(tree_size=cp.tree_size, root=cp.root, signature=cp.signature, key_id=cp.key_id, created_at=created_at)
        .on_conflict_do_nothing(index_elements=[C.c.tree_size])
        .returning(C.c.tree_size)
    )
    if stored.first() is None:  # a concurrent checkpoint of the same size won
        return await get_checkpoint(conn, head.seq)
    await emit(conn, "ledger.checkpoint", cp.to_json())
    return cp


# --- reads --------------------------------------------------------------------------------------
_ENTRY_COLUMNS = [c for c in E.c if c.name != "subtrees"]


async def list_entries(
    conn: AsyncConnection,
    *,
    limit: int,
    cursor: str | None = None,
    account: str | None = None,
    kind: str | None = None,
    ref_type: str | None = None,
    ref_id: str | None = None,
    from_seq: int | None = None,
    to_seq: int | None = None,
    newest_first: bool = False,
) -> tuple[list[Entry], str | None]:
    """Entries in ``seq`` order (``newest_first``: descending), filtered; keyset pagination on ``seq``."""
    after = decode_int_cursor(cursor) if cursor else None
    if newest_first:
        conditions = [E.c.seq >= (from_seq or 1)]
        if after is not None:
            conditions.append(E.c.seq < after)
    else:
        conditions = [E.c.seq > max(after or 0, (from_seq or 1) - 1)]
    if to_seq is not None:
        conditions.append(E.c.seq <= to_seq)
    if kind is not None:
        conditions.append(E.c.kind == kind)
    if ref_type is not None:
        conditions.append(E.c.ref_type == ref_type)
    if ref_id is not None:
        conditions.append(E.c.ref_id == ref_id)
    order = E.c.seq.desc() if newest_first else E.c.seq
    if account is None:
        query: Any = sa.select(*_ENTRY_COLUMNS).where(*conditions).order_by(order).limit(limit + 1)
    else:
        # Two index range scans (debit, seq) and (credit, seq) merged: no OR over a big table.
        sides = [
            sa.select(*_ENTRY_COLUMNS).where(column == account, *conditions).order_by(order).limit(limit + 1)
            for column in (E.c.debit, E.c.credit)
        ]
        both = sa.union_all(*(s.subquery().select() for s in sides)).subquery()
        query = sa.select(both).order_by(both.c.seq.desc() if newest_first else both.c.seq).limit(limit + 1)
    items = [_entry(r) for r in await conn.execute(query)]
    more = len(items) > limit
    items = items[:limit]
    return items, (encode_cursor(str(items[-1].seq)) if more else None)


async def get_checkpoint(conn: AsyncConnection, tree_size: int | None = None) -> Checkpoint | None:
    """The checkpoint of ``tree_size``, or the latest."""
    query = sa.select(C)
    query = query.where(C.c.tree_size == tree_size) if tree_size is not None else query.order_by(C.c.tree_size.desc())
    row = (await conn.execute(query.limit(1))).first()
    return _checkpoint(row) if row else None


async def list_checkpoints(
    conn: AsyncConnection, *, limit: int, cursor: str | None = None
) -> tuple[list[Checkpoint], str | None]:
    """Newest first."""
    query = sa.select(C).order_by(C.c.tree_size.desc()).limit(limit + 1)
    if cursor:
        query = query.where(C.c.tree_size < decode_int_cursor(cursor))
    items = [_checkpoint(r) for r in await conn.execute(query)]
    more = len(items) > limit
    items = items[:limit]
    return items, (encode_cursor(str(items[-1].tree_size)) if more else None)


def published_keys(settings: Settings, territory: str) -> PublicKeys:
    """The public keys that sign ``territory``'s checkpoints (old ones stay published)."""
    jwks = ledger_keys.public_jwks(ledger_keys.load_keys(settings, territory))
    return PublicKeys(territory, [PublicKey(**k) for k in jwks["keys"]])


async def get_balance(conn: AsyncConnection, account: str) -> tuple[int, int]:
    """``(tokens, xp)`` of an account (0, 0 when it never had any)."""
    row = (await conn.execute(sa.select(B.c.tokens, B.c.xp).where(B.c.account == account))).first()
    return (row.tokens, row.xp) if row else (0, 0)


async def head(conn: AsyncConnection) -> tuple[int, bytes]:
    row = (await conn.execute(sa.select(H.c.seq, H.c.hash))).one()
    return row.seq, bytes(row.hash)


async def _subtrees(conn: AsyncConnection, territory: str, nodes: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Hashes of complete subtrees ``(level, index)``: the level-L subtree ``i`` ends at entry
    ``(i + 1) * 2**L``, whose row stores it (level 0: the leaf, from its entry hash)."""
    seqs = {(index + 1) << level: (level, index) for level, index in nodes}
    if not seqs:
        return {}
    rows = await conn.execute(sa.select(E.c.seq, E.c.entry_hash, E.c.subtrees).where(E.c.seq.in_(list(seqs))))
    found = {r.seq: r for r in rows}
    out = {}
    for seq, (level, index) in seqs.items():
        row = found.get(seq)
        if row is None or len(row.subtrees) < level:
            raise LedgerDamaged(f"entry {seq} is missing or damaged; run oneheart ledger verify {territory}")
        out[(level, index)] = merkle.leaf_hash(bytes(row.entry_hash)) if level == 0 else bytes(row.subtrees[level - 1])
    return out


async def _hashes(conn: AsyncConnection, territory: str, ranges: list[tuple[int, int]]) -> list[bytes]:
    known = await _subtrees(conn, territory, merkle.needed_subtrees(ranges))
    return merkle.resolve(ranges, lambda level, index: known[(level, index)])


@dataclass(frozen=True)
class InclusionProof:
    entry: Entry
    checkpoint: Checkpoint
    path: list[bytes]

    @property
    def leaf_index(self) -> int:
        return self.entry.seq - 1


async def inclusion_proof(
    conn: AsyncConnection, territory: str, seq: int, tree_size: int | None = None
) -> InclusionProof:
    """The audit path of entry ``seq`` in checkpoint ``tree_size`` (default: the latest)."""
    row = (await conn.execute(sa.select(*_ENTRY_COLUMNS).where(E.c.seq == seq))).first()
    if row is None:
        raise NotFound(f"no ledger entry {seq}")
    cp = await get_checkpoint(conn, tree_size)
    if cp is None:
        raise NotFound(f"no checkpoint of tree size {tree_size}" if tree_size else "no checkpoint yet")
    if seq > cp.tree_size:
        raise NotFound(f"entry {seq} came after checkpoint {cp.tree_size}; wait for the next checkpoint")
    path = await _hashes(conn, territory, merkle.inclusion_ranges(seq - 1, cp.tree_size))
    return InclusionProof(_entry(row), cp, path)


async def consistency_proof(
    conn: AsyncConnection, territory: str, first: int, second: int
) -> tuple[Checkpoint, Checkpoint, list[bytes]]:
    """Proof that checkpoint ``first`` is a prefix of checkpoint ``second`` (RFC 9162 2.1.4)."""
    if first > second:
        raise InvalidInput("from must not be greater than to")
    old, new = await get_checkpoint(conn, first), await get_checkpoint(conn, second)
    for size, cp in ((first, old), (second, new)):
        if cp is None:
            raise NotFound(f"no checkpoint of tree size {size}")
    assert old is not None and new is not None
    return old, new, await _hashes(conn, territory, merkle.consistency_ranges(first, second))


# --- snapshots and export -----------------------------------------------------------------------
@asynccontextmanager
async def snapshot(router: Router, territory: Territory) -> AsyncIterator[AsyncConnection]:
    """A read-only, repeatable-read transaction: head, entries, checkpoints and balances agree."""
    async with router.transaction(territory) as conn:
        await conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        yield conn


async def genesis_hash(conn: AsyncConnection) -> bytes | None:
    """The hash of entry 1, which names this ledger (None while it is empty): a ledger made
    again (the territory recreated, the database restored from elsewhere) has another one."""
    found = (await conn.execute(sa.select(E.c.entry_hash).where(E.c.seq == 1))).scalar_one_or_none()
    return None if found is None else bytes(found)


async def iter_entries(
    conn: AsyncConnection, *, upto: int, batch: int = 5000, with_subtrees: bool = False
) -> AsyncIterator[list[Entry]]:
    """Entries 1..``upto`` in batches (keyset; a gap simply shows as a missing seq)."""
    columns = list(E.c) if with_subtrees else _ENTRY_COLUMNS
    after = 0
    while after < upto:
        rows = (
            await conn.execute(
                sa.select(*columns).where(E.c.seq > after, E.c.seq <= upto).order_by(E.c.seq).limit(batch)
            )
        ).all()
        if not rows:
            return
        entries = [_entry(r) for r in rows]
        after = entries[-1].seq
        yield entries


async def all_checkpoints(conn: AsyncConnection, upto: int | None = None) -> list[Checkpoint]:
    query = sa.select(C).order_by(C.c.tree_size)
    if upto is not None:
        query = query.where(C.c.tree_size <= upto)
    return [_checkpoint(r) for r in await conn.execute(query)]


async def iter_balances(
    conn: AsyncConnection, batch: int = 5000, *, public_only_but: str | None = None
) -> AsyncIterator[list[tuple[str, int, int]]]:
    """Every balance row in account order; with ``public_only_but``, only public accounts and
    that one account (see :func:`is_private`)."""
    after = ""
    while True:
        query = sa.select(B.c.account, B.c.tokens, B.c.xp).where(B.c.account > after)
        if public_only_but is not None:
            query = query.where(sa.or_(~B.c.account.startswith(PLAYER), B.c.account == public_only_but))
        rows = (await conn.execute(query.order_by(B.c.account).limit(batch))).all()
        if not rows:
            return
        after = rows[-1].account
        yield [(r.account, r.tokens, r.xp) for r in rows]


def _line(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


async def export_lines(
    conn: AsyncConnection, territory: str, settings: Settings, *, reader: Identity | None = None
) -> AsyncIterator[bytes]:
    """The ledger as JSON lines, in a :func:`snapshot` transaction::

        {"type": "header", "format": "oneheart-ledger-export/1", "territory", "tree_size",
         "head_hash", "exported_at", "keys": <JWK set>, "balances": "all" | "public"}
        {"type": "checkpoint", ...}   (every checkpoint up to tree_size, oldest first)
        {"type": "entry", ...}        (seq 1..tree_size)
        {"type": "balance", "account", "tokens", "xp"}
        {"type": "end", "entries": n, "checkpoints": n, "balances": n}

    Checkpoints come before entries so a verifier checks every root in one pass; the end
    line tells a complete file from a cut one. For a ``reader`` who may not read every player's
    balance (:func:`may_read_balance`), the balance lines are the public accounts' and the
    reader's own (``"balances": "public"``); the entries still let anyone recompute them all.
    """
    own = None
    if reader is not None and not is_staff(reader, territory):
        own = player_account(reader.user_id)
    size, head_hash = await head(conn)
    checkpoints = await all_checkpoints(conn, size)
    yield _line(
        {
            "type": "header",
            "format": EXPORT_FORMAT,
            "territory": territory,
            "tree_size": size,
            "head_hash": head_hash.hex(),
            "exported_at": format_time(utcnow()),
            "keys": ledger_keys.public_jwks(ledger_keys.load_keys(settings, territory)),
            "balances": "all" if own is None else "public",
        }
    )
    for cp in checkpoints:
        yield _line({"type": "checkpoint", **cp.to_json()})
    entries = accounts = 0
    async for batch in iter_entries(conn, upto=size):
        entries += len(batch)
        yield b"".join(_line({"type": "entry", **e.to_json()}) for e in batch)
    async for rows in iter_balances(conn, public_only_but=own):
        accounts += len(rows)
        yield b"".join(_line({"type": "balance", "account": a, "tokens": t, "xp": x}) for a, t, x in rows)
    yield _line({"type": "end", "entries": entries, "checkpoints": len(checkpoints), "balances": accounts})


class LedgerExports:
    """Exports for the HTTP API: each one streams from its own :func:`snapshot`, held open
    until the last line is sent (or the client goes away)."""

    def __init__(self, router: Router, settings: Settings) -> None:
        self.router, self.settings = router, settings

    async def open(self, territory: Territory, reader: Identity) -> AsyncIterator[bytes]:
        """The export's lines. The snapshot is opened and the first line read before this
        returns, so a server that is down raises here (503), before anything is streamed."""
        stack = AsyncExitStack()
        try:
            conn = await stack.enter_async_context(snapshot(self.router, territory))
            lines = export_lines(conn, territory.code, self.settings, reader=reader)
            first = await anext(lines)
        except BaseException:
            await stack.__aexit__(*sys.exc_info())
            raise

        async def stream() -> AsyncIterator[bytes]:
            async with stack:  # closes the snapshot at the end, on an error or a disconnect
                yield first
                async for chunk in lines:
                    yield chunk

        return stream()
