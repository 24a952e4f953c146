"""Route a territory to its database server and scope a transaction to its schema.

One :class:`Router` per process. Registry lookups are cached for ``registry_cache_ttl`` and
dropped early when a ``territory.*`` registry event arrives over NATS.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db import create_server_engine
from core.errors import Locked, NotFound, Unavailable
from core.settings import Settings
from territories import models
from territories.codes import GLOBAL, check_code
from territories.servers import full_dsn


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


class Router:
    def __init__(self, settings: Settings, registry: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.registry = registry or create_server_engine(settings.registry_dsn, settings, pool_size=5)
        self._engines: dict[str, AsyncEngine] = {}
        self._engine_lock = asyncio.Lock()
        self._cache: dict[str, tuple[float, Territory]] = {}
        self._generations: dict[str, int] = {}
        self._epoch = 0
        self._scoped: dict[tuple[str, str, bool], AsyncEngine] = {}

    # --- registry lookups -------------------------------------------------------------
    async def lookup(self, code: str) -> Territory:
        """The registry row for ``code``, cached; :class:`NotFound` if there is none."""
        check_code(code)
        hit = self._cache.get(code)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        # An invalidation that lands while we read must win over what we read: only cache the
        # row if no invalidation (of this code, or of everything) happened in between.
        generation = (self._epoch, self._generations.get(code, 0))
        territory = await self._fetch(code)
        if generation == (self._epoch, self._generations.get(code, 0)):
            self._cache[code] = (now + self.settings.registry_cache_ttl, territory)
        return territory

    async def _fetch(self, code: str) -> Territory:
        async with self.registry.connect() as conn:
            row = (await conn.execute(sa.select(models.territories).where(models.territories.c.code == code))).first()
        if row is None:
            raise UnknownTerritory(f"unknown territory {code!r}")
        return Territory.from_row(row)

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

    # --- engines (one per server) -----------------------------------------------------
    async def engine(self, alias: str) -> AsyncEngine:
        engine = self._engines.get(alias)
        if engine is not None:
            return engine
        async with self._engine_lock:
            if alias not in self._engines:
                async with self.registry.connect() as conn:
                    dsn = (
                        await conn.execute(sa.select(models.db_servers.c.dsn).where(models.db_servers.c.alias == alias))
                    ).scalar_one_or_none()
                if dsn is None:
                    raise NotFound(f"unknown database server {alias!r}")
                self._engines[alias] = create_server_engine(full_dsn(self.settings, alias, dsn), self.settings)
            return self._engines[alias]

    async def server_engines(self) -> dict[str, AsyncEngine]:
        """An engine for every registered server."""
        async with self.registry.connect() as conn:
            aliases = [r[0] for r in await conn.execute(sa.select(models.db_servers.c.alias))]
        return {alias: await self.engine(alias) for alias in aliases}

    async def drop_engine(self, alias: str) -> None:
        engine = self._engines.pop(alias, None)
        self._scoped = {k: v for k, v in self._scoped.items() if k[0] != alias}
        if engine is not None:
            await engine.dispose()

    # --- transactions -----------------------------------------------------------------
    @asynccontextmanager
    async def transaction(
        self, territory: Territory | str, *, read_only: bool = False
    ) -> AsyncIterator[AsyncConnection]:
        """A connection on the territory's server whose SQL names the territory's schema.

        Tables without a schema are rendered as ``"territory_<code>".table`` through
        SQLAlchemy's ``schema_translate_map``: no session state (search_path) is set, so
        nothing can carry over to the next user of a pooled connection, even behind a
        transaction-mode PgBouncer. ``read_only`` runs each statement on its own
        (autocommit), one round trip per query; otherwise everything commits together.
        ``"global"`` means the registry's own schema. A server that is down gives
        :class:`Unavailable` (503 with Retry-After); other territories are unaffected.
        """
        if isinstance(territory, str) and territory == GLOBAL:
            engine, schema, alias = self.registry, GLOBAL, "registry"
        else:
            t = territory if isinstance(territory, Territory) else await self.lookup(territory)
            engine, schema, alias = await self.engine(t.server_alias), t.schema_name, t.server_alias
        scoped = self._scoped.get((alias, schema, read_only))
        if scoped is None:
            # Engines made by execution_options share their parent's pool: still one per server.
            options: dict[str, Any] = {"schema_translate_map": {None: schema}}
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
                    headers={"Retry-After": str(self.settings.retry_after_seconds)},
                ) from exc
            raise

    def read(self, territory: Territory | str) -> Any:
        """Shorthand for a read-only :meth:`transaction`."""
        return self.transaction(territory, read_only=True)

    async def close(self) -> None:
        for engine in self._engines.values():
            await engine.dispose()
        self._engines.clear()
        await self.registry.dispose()
