"""The territory registry: database servers, territories and the audit log (``global`` schema).

This module is the only one that reads or writes the registry's tables. It gives the router
its :class:`RegistryDirectory` (where each territory lives) and everyone else a
:class:`Registry`, acting for a named actor (a user id, the bootstrap token, the CLI).

Every change writes an audit row and a registry event (``oh.global.<type>``) in the same
transaction. Writes are idempotent: repeating an add/create with the same arguments is a
no-op that returns the existing record; different arguments for an existing key is 409.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.codes import check_alias, check_code, schema_for
from core.errors import Conflict, InvalidInput, NotFound, Unavailable
from core.events.outbox import emit
from core.pagination import decode_cursor, encode_cursor
from core.routing import Placement, Router, Territory
from core.settings import Settings
from territories import models
from territories.migrate import upgrade_schema
from territories.servers import full_dsn, split_password, store_password

T, S, A = models.territories, models.db_servers, models.audit_log


class RegistryDirectory:
    """Where territories and servers are, read from the registry (the router's :class:`Directory`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def territory(self, conn: AsyncConnection, code: str) -> Territory | None:
        row = (await conn.execute(sa.select(T).where(T.c.code == code))).first()
        return None if row is None else Territory.from_row(row)

    async def server_dsn(self, conn: AsyncConnection, alias: str) -> str | None:
        dsn = (await conn.execute(sa.select(S.c.dsn).where(S.c.alias == alias))).scalar_one_or_none()
        return None if dsn is None else full_dsn(self.settings, alias, dsn)

    async def servers(self, conn: AsyncConnection) -> dict[str, str]:
        rows = (await conn.execute(sa.select(S.c.alias, S.c.dsn).order_by(S.c.alias))).all()
        return {alias: full_dsn(self.settings, alias, dsn) for alias, dsn in rows}

    async def placements(self, conn: AsyncConnection) -> list[Placement]:
        rows = await conn.execute(sa.select(T.c.code, T.c.server_alias, T.c.status).order_by(T.c.code))
        return [Placement(code, alias, status) for code, alias, status in rows]


def open_router(settings: Settings) -> Router:
    """The process's router, finding territories through the registry."""
    return Router(settings, RegistryDirectory(settings))


def server_view(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {"alias": m["alias"], "dsn": m["dsn"], "region": m["region"], "status": m["status"]}


def territory_view(t: Territory) -> dict[str, Any]:
    return {
        "code": t.code,
        "name": t.name,
        "status": t.status,
        "server": t.server_alias,
        "schema": t.schema_name,
        "residency_region": t.residency_region,
        "matrix_homeserver": t.matrix_homeserver,
        "settings": t.settings,
    }


async def audit(conn: AsyncConnection, actor: str, action: str, target: str, **details: Any) -> None:
    """One audit row, in the caller's registry transaction (``Router.registry_transaction``)."""
    await conn.execute(A.insert().values(actor=actor, action=action, target=target, details=details))


class Registry:
    """Registry operations on behalf of ``actor`` (``user:<id>``, ``admin-token``, ``cli``, ...)."""

    def __init__(self, router: Router, actor: str) -> None:
        self.router, self.actor = router, actor

    async def add_server(self, alias: str, dsn: str, region: str) -> dict[str, Any]:
        router = self.router
        check_alias(alias)
        if not region or len(region) > 64:
            raise InvalidInput("region must be 1-64 characters")
        bare, password = split_password(dsn)
        async with router.registry_transaction() as conn:
            existing = (await conn.execute(sa.select(S).where(S.c.alias == alias))).first()
            if existing is not None:
                if existing.dsn == bare and existing.region == region:
                    return server_view(existing)
                raise Conflict(f"server {alias!r} already exists with other settings")
        if password:
            store_password(router.settings, alias, password)
        try:
            probe = await asyncpg.connect(
                full_dsn(router.settings, alias, bare), timeout=router.settings.db.connect_timeout
            )
            await probe.close()
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            raise Unavailable(f"cannot connect to server {alias!r}: {type(exc).__name__}: {exc}") from None
        async with router.registry_transaction() as conn:
            row = (await conn.execute(S.insert().values(alias=alias, dsn=bare, region=region).returning(S))).one()
            await audit(conn, self.actor, "server.add", alias, region=region)
            await emit(conn, "server.added", {"alias": alias, "region": region, "actor": self.actor})
        return server_view(row)

    async def list_servers(self) -> list[dict[str, Any]]:
        async with self.router.registry_read() as conn:
            return [server_view(r) for r in await conn.execute(sa.select(S).order_by(S.c.alias))]

    async def get_territory(self, code: str) -> Territory:
        check_code(code)
        async with self.router.registry_read() as conn:
            row = (await conn.execute(sa.select(T).where(T.c.code == code))).first()
        if row is None:
            raise NotFound(f"unknown territory {code!r}")
        return Territory.from_row(row)

    async def create_territory(
        self,
        code: str,
        name: str,
        server: str,
        *,
        residency_region: str | None = None,
        matrix_homeserver: str | None = None,
        target: str = "head",
    ) -> tuple[Territory, bool]:
        """Register and provision a territory; returns it and whether anything was created.

        A territory left in ``provisioning`` by an earlier failure is provisioned again.
        """
        router = self.router
        check_code(code)
        check_alias(server)
        if not name or len(name) > 120:
            raise InvalidInput("name must be 1-120 characters")
        async with router.registry_transaction() as conn:
            srv = (await conn.execute(sa.select(S).where(S.c.alias == server))).first()
            if srv is None:
                raise NotFound(f"unknown database server {server!r}")
            row = (await conn.execute(sa.select(T).where(T.c.code == code))).first()
            if row is not None and (row.server_alias != server or row.name != name):
                raise Conflict(f"territory {code!r} already exists on server {row.server_alias!r}")
            if row is not None and row.status != "provisioning":
                return Territory.from_row(row), False
            if row is None:
                await conn.execute(
                    T.insert().values(
                        code=code,
                        name=name,
                        server_alias=server,
                        schema_name=schema_for(code),
                        residency_region=residency_region or srv.region,
                        matrix_homeserver=matrix_homeserver,
                    )
                )
                await audit(conn, self.actor, "territory.create", code, server=server)
        await upgrade_schema(await router.engine(server), "territory", schema_for(code), target)
        async with router.registry_transaction() as conn:
            row = (
                await conn.execute(
                    T.update().where(T.c.code == code).values(status="active", updated_at=sa.func.now()).returning(T)
                )
            ).one()
            await emit(
                conn,
                "territory.created",
                {"code": code, "status": "active", "server_alias": server, "actor": self.actor},
            )
        router.invalidate(code)
        return Territory.from_row(row), True

    async def set_status(self, code: str, status: str) -> Territory:
        """Suspend (``suspended``) or resume (``active``) a territory."""
        check_code(code)
        if status not in ("active", "suspended"):
            raise InvalidInput("status must be 'active' or 'suspended'")
        async with self.router.registry_transaction() as conn:
            row = (await conn.execute(sa.select(T).where(T.c.code == code).with_for_update())).first()
            if row is None:
                raise NotFound(f"unknown territory {code!r}")
            if row.status == "provisioning":
                raise Conflict(f"territory {code!r} is still provisioning")
            if row.status != status:
                row = (
                    await conn.execute(
                        T.update().where(T.c.code == code).values(status=status, updated_at=sa.func.now()).returning(T)
                    )
                ).one()
                event = "territory.suspended" if status == "suspended" else "territory.resumed"
                await audit(conn, self.actor, event, code)
                await emit(
                    conn,
                    event,
                    {"code": code, "status": status, "server_alias": row.server_alias, "actor": self.actor},
                )
        self.router.invalidate(code)
        return Territory.from_row(row)

    async def set_homeserver(self, code: str, server_name: str | None) -> None:
        """Name the territory's Matrix homeserver (audited)."""
        check_code(code)
        async with self.router.registry_transaction() as conn:
            row = (
                await conn.execute(
                    T.update()
                    .where(T.c.code == code)
                    .values(matrix_homeserver=server_name, updated_at=sa.func.now())
                    .returning(T.c.code)
                )
            ).first()
            if row is None:
                raise NotFound(f"unknown territory {code!r}")
            await audit(conn, self.actor, "territory.homeserver", code, homeserver=server_name)
        self.router.invalidate(code)

    async def list_territories(
        self, *, limit: int, cursor: str | None = None, status: str | None = None
    ) -> tuple[list[Territory], str | None]:
        query = sa.select(T).order_by(T.c.code).limit(limit + 1)
        if cursor:
            query = query.where(T.c.code > decode_cursor(cursor)[0])
        if status:
            query = query.where(T.c.status == status)
        async with self.router.registry_read() as conn:
            rows = [Territory.from_row(r) for r in await conn.execute(query)]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (encode_cursor(rows[-1].code) if more else None)

    async def all_territories(self, status: str | None = None) -> list[Territory]:
        out: list[Territory] = []
        cursor = None
        while True:
            rows, cursor = await self.list_territories(limit=500, cursor=cursor, status=status)
            out.extend(rows)
            if cursor is None:
                return out
