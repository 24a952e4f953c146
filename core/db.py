"""Database engines: one pool per database SERVER; the territory is named in the SQL.

Territory tables are declared on :data:`territory_metadata` without a schema; the router
renders them into the territory's schema with ``schema_translate_map`` (see
``core.routing``). :func:`scoped_transaction` (``SET LOCAL search_path``) is for
migrations only, whose SQL Alembic renders without schema names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from operator import itemgetter
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from core.settings import Settings

S = TypeVar("S", bound=msgspec.Struct)

territory_metadata = sa.MetaData()
# Tables of the registry's own schema (registry, identity), on the registry's server.
global_metadata = sa.MetaData(schema="global")


def to_async_url(dsn: str) -> sa.URL:
    """A libpq-style URL (``postgresql://user:pw@host:port/db``) as an asyncpg SQLAlchemy URL."""
    url = make_url(dsn)
    if url.get_backend_name() != "postgresql":
        raise ValueError("only postgresql:// URLs are supported")
    return url.set(drivername="postgresql+asyncpg")


def create_server_engine(dsn: str, settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    connect_args: dict[str, object] = {
        "timeout": settings.db.connect_timeout,
        "server_settings": {
            "statement_timeout": str(settings.db.statement_timeout_ms),
            "application_name": "oneheart",
        },
    }
    if settings.db.behind_pooler:
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
    else:
        connect_args["prepared_statement_cache_size"] = settings.db.statement_cache
    return create_async_engine(
        to_async_url(dsn),
        pool_size=pool_size or settings.db.pool_size,
        max_overflow=settings.db.max_overflow,
        pool_timeout=settings.db.connect_timeout,
        pool_recycle=1800,
        connect_args=connect_args,
    )


async def scope(conn: AsyncConnection, schema: str) -> None:
    """Point this transaction at ``schema`` (already validated) with ``public`` behind it."""
    await conn.execute(sa.text("SELECT set_config('search_path', :path, true)"), {"path": f'"{schema}", public'})


@asynccontextmanager
async def scoped_transaction(engine: AsyncEngine, schema: str) -> AsyncIterator[AsyncConnection]:
    async with engine.begin() as conn:
        await scope(conn, schema)
        yield conn


def row_to(cls: type[S], row: Any, **given: Any) -> S:
    """A msgspec struct from a result row, each field from the column of its name (the row's
    other columns are ignored; ``given`` fields are not read from it). Never by position: a
    column added to a query cannot shift the fields."""
    m = row._mapping
    return cls(**{f: m[f] for f in cls.__struct_fields__ if f not in given}, **given)


def rows_to(cls: type[S], result: Any) -> list[S]:
    """:func:`row_to` for every row of a result: the columns are matched to the fields by name
    once, then each struct is built from its row in that order (a list page stays cheap)."""
    keys = list(result.keys())
    order = [keys.index(f) for f in cls.__struct_fields__]
    if order == list(range(len(order))):  # the columns already come in the fields' order
        return [cls(*row[: len(order)]) for row in result]
    pick = itemgetter(*order)
    return [cls(*pick(row)) for row in result] if len(order) > 1 else [cls(row[order[0]]) for row in result]
