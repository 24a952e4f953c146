"""Whole-ledger jobs: verify from the database or from an export file, periodic checkpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
import structlog

from core.routing import Router
from core.settings import Settings
from services.ledger import keys as ledger_keys
from services.ledger import service
from services.ledger.canonical import Checkpoint, Entry
from services.ledger.verify import Report, Verifier
from territories.registry import Registry

log = structlog.get_logger(__name__)
Progress = Callable[[int, int], None]  # (entries done, entries in all)


class ExportError(ValueError):
    """The export file is not a complete, well-formed ledger export."""


def local_public_keys(settings: Settings, territory: str) -> dict[str, Any]:
    return {k.key_id: k.private.public_key() for k in ledger_keys.load_keys(settings, territory)}


async def verify_database(
    router: Router, territory: str, settings: Settings, *, progress: Progress | None = None
) -> Report:
    """Verify a territory's ledger in one consistent snapshot, with this node's public keys."""
    async with service.snapshot(router, await router.lookup(territory)) as conn:
        size, head_hash = await service.head(conn)
        checkpoints = await service.all_checkpoints(conn)
        verifier = Verifier(territory, checkpoints, local_public_keys(settings, territory))
        # Past the head too: rows beyond it (or a head moved back) are findings, not noise.
        last = (await conn.execute(sa.select(sa.func.max(service.E.c.seq)))).scalar() or 0
        total = max(size, last)
        async for batch in service.iter_entries(conn, upto=total, with_subtrees=True):
            for e in batch:
                verifier.add(e)
            if progress:
                progress(verifier.report.entries, total)
        stored = [row async for rows in service.iter_balances(conn) for row in rows]
    return verifier.finish(balances=stored, head=(size, head_hash))


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    decode = msgspec.json.Decoder().decode
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                doc = decode(line)
            except msgspec.DecodeError as exc:
                raise ExportError(f"line {number}: not JSON ({exc})") from None
            if not isinstance(doc, dict) or "type" not in doc:
                raise ExportError(f"line {number}: not an export record")
            yield number, doc


def verify_export(
    path: Path,
    territory: str,
    *,
    keys: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> tuple[Report, dict[str, Any]]:
    """Verify an export file offline. ``keys`` (key_id -> public key) are the ones the auditor
    trusts; without them the export's own keys are used. Returns the report and the header."""
    lines = _lines(path)
    try:
        _, header = next(lines)
    except StopIteration:
        raise ExportError("the file is empty") from None
    if header.get("type") != "header" or header.get("format") != service.EXPORT_FORMAT:
        raise ExportError(f"line 1: not a {service.EXPORT_FORMAT} header")
    if header.get("territory") != territory:
        raise ExportError(f"the export is of territory {header.get('territory')!r}, not {territory!r}")
    total = int(header["tree_size"])
    trusted = keys if keys is not None else ledger_keys.parse_jwks(header.get("keys") or {})
    checkpoints: list[Checkpoint] = []
    verifier: Verifier | None = None
    balances: list[tuple[str, int, int]] = []
    end: dict[str, Any] | None = None
    for number, doc in lines:
        kind = doc["type"]
        try:
            if kind == "checkpoint":
                if verifier is not None:
                    raise ExportError(f"line {number}: checkpoint after the entries")
                checkpoints.append(Checkpoint.from_json(doc))
            elif kind == "entry":
                if verifier is None:
                    verifier = Verifier(territory, checkpoints, trusted)
                verifier.add(Entry.from_json(doc))
                if progress and verifier.report.entries % 10_000 == 0:
                    progress(verifier.report.entries, total)
            elif kind == "balance":
                balances.append((str(doc["account"]), int(doc["tokens"]), int(doc["xp"])))
            elif kind == "end":
                end = doc
            else:
                raise ExportError(f"line {number}: unknown record type {kind!r}")
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ExportError):
                raise
            raise ExportError(f"line {number}: malformed {kind} record ({type(exc).__name__}: {exc})") from None
    if end is None:
        raise ExportError("the export is cut short (no end record)")
    if verifier is None:
        verifier = Verifier(territory, checkpoints, trusted)
    if progress:
        progress(verifier.report.entries, total)
    report = verifier.finish(
        balances=balances,
        head=(total, bytes.fromhex(header["head_hash"])),
        private_left_out=header.get("balances") == "public",
    )
    return report, header


# --- periodic checkpoints -----------------------------------------------------------------------
async def checkpoint_all(router: Router, settings: Settings, *, concurrency: int = 8) -> int:
    """Checkpoint every active territory with new entries; returns how many were signed."""
    codes = [t.code for t in await Registry(router, "worker").all_territories(status="active")]
    gate = asyncio.Semaphore(concurrency)
    signed = 0

    async def one(code: str) -> None:
        nonlocal signed
        async with gate:
            try:
                async with router.transaction(await router.lookup(code)) as conn:
                    before = await service.get_checkpoint(conn)
                    cp = await service.checkpoint(conn, code, settings)
                if cp is not None and (before is None or cp.tree_size != before.tree_size):
                    signed += 1
            except Exception as exc:  # one territory's trouble must not stop the others
                log.warning("ledger checkpoint failed", territory=code, error=str(exc))

    await asyncio.gather(*(one(c) for c in codes))
    return signed


async def run_checkpoints(router: Router, settings: Settings) -> None:
    """``oneheart worker``'s loop: checkpoint every ``ledger_checkpoint_interval`` seconds."""
    interval = settings.ledger.checkpoint_interval
    while interval > 0:
        await asyncio.sleep(interval)
        try:
            signed = await checkpoint_all(router, settings)
        except Exception as exc:  # the registry is down: try again next round
            log.warning("ledger checkpoints skipped", error=str(exc))
            continue
        if signed:
            log.info("ledger checkpoints signed", territories=signed)
