"""Schema migrations: one Alembic history for ``global``, one for the territory template.

Alembic runs programmatically inside a transaction already scoped to the target schema
(``version_table_schema`` is that schema), so a failed upgrade leaves the territory at its
previous revision. ``migrate_all`` reads every territory's revision in a few queries per
server, skips the up-to-date ones without opening a transaction on them, and upgrades the
rest in parallel with bounded concurrency; re-running it resumes after a failure.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.codes import GLOBAL, schema_for
from core.db import scoped_transaction
from core.routing import Router

Kind = Literal["global", "territory"]


@cache
def alembic_config(kind: Kind) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("schemas") / "migrations" / kind))
    return cfg


@cache
def script_directory(kind: Kind) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(kind))


def head(kind: Kind) -> str:
    rev = script_directory(kind).get_current_head()
    assert rev is not None
    return rev


@cache
def upgrade_sql(kind: Kind, start: str | None, target: str) -> str:
    """The DDL that takes a schema from ``start`` to ``target``, rendered once by Alembic.

    Alembic's offline mode renders the history as SQL with unqualified names; applied under
    a search_path scoped to one schema it upgrades that schema. Rendering once and applying
    the text avoids Alembic's module-global ``op``/``context`` proxies, which are not safe
    for concurrent migrations in one process, and costs one round trip per territory.
    Template migrations must therefore be offline-capable (no reads of live data).
    """
    script = script_directory(kind)
    out = io.StringIO()

    def fn(rev: Any, _context: Any) -> Any:
        return script._upgrade_revs(target, rev)

    with EnvironmentContext(
        alembic_config(kind), script, fn=fn, as_sql=True, starting_rev=start, destination_rev=target
    ) as env:
        env.configure(dialect_name="postgresql", as_sql=True, output_buffer=out, transactional_ddl=False)
        with env.begin_transaction():
            env.run_migrations()
    return out.getvalue()


async def schema_revision(conn: AsyncConnection, schema: str) -> str | None:
    exists = (
        await conn.execute(
            sa.text(
                "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :schema AND c.relname = 'alembic_version'"
            ),
            {"schema": schema},
        )
    ).first()
    if exists is None:
        return None
    return (await conn.execute(sa.text(f'SELECT version_num FROM "{schema}".alembic_version'))).scalar()


async def upgrade_schema(engine: AsyncEngine, kind: Kind, schema: str, target: str = "head") -> str | None:
    """Create ``schema`` if needed and upgrade it to ``target`` in one transaction.

    Returns the revision it started from. Concurrent upgrades of one schema queue on an
    advisory lock; the second finds nothing left to do.
    """
    goal = head(kind) if target == "head" else target
    async with scoped_transaction(engine, schema) as conn:
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": f"oh-migrate:{schema}"})
        await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        before = await schema_revision(conn, schema)
        if before != goal:
            raw = await conn.get_raw_connection()
            # Simple-query protocol: the whole script in one round trip, inside this transaction.
            await raw.driver_connection.execute(upgrade_sql(kind, before, goal))  # type: ignore[union-attr]
        return before


async def upgrade_global(engine: AsyncEngine) -> None:
    await upgrade_schema(engine, "global", GLOBAL)


@dataclass(slots=True)
class Outcome:
    code: str
    server: str
    before: str | None
    after: str | None
    status: Literal["upgraded", "skipped", "failed"]
    seconds: float = 0.0
    error: str | None = None


async def migrate_territories(
    router: Router,
    codes: set[str] | None = None,
    *,
    target: str = "head",
    concurrency: int = 8,
    on_total: Callable[[int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Upgrade every territory (or ``codes``) to ``target``; failures don't stop the rest.

    Revisions are read with a few statements per server (``Router.across``); up-to-date
    schemas are skipped without opening a transaction on them."""
    goal = head("territory") if target == "head" else target
    placements = [p for p in await router.placements() if codes is None or p.code in codes]
    if on_total:
        on_total(len(placements))
    revisions = await router.across(
        "alembic_version", "(SELECT version_num FROM {table} LIMIT 1)", codes=codes, include_provisioning=True
    )
    down = set(revisions.unavailable)
    outcomes: list[Outcome] = []
    todo: list[Outcome] = []
    for p in placements:
        if p.code in down:
            error = f"server unavailable: {revisions.errors.get(p.server_alias, '')}"
            outcomes.append(Outcome(p.code, p.server_alias, None, None, "failed", error=error))
            continue
        rev = revisions.values.get(p.code)
        item = Outcome(p.code, p.server_alias, rev, rev, "skipped")
        (outcomes if rev == goal else todo).append(item)
    if on_outcome:
        for item in outcomes:
            on_outcome(item)

    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(item: Outcome) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                await upgrade_schema(await router.engine(item.server), "territory", schema_for(item.code), goal)
                item.status, item.after = "upgraded", goal
            except Exception as exc:
                item.status, item.error = "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            item.seconds = time.perf_counter() - started
            if on_outcome:
                on_outcome(item)

    await asyncio.gather(*(one(item) for item in todo))
    outcomes.extend(todo)
    return sorted(outcomes, key=lambda o: o.code)
