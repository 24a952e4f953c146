"""Idempotent writes: an ``Idempotency-Key`` replays the first answer instead of writing twice.

The key is claimed inside the same transaction as the write, so a concurrent duplicate waits
on the row lock and then sees the stored answer; a key reused with a different request is
rejected with 422.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import msgspec
import sqlalchemy as sa
from litestar import Response
from litestar.params import HeaderParameter
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import territory_metadata
from core.errors import AppError, InvalidInput

KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(name="Idempotency-Key", required=False, max_length=255, description="Replays the first answer"),
]

idempotency_keys = sa.Table(
    "idempotency_keys",
    territory_metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("body", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)


class KeyReused(AppError):
    status, code = 422, "idempotency_key_reused"


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def claim(conn: AsyncConnection, key: str, digest: str) -> tuple[int, Any] | None:
    """Claim ``key`` for this request; returns the stored ``(status, body)`` if it was answered."""
    if not KEY_RE.fullmatch(key):
        raise InvalidInput("Idempotency-Key must be 1-255 visible ASCII characters")
    claimed = (
        await conn.execute(
            insert(idempotency_keys)
            .values(key=key, request_hash=digest, status=0, body={})
            .on_conflict_do_nothing()
            .returning(idempotency_keys.c.key)
        )
    ).first()
    if claimed is not None:
        return None
    row = (
        await conn.execute(
            sa.select(idempotency_keys.c.request_hash, idempotency_keys.c.status, idempotency_keys.c.body).where(
                idempotency_keys.c.key == key
            )
        )
    ).one()
    if row.request_hash != digest:
        raise KeyReused("this Idempotency-Key was used for a different request")
    return int(row.status), row.body


async def remember(conn: AsyncConnection, key: str, status: int, body: Any) -> None:
    await conn.execute(idempotency_keys.update().where(idempotency_keys.c.key == key).values(status=status, body=body))


T = TypeVar("T")


async def answer_once(
    conn: AsyncConnection,
    key: str | None,
    request: tuple[str, str, Any],
    status: int,
    make: Callable[[], Awaitable[T]],
) -> Response[T]:
    """Answer a write with ``make()``, or, when ``key`` was seen with the same request
    (method, path, JSON-able body), with the stored first answer. ``conn`` is the write's
    transaction, so the key and the write commit (or roll back) together."""
    if key is not None:
        stored = await claim(conn, key, request_hash(*request))
        if stored is not None:
            return Response(stored[1], status_code=stored[0])  # type: ignore[arg-type]
    result = await make()
    if key is not None:
        await remember(conn, key, status, msgspec.to_builtins(result))
    return Response(result, status_code=status)
