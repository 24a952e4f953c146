"""The territory registry: database servers and territories, used by the CLI and the API.

Every change writes an audit row and a registry event (``oh.global.<type>``) in the same
transaction. Writes are idempotent: repeating an add/create with the same arguments is a
no-op that returns the existing record; different arguments for an existing key is 409.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import Conflict, InvalidInput, NotFound, Unavailable
from core.events.outbox import emit
from core.pagination import decode_cursor, encode_cursor
from territories import models
from territories.codes import GLOBAL, check_alias, check_code, schema_for
from territories.migrate import upgrade_schema
from territories.routing import Router, Territory
from territories.servers import full_dsn, split_password, store_password

T, S = models.territories, models.db_servers


async def _audit(conn: AsyncConnection, actor: str, action: str, target: str, **details: Any) -> None:
    await conn.execute(models.audit_log.insert().values(actor=actor, action=action, target=target, details=details))


def server_view(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {"alias": m["alias"], "dsn": m["dsn"], "region": m["region"], "status": m["status"]}


async def add_server(router: Router, alias: str, dsn: str, region: str, *, actor: str) -> dict[str, Any]:
    check_alias(alias)
    if not region or len(region) > 64:
        raise InvalidInput("region must be 1-64 characters")
    bare, password = split_password(dsn)
    async with router.transaction(GLOBAL) as conn:
        existing = (await conn.execute(sa.select(S).where(S.c.alias == alias))).first()
        if existing is not None:
            if existing.dsn == bare and existing.region == region:
                return server_view(existing)
            raise Conflict(f"server {alias!r} already exists with other settings")
    if password:
        store_password(router.settings, alias, password)
    try:
        probe = await asyncpg.connect(
            full_dsn(router.settings, alias, bare), timeout=router.settings.db_connect_timeout
        )
        await probe.close()
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise Unavailable(f"cannot connect to server {alias!r}: {type(exc).__name__}: {exc}") from None
    async with router.transaction(GLOBAL) as conn:
        row = (await conn.execute(S.insert().values(alias=alias, dsn=bare, region=region).returning(S))).one()
        await _audit(conn, actor, "server.add", alias, region=region)
        await emit(conn, GLOBAL, "server.added", {"alias": alias, "region": region, "actor": actor})
    return server_view(row)


async def list_servers(router: Router) -> list[dict[str, Any]]:
    async with router.transaction(GLOBAL) as conn:
        return [server_view(r) for r in await conn.execute(sa.select(S).order_by(S.c.alias))]


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


async def get_territory(router: Router, code: str) -> Territory:
    check_code(code)
    async with router.transaction(GLOBAL) as conn:
        row = (await conn.execute(sa.select(T).where(T.c.code == code))).first()
    if row is None:
        raise NotFound(f"unknown territory {code!r}")
    return Territory.from_row(row)


async def create_territory(
    router: Router,
    code: str,
    name: str,
    server: str,
    *,
    actor: str,
    residency_region: str | None = None,
    matrix_homeserver: str | None = None,
    target: str = "head",
) -> tuple[Territory, bool]:
    """Register and provision a territory; returns it and whether anything was created.

    A territory left in ``provisioning`` by an earlier failure is provisioned again.
    """
    check_code(code)
    check_alias(server)
    if not name or len(name) > 120:
        raise InvalidInput("name must be 1-120 characters")
    async with router.transaction(GLOBAL) as conn:
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
            await _audit(conn, actor, "territory.create", code, server=server)
    await upgrade_schema(await router.engine(server), "territory", schema_for(code), target)
    async with router.transaction(GLOBAL) as conn:
        row = (
            await conn.execute(
                T.update().where(T.c.code == code).values(status="active", updated_at=sa.func.now()).returning(T)
            )
        ).one()
        await emit(
            conn,
            GLOBAL,
            "territory.created",
            {"code": code, "status": "active", "server_alias": server, "actor": actor},
        )
    router.invalidate(code)
    return Territory.from_row(row), True


async def set_status(router: Router, code: str, status: str, *, actor: str) -> Territory:
    """Suspend (``suspended``) or resume (``active``) a territory."""
    check_code(code)
    if status not in ("active", "suspended"):
        raise InvalidInput("status must be 'active' or 'suspended'")
    async with router.transaction(GLOBAL) as conn:
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
            await _audit(conn, actor, event, code)
            await emit(
                conn,
                GLOBAL,
                event,
                {"code": code, "status": status, "server_alias": row.server_alias, "actor": actor},
            )
    router.invalidate(code)
    return Territory.from_row(row)


async def list_territories(
    router: Router, *, limit: int, cursor: str | None = None, status: str | None = None
) -> tuple[list[Territory], str | None]:
    query = sa.select(T).order_by(T.c.code).limit(limit + 1)
    if cursor:
        query = query.where(T.c.code > decode_cursor(cursor)[0])
    if status:
        query = query.where(T.c.status == status)
    async with router.transaction(GLOBAL) as conn:
        rows = [Territory.from_row(r) for r in await conn.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].code) if more else None)
