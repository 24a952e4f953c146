"""Per-territory policy: named JSON documents in the territory's ``policies`` table.

Each domain declares its policy as a msgspec Struct with defaults; what a territory stored is
laid over those defaults, so a new field needs no data migration. A change through
:func:`apply_policy` is audited in the registry (``global.audit_log``, action ``policy.set``,
with the policy as it was and as it is).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import territory_metadata
from core.errors import InvalidInput
from territories.registry import audit

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
    return (await _write_policy(conn, key, kind, changes))[1]


async def _write_policy(conn: AsyncConnection, key: str, kind: type[P], changes: dict[str, Any]) -> tuple[Any, P]:
    """The policy before (as builtins) and after ``changes``, stored."""
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
    return current, policy


async def apply_policy(
    router: Router, code: str, key: str, kind: type[P], changes: dict[str, Any] | None, *, actor: str
) -> P:
    """Territory ``code``'s ``key`` policy after ``changes`` (``None`` or empty: just read it).

    A change that alters the policy is audited for ``actor`` with the policy before and after.
    The audit row commits (in the registry) just before the territory's change does: a
    failure in between leaves a record of a change that did not happen, never a change
    without a record."""
    territory = await router.lookup(code)
    if not changes:
        async with router.read(territory) as conn:
            return await read_policy(conn, key, kind)
    async with router.transaction(territory) as conn:
        before, policy = await _write_policy(conn, key, kind, changes)
        after = msgspec.to_builtins(policy)
        if after != before:
            async with router.registry_transaction() as registry:
                await audit(registry, actor, "policy.set", code, policy=key, before=before, after=after)
    return policy
