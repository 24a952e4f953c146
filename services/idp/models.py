"""Accounts and clients of the built-in OIDC provider (``global`` schema), and their queries.

The tables are created by migration ``g0002_identity``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert

from core.db import global_metadata
from core.errors import Conflict, NotFound
from core.routing import Router

idp_accounts = sa.Table(
    "idp_accounts",
    global_metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("username", sa.Text, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

idp_clients = sa.Table(
    "idp_clients",
    global_metadata,
    sa.Column("client_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    # NULL for public clients (native and single-page apps), which must use PKCE.
    sa.Column("secret_hash", sa.Text),
    sa.Column("redirect_uris", ARRAY(sa.Text), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)


# --- accounts ---------------------------------------------------------------------------
async def add_account(
    router: Router, username: str, password_hash: str, display_name: str | None, email: str | None
) -> uuid.UUID:
    account_id = uuid.uuid4()
    async with router.registry_transaction() as conn:
        stmt = (
            insert(idp_accounts)
            .values(
                id=account_id,
                username=username,
                password_hash=password_hash,
                display_name=display_name,
                email=email,
            )
            .on_conflict_do_nothing(index_elements=["username"])
            .returning(idp_accounts.c.id)
        )
        if (await conn.execute(stmt)).scalar_one_or_none() is None:
            raise Conflict(f"account {username!r} already exists")
    return account_id


async def account_by_username(router: Router, username: str) -> Any | None:
    async with router.registry_read() as conn:
        return (await conn.execute(sa.select(idp_accounts).where(idp_accounts.c.username == username))).first()


async def account_by_id(router: Router, account_id: uuid.UUID) -> Any | None:
    async with router.registry_read() as conn:
        return (await conn.execute(sa.select(idp_accounts).where(idp_accounts.c.id == account_id))).first()


async def list_accounts(router: Router) -> list[Any]:
    cols = [c for c in idp_accounts.c if c.name != "password_hash"]
    async with router.registry_read() as conn:
        return list((await conn.execute(sa.select(*cols).order_by(idp_accounts.c.username))).all())


async def set_disabled(router: Router, username: str, disabled: bool) -> None:
    async with router.registry_transaction() as conn:
        stmt = (
            sa.update(idp_accounts)
            .where(idp_accounts.c.username == username)
            .values(disabled=disabled)
            .returning(idp_accounts.c.id)
        )
        if (await conn.execute(stmt)).first() is None:
            raise NotFound(f"unknown account {username!r}")


async def update_password_hash(router: Router, account_id: uuid.UUID, old: str, new: str) -> None:
    """Replace a hash made with older parameters (only if nobody changed it meanwhile)."""
    async with router.registry_transaction() as conn:
        await conn.execute(
            sa.update(idp_accounts)
            .where(idp_accounts.c.id == account_id, idp_accounts.c.password_hash == old)
            .values(password_hash=new)
        )


# --- clients ----------------------------------------------------------------------------
async def add_client(
    router: Router, client_id: str, name: str, secret_hash: str | None, redirect_uris: list[str]
) -> None:
    async with router.registry_transaction() as conn:
        stmt = (
            insert(idp_clients)
            .values(client_id=client_id, name=name, secret_hash=secret_hash, redirect_uris=redirect_uris)
            .on_conflict_do_nothing(index_elements=["client_id"])
            .returning(idp_clients.c.client_id)
        )
        if (await conn.execute(stmt)).scalar_one_or_none() is None:
            raise Conflict(f"client {client_id!r} already exists")


async def client_by_id(router: Router, client_id: str) -> Any | None:
    async with router.registry_read() as conn:
        return (await conn.execute(sa.select(idp_clients).where(idp_clients.c.client_id == client_id))).first()


async def list_clients(router: Router) -> list[dict[str, Any]]:
    async with router.registry_read() as conn:
        result = await conn.execute(sa.select(idp_clients).order_by(idp_clients.c.client_id))
        return [
            {
                "client_id": r.client_id,
                "name": r.name,
                "type": "confidential" if r.secret_hash else "public",
                "redirect_uris": list(r.redirect_uris),
                "created_at": _iso(r.created_at),
            }
            for r in result
        ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
