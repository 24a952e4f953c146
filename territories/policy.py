"""Per-territory policy: named JSON documents in the territory's ``policies`` table.

Each domain declares its policy as a msgspec Struct with defaults; what a territory stored is
laid over those defaults, so a new field needs no data migration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import territory_metadata
from core.errors import InvalidInput

if TYPE_CHECKING:
    from core.routing import Router

policies = sa.Table(
    "policies",
    territory_metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", JSONB, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

P = TypeVar("P", bound=msgspec.Struct)


def stored_policy(key: str) -> sa.ScalarSelect[Any]:
    """The stored document for ``key`` as a scalar subquery (NULL when none), to read it along
    with other rows in one round trip; ``policy_from`` turns it into the policy."""
    return sa.select(policies.c.value).where(policies.c.key == key).scalar_subquery()


def policy_from(stored: dict[str, Any] | None, kind: type[P]) -> P:
    return msgspec.convert({**msgspec.to_builtins(kind()), **(stored or {})}, kind)


async def read_policy(conn: AsyncConnection, key: str, kind: type[P]) -> P:
    stored = (await conn.execute(sa.select(policies.c.value).where(policies.c.key == key))).scalar_one_or_none()
    return policy_from(stored, kind)


async def write_policy(conn: AsyncConnection, key: str, kind: type[P], changes: dict[str, Any]) -> P:
    """Apply ``changes`` (validated against ``kind``) over the current policy and store it."""
    current = msgspec.to_builtins(await read_policy(conn, key, kind))
    try:
        policy = msgspec.convert({**current, **changes}, kind)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"invalid {key} policy: {exc}") from None
    value = msgspec.to_builtins(policy)
    await conn.execute(
        insert(policies)
        .values(key=key, value=value)
        .on_conflict_do_update(index_elements=[policies.c.key], set_={"value": value, "updated_at": sa.func.now()})
    )
    return policy


async def apply_policy(router: Router, code: str, key: str, kind: type[P], changes: dict[str, Any] | None) -> P:
    """Territory ``code``'s ``key`` policy after ``changes`` (``None`` or empty: just read it)."""
    if not changes:
        async with router.read(await router.lookup(code)) as conn:
            return await read_policy(conn, key, kind)
    async with router.transaction(await router.lookup(code)) as conn:
        return await write_policy(conn, key, kind, changes)
