"""Identity administration used by the CLI: territory providers, app clients, roles."""

from __future__ import annotations

import re
import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from core.auth import GLOBAL_SCOPE
from core.codes import check_code
from core.errors import InvalidInput, NotFound
from core.routing import Router
from core.secrets import store_secret
from core.urls import check_redirect_uri
from services.auth.broker import SECRETS
from services.auth.models import ROLES, app_clients, identity_providers, role_assignments, users


async def set_provider(
    router: Router, code: str, issuer: str, client_id: str, secret: str | None, scopes: list[str]
) -> None:
    check_code(code)
    await router.lookup(code)
    if not issuer.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise InvalidInput("issuer must be an https URL (http only on loopback)")
    if "openid" not in scopes:
        raise InvalidInput("scopes must include openid")
    ref = code if secret else None
    if secret:
        store_secret(router.settings, SECRETS, code, secret)
    async with router.registry_transaction() as conn:
        values = {"issuer": issuer.rstrip("/"), "client_id": client_id, "client_secret_ref": ref, "scopes": scopes}
        await conn.execute(
            insert(identity_providers)
            .values(territory=code, **values)
            .on_conflict_do_update(index_elements=["territory"], set_=values)
        )


async def add_app(router: Router, client_id: str, name: str, redirect_uris: list[str]) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,63}", client_id):
        raise InvalidInput("client id: 2-64 of a-z 0-9 . _ -")
    if not redirect_uris:
        raise InvalidInput("give at least one --redirect-uri")
    uris = [check_redirect_uri(u, public=True) for u in redirect_uris]  # apps hold no secret
    async with router.registry_transaction() as conn:
        await conn.execute(
            insert(app_clients)
            .values(client_id=client_id, name=name, redirect_uris=uris)
            .on_conflict_do_update(index_elements=["client_id"], set_={"name": name, "redirect_uris": uris})
        )


async def grant(router: Router, user_id: uuid.UUID, role: str, territory: str | None, *, by: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    scope = check_code(territory) if territory else GLOBAL_SCOPE
    if territory:
        await router.lookup(territory)
    async with router.registry_transaction() as conn:
        if (await conn.execute(sa.select(users.c.id).where(users.c.id == user_id))).first() is None:
            raise NotFound(f"no person with id {user_id}")
        await conn.execute(
            insert(role_assignments)
            .values(user_id=user_id, scope=scope, role=role, granted_by=by)
            .on_conflict_do_nothing()
        )


async def revoke_role(router: Router, user_id: uuid.UUID, role: str, territory: str | None) -> bool:
    scope = check_code(territory) if territory else GLOBAL_SCOPE
    async with router.registry_transaction() as conn:
        result = await conn.execute(
            role_assignments.delete().where(
                role_assignments.c.user_id == user_id,
                role_assignments.c.scope == scope,
                role_assignments.c.role == role,
            )
        )
    return bool(result.rowcount)
