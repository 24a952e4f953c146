"""Refresh tokens and roles (access tokens are in ``core.auth``).

- Refresh token: opaque, stored as a SHA-256 hash, rotated on every use; presenting one that
  was already rotated revokes its whole family (the thief and the owner both lose it).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.errors import Unauthorized
from core.settings import Settings
from services.auth.models import refresh_tokens, role_assignments, users


async def roles_of(conn: AsyncConnection, user_id: uuid.UUID) -> dict[str, list[str]]:
    rows = await conn.execute(
        sa.select(role_assignments.c.scope, role_assignments.c.role).where(role_assignments.c.user_id == user_id)
    )
    out: dict[str, list[str]] = {}
    for scope, role in rows:
        out.setdefault(scope, []).append(role)
    return {k: sorted(v) for k, v in out.items()}


async def identity_for(conn: AsyncConnection, user_id: uuid.UUID) -> Identity:
    """The identity to put in a fresh access token: home territory and current roles."""
    home = (await conn.execute(sa.select(users.c.home_territory).where(users.c.id == user_id))).scalar_one()
    return Identity(user_id, home, await roles_of(conn, user_id))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_refresh(
    conn: AsyncConnection, settings: Settings, user_id: uuid.UUID, client_id: str, family_id: uuid.UUID | None = None
) -> str:
    token = secrets.token_urlsafe(32)
    await conn.execute(
        refresh_tokens.insert().values(
            id=uuid.uuid4(),
            family_id=family_id or uuid.uuid4(),
            user_id=user_id,
            client_id=client_id,
            token_hash=_hash(token),
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.auth.refresh_token_ttl),
        )
    )
    return token


class TokenReused(Unauthorized):
    code = "refresh_token_reused"


async def rotate_refresh(conn: AsyncConnection, settings: Settings, token: str) -> tuple[uuid.UUID, str, str]:
    """Trade a refresh token for a new one: ``(user_id, client_id, new_token)``.

    Reuse of a rotated token revokes the family; the caller must commit that revocation
    even though it answers 401 (see the controller).
    """
    row = (
        await conn.execute(
            sa.select(refresh_tokens).where(refresh_tokens.c.token_hash == _hash(token)).with_for_update()
        )
    ).first()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("refresh token is not valid")
    if row.rotated_at is not None:
        await revoke_family(conn, row.family_id)
        raise TokenReused("refresh token was already used; every session of this login is revoked")
    if row.expires_at <= datetime.now(UTC):
        raise Unauthorized("refresh token expired")
    await conn.execute(refresh_tokens.update().where(refresh_tokens.c.id == row.id).values(rotated_at=sa.func.now()))
    new = await issue_refresh(conn, settings, row.user_id, row.client_id, row.family_id)
    return row.user_id, row.client_id, new


async def revoke_family(conn: AsyncConnection, family_id: uuid.UUID) -> None:
    await conn.execute(
        refresh_tokens.update()
        .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=sa.func.now())
    )


async def revoke(conn: AsyncConnection, token: str) -> bool:
    """Log out: revoke the family of ``token``; False if it was unknown."""
    family = (
        await conn.execute(sa.select(refresh_tokens.c.family_id).where(refresh_tokens.c.token_hash == _hash(token)))
    ).scalar_one_or_none()
    if family is None:
        return False
    await revoke_family(conn, family)
    return True


def token_response(access: str, refresh: str, settings: Settings) -> dict[str, Any]:
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": settings.auth.access_token_ttl,
        "refresh_token": refresh,
    }
