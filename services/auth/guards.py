"""Route guards that need the identity domain's own tables."""

from __future__ import annotations

import hmac
import time
from typing import Any

import sqlalchemy as sa
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from core.auth import bearer_token, identity_of, require_role
from core.errors import Unauthorized
from services.auth.models import role_assignments

BOOTSTRAP_ACTOR = "admin-token"


async def _admins_exist(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    state = connection.app.state
    cached = getattr(state, "admins_exist_until", 0.0)
    if cached > time.monotonic():
        return True
    async with state.router.registry_read() as conn:
        exists = bool(
            (await conn.execute(sa.select(sa.exists().where(role_assignments.c.role == "global_admin")))).scalar()
        )
    if exists:  # once there is an admin there always is one: remember for a while
        state.admins_exist_until = time.monotonic() + 30
    return exists


async def global_admin(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Global admins only. The bootstrap ``OH_ADMIN_TOKEN`` counts only until the first global
    admin exists (``oneheart auth grant USER_ID global_admin``). Records who acts
    (``connection.state.actor``: ``user:<id>`` or ``admin-token``) for the audit log."""
    token = bearer_token(connection)
    expected = connection.app.state.settings.auth.admin_token
    if token is not None and expected is not None and token.count(".") != 2:
        if not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
            raise Unauthorized("a global admin bearer token is required")
        if await _admins_exist(connection):
            raise Unauthorized("the bootstrap admin token is retired: a global admin exists; sign in instead")
        connection.state.actor = BOOTSTRAP_ACTOR
        return
    identity = identity_of(connection)
    if identity is None:
        raise Unauthorized("a global admin bearer token is required")
    require_role(identity, "global_admin")
    connection.state.actor = f"user:{identity.user_id}"
