"""The node as an OpenID Connect relying party of each territory's identity provider.

Flow (authorization code + PKCE on both legs):
1. An app (web or mobile) sends the player to ``/api/auth/login`` with its own client id,
   exact redirect URI, state and S256 code challenge.
2. The node stores a login transaction in Redis and redirects to the territory's provider
   with its own state, nonce and PKCE challenge.
3. The provider sends the player to ``/api/auth/callback``; the node checks the state,
   redeems the code with its verifier, verifies the ID token (signature against the
   provider's JWKS, iss, aud/azp, exp, iat, nonce; never ``alg: none`` or HMAC), links the
   person (``global.users``, unique issuer + subject) and the territory's player, and sends
   the app a one-time code.
4. The app redeems that code with its PKCE verifier at ``/api/auth/token`` for node tokens.

Also here: refresh tokens (opaque, stored as a SHA-256 hash, rotated on every use; presenting
one that was already rotated revokes its whole family, the thief and the owner both lose it),
roles, and the identity administration the CLI uses (providers, app clients, role grants,
each audited in ``global.audit_log``). Access tokens themselves are ``core.auth``'s.

Redis keys: ``oh:login:<state>`` (a started login, ``login_ttl``) and ``oh:appcode:<code>``
(the one-time code for the app, ``auth_code_ttl``), both named by :func:`_key`.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
import structlog
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import GLOBAL_SCOPE, Identity, issue_access
from core.codes import check_code
from core.errors import AppError, InvalidInput, NotFound, Unauthorized, Unavailable
from core.keys import KeyRing, verify_with_jwks
from core.routing import Router
from core.secrets import read_secret, store_secret
from core.settings import Settings
from core.urls import check_redirect_uri, with_query
from services.auth.dto import TokenPair
from services.auth.models import ROLES, app_clients, identity_providers, refresh_tokens, role_assignments, users
from services.players.service import ensure_player, language_of
from territories.registry import audit

log = structlog.get_logger(__name__)

ID_TOKEN_ALGS = ["RS256", "ES256", "PS256", "EdDSA"]
LEEWAY = 60
SECRETS = "idp_clients"


def _key(kind: str, value: str) -> str:
    """The one place this module names its Redis keys."""
    return f"oh:{kind}:{value}"


@contextmanager
def _store() -> Iterator[None]:
    """Redis errors become 503 (the login store is down), not a 500."""
    try:
        yield
    except RedisError:
        raise Unavailable("the login store (Redis) is unavailable", headers={"Retry-After": "5"}) from None


class LoginFailed(AppError):
    status, code = 400, "login_failed"


class TokenReused(Unauthorized):
    code = "refresh_token_reused"


@dataclass(frozen=True)
class Provider:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: list[str]


def callback_uri(settings: Settings) -> str:
    return f"{settings.http.public_url}/api/auth/callback"


# --- providers and app clients (registry reads) ------------------------------------------
async def provider_for(conn: AsyncConnection, settings: Settings, code: str) -> Provider:
    row = (await conn.execute(sa.select(identity_providers).where(identity_providers.c.territory == code))).first()
    if row is None:
        raise NotFound(f"territory {code!r} has no identity provider configured")
    m = row._mapping
    ref = m["client_secret_ref"]
    secret = read_secret(settings, SECRETS, ref, "IDP_SECRET") if ref else None
    return Provider(m["issuer"], m["client_id"], secret, list(m["scopes"]))


async def territories_with_login(conn: AsyncConnection) -> set[str]:
    """Codes of the territories whose players can sign in (an identity provider is configured)."""
    return set((await conn.execute(sa.select(identity_providers.c.territory))).scalars())


async def check_app_client(conn: AsyncConnection, client_id: str, redirect_uri: str) -> None:
    uris = (
        await conn.execute(sa.select(app_clients.c.redirect_uris).where(app_clients.c.client_id == client_id))
    ).scalar_one_or_none()
    if uris is None:
        raise InvalidInput(f"unknown app client {client_id!r}")
    if redirect_uri not in uris:
        raise InvalidInput("redirect_uri is not registered for this client (exact match required)")


class Discovery:
    """Provider metadata and keys, cached; keys are fetched again for an unknown key id."""

    def __init__(self, http: httpx.AsyncClient, ttl: float = 3600) -> None:
        self.http, self.ttl = http, ttl
        self._meta: dict[str, tuple[float, dict[str, Any]]] = {}
        self._keys: dict[str, tuple[float, dict[str, Any]]] = {}

    async def _get(self, url: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url, timeout=5)
            response.raise_for_status()
            return dict(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            raise Unavailable(f"identity provider unreachable: {type(exc).__name__}") from None

    async def metadata(self, issuer: str) -> dict[str, Any]:
        hit = self._meta.get(issuer)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        doc = await self._get(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
        if doc.get("issuer") != issuer:
            raise Unavailable("identity provider metadata names another issuer")
        self._meta[issuer] = (time.monotonic() + self.ttl, doc)
        return doc

    async def jwks(self, issuer: str, refresh: bool = False) -> dict[str, Any]:
        hit = self._keys.get(issuer)
        if hit and hit[0] > time.monotonic() and not refresh:
            return hit[1]
        doc = await self._get((await self.metadata(issuer))["jwks_uri"])
        self._keys[issuer] = (time.monotonic() + self.ttl, doc)
        return doc


def verify_id_token(
    token: str, jwks: dict[str, Any], *, issuer: str, client_id: str, nonce: str, now: float | None = None
) -> dict[str, Any]:
    """The claims of a valid ID token; :class:`LoginFailed` naming what is wrong otherwise."""
    try:
        claims = verify_with_jwks(token, jwks, ID_TOKEN_ALGS)
    except ValueError as exc:
        raise LoginFailed(f"ID token rejected: {exc}") from None
    now = time.time() if now is None else now
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    problems = [
        (claims.get("iss") != issuer, "wrong issuer"),
        (client_id not in audiences, "wrong audience"),
        (len(audiences) > 1 and claims.get("azp") != client_id, "wrong authorized party"),
        (not isinstance(claims.get("exp"), int) or claims["exp"] + LEEWAY < now, "expired"),
        (not isinstance(claims.get("iat"), int) or claims["iat"] - LEEWAY > now, "issued in the future"),
        (not secrets.compare_digest(str(claims.get("nonce", "")), nonce), "wrong nonce"),
        (not isinstance(claims.get("sub"), str) or not claims["sub"], "no subject"),
    ]
    for bad, reason in problems:
        if bad:
            raise LoginFailed(f"ID token rejected: {reason}")
    return claims


# --- people --------------------------------------------------------------------------------
async def link_person(router: Router, territory: str, claims: dict[str, Any]) -> uuid.UUID:
    """Create or find the person (issuer + subject) and their player in ``territory``."""
    name = str(claims.get("name") or claims.get("preferred_username") or "player")[:120]
    async with router.registry_transaction() as conn:
        user_id = (
            await conn.execute(
                insert(users)
                .values(
                    id=uuid.uuid4(),
                    issuer=claims["iss"],
                    subject=claims["sub"],
                    home_territory=territory,
                    display_name=name,
                    email=claims.get("email"),
                    last_login_at=sa.func.now(),
                )
                .on_conflict_do_update(
                    index_elements=["issuer", "subject"],
                    set_={"last_login_at": sa.func.now(), "display_name": name},
                )
                .returning(users.c.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(role_assignments)
            .values(user_id=user_id, scope=territory, role="player", granted_by="login")
            .on_conflict_do_nothing()
        )
    async with router.transaction(await router.lookup(territory)) as conn:
        await ensure_player(conn, user_id, name)
    return user_id


async def roles_of(conn: AsyncConnection, user_id: uuid.UUID) -> dict[str, list[str]]:
    rows = await conn.execute(
        sa.select(role_assignments.c.scope, role_assignments.c.role).where(role_assignments.c.user_id == user_id)
    )
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(row.scope, []).append(row.role)
    return {k: sorted(v) for k, v in out.items()}


async def identity_for(conn: AsyncConnection, user_id: uuid.UUID) -> Identity:
    """The identity to put in a fresh access token: home territory and current roles."""
    home = (await conn.execute(sa.select(users.c.home_territory).where(users.c.id == user_id))).scalar_one()
    return Identity(user_id, home, await roles_of(conn, user_id))


# --- refresh tokens ------------------------------------------------------------------------
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


async def rotate_refresh(conn: AsyncConnection, settings: Settings, token: str) -> tuple[uuid.UUID, str, str]:
    """Trade a refresh token for a new one: ``(user_id, client_id, new_token)``.

    Reuse of a rotated token revokes the family and raises :class:`TokenReused`; the caller
    must commit that revocation even though it answers 401 (see the controller).
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


