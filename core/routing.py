"""Route a territory to its database server and scope a connection to its schema.

One :class:`Router` per process: a connection pool per database SERVER, never per territory.
Where each territory lives comes from a :class:`Directory` (the registry,
``territories.registry.directory``); lookups are cached for ``registry.cache_ttl`` and
dropped early when a ``territory.*`` registry event arrives over NATS.

A connection the router hands out knows its territory (:func:`territory_of`), so what runs
on it (``core.events.outbox.emit``, ...) never needs the code passed a second time.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.codes import GLOBAL, check_code, quoted_schema, schema_for
from core.db import create_server_engine
from core.errors import Locked, NotFound, Unavailable
from core.settings import Settings

# The execution option that names a connection's territory (its schema's code, or "global").
TERRITORY_OPTION = "oh_territory"
_TABLE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_CHUNK = 250  # territories per UNION ALL statement in :meth:`Router.across`


class UnknownTerritory(NotFound):
    """No territory with this code in the registry (404 over HTTP)."""


@dataclass(frozen=True, slots=True)
class Territory:
    code: str
    name: str
    status: str
    server_alias: str
    schema_name: str
    residency_region: str
    matrix_homeserver: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Any) -> Territory:
        m = row._mapping
        return cls(
            code=m["code"],
            name=m["name"],
            status=m["status"],
            server_alias=m["server_alias"],
            schema_name=m["schema_name"],
            residency_region=m["residency_region"],
            matrix_homeserver=m["matrix_homeserver"],
            settings=dict(m["settings"] or {}),
        )


@dataclass(frozen=True, slots=True)
class Placement:
    code: str
    server_alias: str
    status: str


class Directory(Protocol):
    """Where territories and database servers are: the registry. Each method reads with the
    registry connection it is given."""

    async def territory(self, conn: AsyncConnection, code: str) -> Territory | None: ...

    async def server_dsn(self, conn: AsyncConnection, alias: str) -> str | None:
        """The server's DSN with its password (from the node's secrets); never log it."""
        ...

    async def servers(self, conn: AsyncConnection) -> dict[str, str]:
        """Every registered server: alias -> DSN with its password."""
        ...

    async def placements(self, conn: AsyncConnection) -> list[Placement]: ...


def territory_of(conn: AsyncConnection) -> str:
    """The territory code (or ``"global"``) of a connection from :meth:`Router.transaction`,
    :meth:`Router.read` or the registry's entry points."""
    sync = conn.sync_connection
    code = sync.get_execution_options().get(TERRITORY_OPTION) if sync is not None else None
    if not isinstance(code, str):
        raise RuntimeError("this connection was not opened by the territory router")
    return code


# What a dead or restarting server raises, at connect or on a pooled connection.
_DOWN = (
    OSError,
    TimeoutError,
    sa.exc.TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
)


def is_server_down(exc: BaseException) -> bool:
    if isinstance(exc, sa.exc.DBAPIError):
        return (
            exc.connection_invalidated
            or isinstance(exc.orig, _DOWN)
            or isinstance(getattr(exc.orig, "__cause__", None), _DOWN)
        )
    return isinstance(exc, _DOWN)


@dataclass(slots=True)
class Across:
    """What :meth:`Router.across` found: a value per territory whose schema has the table, the
    territories of servers that could not be reached, and why."""

    values: dict[str, Any] = field(default_factory=dict)
    unavailable: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # server alias -> error


