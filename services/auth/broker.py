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
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from redis.asyncio import Redis
from sqlalchemy.dialects.postgresql import insert

from core.errors import AppError, InvalidInput, NotFound, Unavailable
from core.keys import verify_with_jwks
from core.routing import Router
from core.secrets import read_secret
from core.settings import Settings
from core.urls import with_query
from services.auth.models import app_clients, identity_providers, role_assignments, users
from services.players.service import ensure_player

ID_TOKEN_ALGS = ["RS256", "ES256", "PS256", "EdDSA"]
LEEWAY = 60
SECRETS = "idp_clients"


class LoginFailed(AppError):
    status, code = 400, "login_failed"


@dataclass(frozen=True)
class Provider:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: list[str]


def callback_uri(settings: Settings) -> str:
    return f"{settings.http.public_url}/api/auth/callback"


async def provider_for(router: Router, code: str) -> Provider:
    async with router.registry_read() as conn:
        row = (await conn.execute(sa.select(identity_providers).where(identity_providers.c.territory == code))).first()
    if row is None:
        raise NotFound(f"territory {code!r} has no identity provider configured")
    secret = (
        read_secret(router.settings, SECRETS, row.client_secret_ref, "IDP_SECRET") if row.client_secret_ref else None
    )
    return Provider(row.issuer, row.client_id, secret, list(row.scopes))


async def check_app_client(router: Router, client_id: str, redirect_uri: str) -> None:
    async with router.registry_read() as conn:
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


async def start_login(
    router: Router,
    redis: Redis,
    discovery: Discovery,
    *,
    territory: str,
    client_id: str,
    redirect_uri: str,
    app_state: str,
    code_challenge: str,
) -> str:
    """Record the login and return the provider URL to send the player to."""
    await router.resolve(territory)
    await check_app_client(router, client_id, redirect_uri)
    provider = await provider_for(router, territory)
    meta = await discovery.metadata(provider.issuer)
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
    await redis.set(f"oh:login:{state}", json.dumps(txn), ex=router.settings.auth.login_ttl)
    return with_query(
        meta["authorization_endpoint"],
        {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": callback_uri(router.settings),
            "scope": " ".join(provider.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        },
    )


async def take_login(redis: Redis, state: str) -> dict[str, Any]:
    raw = await redis.getdel(f"oh:login:{state}")
    if raw is None:
        raise LoginFailed("unknown or expired login state")
    return dict(json.loads(raw))


async def redeem_provider_code(router: Router, discovery: Discovery, txn: dict[str, Any], code: str) -> dict[str, Any]:
    """Exchange the provider's code and verify the ID token; returns its claims."""
    provider = await provider_for(router, txn["territory"])
    if provider.issuer != txn["issuer"]:
        raise LoginFailed("the territory's identity provider changed during the login")
    meta = await discovery.metadata(provider.issuer)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": callback_uri(router.settings),
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
        response = await discovery.http.post(meta["token_endpoint"], data=form, auth=auth, timeout=10)
    except httpx.HTTPError as exc:
        raise Unavailable(f"identity provider unreachable: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise LoginFailed(f"the identity provider refused the code ({response.status_code})")
    id_token = response.json().get("id_token")
    if not isinstance(id_token, str):
        raise LoginFailed("the identity provider returned no ID token")
    kwargs = {"issuer": provider.issuer, "client_id": provider.client_id, "nonce": txn["nonce"]}
    try:
        return verify_id_token(id_token, await discovery.jwks(provider.issuer), **kwargs)
    except LoginFailed as exc:
        if "invalid_key_id" not in exc.detail:
            raise
        return verify_id_token(id_token, await discovery.jwks(provider.issuer, refresh=True), **kwargs)


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
    async with router.transaction(territory) as conn:
        await ensure_player(conn, user_id, name)
    return user_id


async def issue_app_code(redis: Redis, settings: Settings, txn: dict[str, Any], user_id: uuid.UUID) -> str:
    code = secrets.token_urlsafe(32)
    grant = {
        "user_id": str(user_id),
        "client_id": txn["client_id"],
        "redirect_uri": txn["redirect_uri"],
        "challenge": txn["app_challenge"],
    }
    await redis.set(f"oh:appcode:{code}", json.dumps(grant), ex=settings.auth.auth_code_ttl)
    return code


async def redeem_app_code(redis: Redis, *, code: str, client_id: str, redirect_uri: str, verifier: str) -> uuid.UUID:
    raw = await redis.getdel(f"oh:appcode:{code}")
    if raw is None:
        raise LoginFailed("invalid, expired or already used code")
    grant = json.loads(raw)
    if grant["client_id"] != client_id or grant["redirect_uri"] != redirect_uri:
        raise LoginFailed("code was issued to another client or redirect_uri")
    if not verifier or not secrets.compare_digest(create_s256_code_challenge(verifier), grant["challenge"]):
        raise LoginFailed("PKCE code_verifier does not match the code_challenge")
    return uuid.UUID(grant["user_id"])