def token_pair(access: str, refresh: str, settings: Settings) -> TokenPair:
    return TokenPair(access, "Bearer", settings.auth.access_token_ttl, refresh)


async def issue_tokens(
    conn: AsyncConnection, settings: Settings, keys: KeyRing, user_id: uuid.UUID, client_id: str
) -> TokenPair:
    """A fresh access token and the first refresh token of a new login (registry transaction)."""
    identity = await identity_for(conn, user_id)
    refresh = await issue_refresh(conn, settings, user_id, client_id)
    return token_pair(issue_access(keys, settings, identity), refresh, settings)


async def refresh_tokens_of(conn: AsyncConnection, settings: Settings, keys: KeyRing, token: str) -> TokenPair:
    """Rotate ``token``; :class:`TokenReused` after revoking its family (commit that anyway)."""
    user_id, _client, new_refresh = await rotate_refresh(conn, settings, token)
    identity = await identity_for(conn, user_id)
    return token_pair(issue_access(keys, settings, identity), new_refresh, settings)


def broker_of(state: Any) -> LoginBroker:
    """The login broker over the process's router, Redis and provider metadata cache."""
    if getattr(state, "discovery", None) is None:
        state.discovery = Discovery(state.http)
    return LoginBroker(state.router, state.redis, state.discovery, state.settings)