class Router:
    def __init__(self, settings: Settings, directory: Directory, registry: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.directory = directory
        self.registry = registry or create_server_engine(settings.registry.dsn, settings, pool_size=5)
        self._engines: dict[str, AsyncEngine] = {}
        self._engine_lock = asyncio.Lock()
        self._cache: dict[str, tuple[float, Territory]] = {}
        self._generations: dict[str, int] = {}
        self._epoch = 0
        self._scoped: dict[tuple[str, str, bool], AsyncEngine] = {}

    # --- registry lookups -------------------------------------------------------------
    async def lookup(self, code: str) -> Territory:
        """The registry row for ``code``, cached; :class:`UnknownTerritory` if there is none."""
        check_code(code)
        hit = self._cache.get(code)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        # An invalidation that lands while we read must win over what we read: only cache the
        # row if no invalidation (of this code, or of everything) happened in between.
        generation = (self._epoch, self._generations.get(code, 0))
        async with self.registry.connect() as conn:
            territory = await self.directory.territory(conn, code)
        if territory is None:
            raise UnknownTerritory(f"unknown territory {code!r}")
        if generation == (self._epoch, self._generations.get(code, 0)):
            self._cache[code] = (now + self.settings.registry.cache_ttl, territory)
        return territory

    async def resolve(self, code: str) -> Territory:
        """An active territory; 404 if unknown, 423 if suspended or not yet provisioned."""
        territory = await self.lookup(code)
        if territory.status == "suspended":
            raise Locked(f"territory {code!r} is suspended")
        if territory.status != "active":
            raise Locked(f"territory {code!r} is not active yet ({territory.status})")
        return territory

    def invalidate(self, code: str | None = None) -> None:
        if code is None:
            self._epoch += 1
            self._cache.clear()
        else:
            self._generations[code] = self._generations.get(code, 0) + 1
            self._cache.pop(code, None)

    async def placements(self) -> list[Placement]:
        """Every territory with the server that holds it, ordered by code."""
        async with self.registry.connect() as conn:
            return await self.directory.placements(conn)

    async def servers(self) -> dict[str, str]:
        """Every registered server's DSN (with its password: never log it)."""
        async with self.registry.connect() as conn:
            return await self.directory.servers(conn)

    # --- engines (one per server) -----------------------------------------------------
    async def engine(self, alias: str) -> AsyncEngine:
        engine = self._engines.get(alias)
        if engine is not None:
            return engine
        async with self._engine_lock:
            if alias not in self._engines:
                async with self.registry.connect() as conn:
                    dsn = await self.directory.server_dsn(conn, alias)
                if dsn is None:
                    raise NotFound(f"unknown database server {alias!r}")
                self._engines[alias] = create_server_engine(dsn, self.settings)
            return self._engines[alias]

    async def server_engines(self) -> dict[str, AsyncEngine]:
        """An engine for every registered server."""
        return {alias: await self.engine(alias) for alias in await self.servers()}

    async def drop_engine(self, alias: str) -> None:
        engine = self._engines.pop(alias, None)
        self._scoped = {k: v for k, v in self._scoped.items() if k[0] != alias}
        if engine is not None:
            await engine.dispose()

    # --- connections ------------------------------------------------------------------
    @asynccontextmanager
    async def transaction(self, territory: Territory, *, read_only: bool = False) -> AsyncIterator[AsyncConnection]:
        """A connection on the territory's server whose SQL names the territory's schema.

        Tables without a schema are rendered as ``"territory_<code>".table`` through
        SQLAlchemy's ``schema_translate_map``: no session state (search_path) is set, so
        nothing can carry over to the next user of a pooled connection, even behind a
        transaction-mode PgBouncer. ``read_only`` runs each statement on its own
        (autocommit), one round trip per query; otherwise everything commits together.
        A server that is down gives :class:`Unavailable` (503 with Retry-After); other
        territories are unaffected.
        """
        engine = await self.engine(territory.server_alias)
        async with self._connect(engine, territory.server_alias, territory.schema_name, territory.code, read_only) as c:
            yield c

    def read(self, territory: Territory) -> Any:
        """Shorthand for a read-only :meth:`transaction`."""
        return self.transaction(territory, read_only=True)

    def registry_transaction(self, *, read_only: bool = False) -> Any:
        """A connection to the registry's own schema (``global``) on the registry's server;
        events emitted on it are registry events (``oh.global.<type>``)."""
        return self._connect(self.registry, "registry", GLOBAL, GLOBAL, read_only)

    def registry_read(self) -> Any:
        return self.registry_transaction(read_only=True)

    @asynccontextmanager
    async def _connect(
        self, engine: AsyncEngine, alias: str, schema: str, code: str, read_only: bool
    ) -> AsyncIterator[AsyncConnection]:
        scoped = self._scoped.get((alias, schema, read_only))
        if scoped is None:
            # Engines made by execution_options share their parent's pool: still one per server.
            options: dict[str, Any] = {"schema_translate_map": {None: schema}, TERRITORY_OPTION: code}
            if read_only:
                options["isolation_level"] = "AUTOCOMMIT"
            scoped = self._scoped[(alias, schema, read_only)] = engine.execution_options(**options)
        try:
            async with scoped.connect() as conn:
                if read_only:
                    yield conn
                else:
                    async with conn.begin():
                        yield conn
        except Exception as exc:
            if is_server_down(exc):
                raise Unavailable(
                    f"database server {alias!r} is unavailable",
                    headers={"Retry-After": str(self.settings.db.retry_after_seconds)},
                ) from exc
            raise

    # --- many territories at once -----------------------------------------------------
    async def across(
        self,
        table: str,
        value_sql: str,
        *,
        params: dict[str, Any] | None = None,
        codes: Iterable[str] | None = None,
        include_provisioning: bool = False,
    ) -> Across:
        """One value per territory, read with a few statements per SERVER (not per territory).

        ``value_sql`` is a scalar SQL expression in which ``{table}`` stands for the territory's
        ``table`` (e.g. ``"(SELECT tokens FROM {table} WHERE account = :account)"``); it is ours,
        never user input, and ``params`` are bound. Territories whose schema lacks the table
        (still being provisioned) are left out. Servers run in parallel; a server that is down
        puts its territories in ``unavailable`` instead of failing the others.
        """
        if not _TABLE.fullmatch(table):
            raise ValueError(f"not a table name: {table!r}")
        wanted = None if codes is None else set(codes)
        by_server: dict[str, list[str]] = defaultdict(list)
        for p in await self.placements():
            if (wanted is None or p.code in wanted) and (include_provisioning or p.status != "provisioning"):
                by_server[p.server_alias].append(p.code)
        result = Across()

        async def on(alias: str, server_codes: list[str]) -> None:
            try:
                result.values.update(await self._across_server(alias, server_codes, table, value_sql, params or {}))
            except Exception as exc:
                result.unavailable.extend(server_codes)
                result.errors[alias] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                if not is_server_down(exc) and not isinstance(exc, NotFound | Unavailable):
                    raise

        await asyncio.gather(*(on(alias, found) for alias, found in by_server.items()))
        result.unavailable.sort()
        return result

    async def _across_server(
        self, alias: str, codes: list[str], table: str, value_sql: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        engine = await self.engine(alias)
        async with engine.connect() as conn:
            present = {
                r[0]
                for r in await conn.execute(
                    sa.text(
                        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.relname = :table AND n.nspname = ANY(:schemas)"
                    ),
                    {"table": table, "schemas": [schema_for(c) for c in codes]},
                )
            }
            ready = [c for c in codes if schema_for(c) in present]
            for i in range(0, len(ready), _CHUNK):
                # Identifiers come from checked codes (quoted_schema checks again).
                union = " UNION ALL ".join(
                    f"SELECT '{c}', {value_sql.format(table=f'{quoted_schema(c)}.{table}')}"
                    for c in ready[i : i + _CHUNK]
                )
                for code, value in await conn.execute(sa.text(union), params):
                    out[code] = value
        return out

    async def close(self) -> None:
        for engine in self._engines.values():
            await engine.dispose()
        self._engines.clear()
        await self.registry.dispose()