# --- the login broker ----------------------------------------------------------------------
class LoginBroker:
    """The relying-party side of a login: the app's request, the provider's callback, the
    app's one-time code. Holds the router (registry reads, linking the person), Redis (login
    transactions and codes), the provider discovery cache and the settings."""

    def __init__(self, router: Router, redis: Redis, discovery: Discovery, settings: Settings) -> None:
        self.router, self.redis, self.discovery, self.settings = router, redis, discovery, settings

    async def start(
        self, *, territory: str, client_id: str, redirect_uri: str, app_state: str, code_challenge: str
    ) -> str:
        """Record the login and return the provider URL to send the player to."""
        await self.router.resolve(territory)
        async with self.router.registry_read() as conn:
            await check_app_client(conn, client_id, redirect_uri)
            provider = await provider_for(conn, self.settings, territory)
        meta = await self.discovery.metadata(provider.issuer)
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        txn = {
            "territory": territory,
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "app_state": app_state,
            "app_challenge": code_challenge,
            "nonce": nonce,
            "verifier": verifier,
            "issuer": provider.issuer,
        }
        with _store():
            await self.redis.set(_key("login", state), json.dumps(txn), ex=self.settings.auth.login_ttl)
        return with_query(
            meta["authorization_endpoint"],
            {
                "response_type": "code",
                "client_id": provider.client_id,
                "redirect_uri": callback_uri(self.settings),
                "scope": " ".join(provider.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": create_s256_code_challenge(verifier),
                "code_challenge_method": "S256",
            },
        )

    async def callback(self, login_state: str, code: str | None, error: str | None) -> str:
        """Finish the login the provider sends back; the app's redirect URI with its one-time
        code (or the error). An unknown or used state is :class:`LoginFailed` (400)."""
        txn = await self._take_login(login_state)
        back = {"state": txn["app_state"]}
        if error or not code:
            return with_query(txn["redirect_uri"], {**back, "error": error or "access_denied"})
        try:
            claims = await self._redeem_provider_code(txn, code)
        except LoginFailed as exc:
            return with_query(txn["redirect_uri"], {**back, "error": "login_failed", "error_description": exc.detail})
        user_id = await link_person(self.router, txn["territory"], claims)
        return with_query(txn["redirect_uri"], {**back, "code": await self._issue_app_code(txn, user_id)})

    async def _take_login(self, state: str) -> dict[str, Any]:
        with _store():
            raw = await self.redis.getdel(_key("login", state))
        if raw is None:
            raise LoginFailed("unknown or expired login state")
        return dict(json.loads(raw))

    async def _redeem_provider_code(self, txn: dict[str, Any], code: str) -> dict[str, Any]:
        """Exchange the provider's code and verify the ID token; returns its claims."""
        async with self.router.registry_read() as conn:
            provider = await provider_for(conn, self.settings, txn["territory"])
        if provider.issuer != txn["issuer"]:
            raise LoginFailed("the territory's identity provider changed during the login")
        meta = await self.discovery.metadata(provider.issuer)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": callback_uri(self.settings),
            "code_verifier": txn["verifier"],
            "client_id": provider.client_id,
        }
        # A public client (no secret) authenticates with PKCE alone; a confidential one with Basic.
        auth = (
            httpx.BasicAuth(provider.client_id, provider.client_secret)
            if provider.client_secret
            else httpx.USE_CLIENT_DEFAULT
        )
        try:
            response = await self.discovery.http.post(meta["token_endpoint"], data=form, auth=auth, timeout=10)
        except httpx.HTTPError as exc:
            raise Unavailable(f"identity provider unreachable: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise LoginFailed(f"the identity provider refused the code ({response.status_code})")
        id_token = response.json().get("id_token")
        if not isinstance(id_token, str):
            raise LoginFailed("the identity provider returned no ID token")
        kwargs = {"issuer": provider.issuer, "client_id": provider.client_id, "nonce": txn["nonce"]}
        try:
            return verify_id_token(id_token, await self.discovery.jwks(provider.issuer), **kwargs)
        except LoginFailed as exc:
            if "invalid_key_id" not in exc.detail:
                raise
            return verify_id_token(id_token, await self.discovery.jwks(provider.issuer, refresh=True), **kwargs)

    async def _issue_app_code(self, txn: dict[str, Any], user_id: uuid.UUID) -> str:
        code = secrets.token_urlsafe(32)
        grant = {
            "user_id": str(user_id),
            "client_id": txn["client_id"],
            "redirect_uri": txn["redirect_uri"],
            "challenge": txn["app_challenge"],
        }
        with _store():
            await self.redis.set(_key("appcode", code), json.dumps(grant), ex=self.settings.auth.auth_code_ttl)
        return code

    async def language_of(self, identity: Identity) -> str | None:
        """The language in the person's profile in their home territory (None: none chosen, or
        the territory cannot be read now: the browser's language serves until it can)."""
        try:
            async with self.router.read(await self.router.resolve(identity.home)) as conn:
                return await language_of(conn, identity.user_id)
        except AppError as exc:
            log.info("profile language unavailable at sign-in", territory=identity.home, error=exc.detail)
            return None

    async def redeem_app_code(self, *, code: str, client_id: str, redirect_uri: str, verifier: str) -> uuid.UUID:
        """The person a one-time app code was issued for (once; checked against client and PKCE)."""
        with _store():
            raw = await self.redis.getdel(_key("appcode", code))
        if raw is None:
            raise LoginFailed("invalid, expired or already used code")
        grant = json.loads(raw)
        if grant["client_id"] != client_id or grant["redirect_uri"] != redirect_uri:
            raise LoginFailed("code was issued to another client or redirect_uri")
        if not verifier or not secrets.compare_digest(create_s256_code_challenge(verifier), grant["challenge"]):
            raise LoginFailed("PKCE code_verifier does not match the code_challenge")
        return uuid.UUID(grant["user_id"])


async def remember_language(state: Any, sid: str | None, lang: str | None) -> None:
    """Put ``lang`` into the browser session ``sid`` (the player app's, if any), so its pages
    switch language at once after the profile changed."""
    from services.auth.sessions import sessions_of  # sessions.py imports this module

    if sid:
        await sessions_of(state).set_language(sid, lang)


# --- administration (CLI), each change audited ---------------------------------------------
async def set_provider(
    router: Router, code: str, issuer: str, client_id: str, secret: str | None, scopes: list[str], *, actor: str
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
        # The secret itself never reaches the audit log; only whether there is one.
        changed = {k: v for k, v in values.items() if k != "client_secret_ref"}
        await audit(conn, actor, "auth.provider.set", code, **changed, client_secret=bool(secret))


async def add_app(router: Router, client_id: str, name: str, redirect_uris: list[str], *, actor: str) -> None:
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
        await audit(conn, actor, "auth.app.set", client_id, name=name, redirect_uris=uris)


async def grant(router: Router, user_id: uuid.UUID, role: str, territory: str | None, *, actor: str) -> bool:
    """Give ``user_id`` ``role`` (in ``territory``, else globally); False if they had it."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    scope = check_code(territory) if territory else GLOBAL_SCOPE
    if territory:
        await router.lookup(territory)
    async with router.registry_transaction() as conn:
        if (await conn.execute(sa.select(users.c.id).where(users.c.id == user_id))).first() is None:
            raise NotFound(f"no person with id {user_id}")
        added = (
            await conn.execute(
                insert(role_assignments)
                .values(user_id=user_id, scope=scope, role=role, granted_by=actor)
                .on_conflict_do_nothing()
                .returning(role_assignments.c.role)
            )
        ).first()
        if added is not None:
            await audit(conn, actor, "role.grant", f"user:{user_id}", role=role, scope=scope)
    return added is not None


async def revoke_role(router: Router, user_id: uuid.UUID, role: str, territory: str | None, *, actor: str) -> bool:
    """Take ``role`` away; False if the person did not have it (nothing is audited then)."""
    scope = check_code(territory) if territory else GLOBAL_SCOPE
    async with router.registry_transaction() as conn:
        result = await conn.execute(
            role_assignments.delete().where(
                role_assignments.c.user_id == user_id,
                role_assignments.c.scope == scope,
                role_assignments.c.role == role,
            )
        )
        removed = bool(result.rowcount)
        if removed:
            await audit(conn, actor, "role.revoke", f"user:{user_id}", role=role, scope=scope)
    return removed
