"""The OIDC provider's logic: authorization requests, logins, codes, tokens, userinfo, and the
queries on its accounts and clients. Handlers use it through :class:`OIDCProvider`.

Password attempts are limited per account and client IP: after ``rate_limit_password`` failed
attempts in the window the form answers 429, even to the right password, while the same
address can still sign in to other accounts (a class behind one school address).

Redis keys (all with a TTL, all secrets stored as SHA-256 digests, never in clear; named by
:func:`_key`):

- ``oh:idp:login:<login id>``: a pending login (the validated authorization request, its
  CSRF token, the digest of the browser cookie it is bound to), ``login_ttl``;
- ``oh:idp:code:<sha256(code)>``: an authorization code, ``auth_code_ttl``, taken with GETDEL
  so it is redeemed at most once;
- ``oh:idp:code-used:<sha256(code)>``: the access token a redeemed code gave, so a replayed
  code revokes it (RFC 6749 4.1.2), ``access_token_ttl``;
- ``oh:idp:at:<sha256(token)>``: an opaque access token (account, client, scope), valid for
  ``access_token_ttl``; only the userinfo endpoint accepts it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import msgspec
import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core import ratelimit
from core.errors import Conflict, NotFound
from core.keys import KeyRing
from core.redis import prefix
from core.routing import Router
from core.settings import Settings
from core.urls import MAX_PARAM, with_query
from services.idp.dto import AccessGrant, CodeGrant, PendingLogin
from services.idp.models import idp_accounts, idp_clients
from services.idp.passwords import verify_client_secret, verify_password

SCOPES = ("openid", "profile", "email")
CLAIMS = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "preferred_username", "name", "email"]
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
PKCE_VALUE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
BAD_CREDENTIALS = "The username or password is not right."
DISABLED = "This account is disabled. Ask the operator of this node."


def _key(kind: str, value: str) -> str:
    """The one place this module names its Redis keys."""
    return f"oh:idp:{kind}:{value}"


def issuer(settings: Settings) -> str:
    return settings.http.public_url.rstrip("/") + "/oidc"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- errors -------------------------------------------------------------------------------
class PageError(Exception):
    """A request we cannot answer to the client's redirect URI: shown to the person instead."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


class RedirectError(Exception):
    """An authorization error sent back to the (validated) redirect URI (RFC 6749 4.1.2.1)."""

    def __init__(self, redirect_uri: str, state: str | None, error: str, description: str) -> None:
        super().__init__(description)
        self.redirect_uri, self.state, self.error, self.description = redirect_uri, state, error, description


class OAuthError(Exception):
    """An error of the token or userinfo endpoint, answered as ``{error, error_description}``."""

    def __init__(self, error: str, description: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.error, self.description, self.status, self.headers = error, description, status, headers or {}


# --- keys and metadata --------------------------------------------------------------------
_RING_REFRESH = 300.0
_rings: dict[str, tuple[KeyRing, float]] = {}
_ring_lock = asyncio.Lock()


async def key_ring(settings: Settings) -> KeyRing:
    """The RS256 ring in ``<secrets>/idp-keys``: reloaded (and rotated when due) every 5 minutes."""
    folder = settings.secrets_dir / "idp-keys"
    entry = _rings.get(str(folder))
    if entry and time.monotonic() - entry[1] < _RING_REFRESH:
        return entry[0]
    async with _ring_lock:
        entry = _rings.get(str(folder))
        if entry and time.monotonic() - entry[1] < _RING_REFRESH:
            return entry[0]
        ring = (
            entry[0]
            if entry
            else KeyRing(
                folder,
                "RS256",
                rotate_after=settings.auth.signing_key_rotate_days * 86400,
                # Old keys stay published for a day beyond the longest token they signed.
                grace=86400 + settings.auth.access_token_ttl,
            )
        )
        await asyncio.to_thread(ring.ensure_current)
        _rings[str(folder)] = (ring, time.monotonic())
        return ring


def discovery(settings: Settings) -> dict[str, Any]:
    iss = issuer(settings)
    return {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/authorize",
        "token_endpoint": f"{iss}/token",
        "userinfo_endpoint": f"{iss}/userinfo",
        "jwks_uri": f"{iss}/jwks",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": list(SCOPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS,
        "prompt_values_supported": ["none", "login"],
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "claims_parameter_supported": False,
    }


# --- redirect URIs ------------------------------------------------------------------------
# --- authorization requests ---------------------------------------------------------------
@dataclass(frozen=True)
class AuthRequest:
    client_id: str
    client_name: str
    redirect_uri: str
    state: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    login_hint: str | None


def _single(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name) or []
    if len(values) > 1:
        raise ValueError(f"{name} is given more than once")
    if values and len(values[0]) > MAX_PARAM:
        raise ValueError(f"{name} is too long")
    return values[0] if values and values[0] != "" else None


async def validate_authorize(conn: AsyncConnection, params: Mapping[str, list[str]]) -> AuthRequest:
    """Check an authorization request (RFC 6749 4.1.1, OIDC Core 3.1.2.1, RFC 7636)."""
    try:
        client_id, redirect_uri = _single(params, "client_id"), _single(params, "redirect_uri")
    except ValueError as exc:
        raise PageError(f"This sign-in request is not valid: {exc}.") from None
    if not client_id:
        raise PageError("This sign-in request does not name an application (client_id).")
    client = await client_by_id(conn, client_id) if CLIENT_ID.fullmatch(client_id) else None
    if client is None:
        raise PageError("This sign-in request comes from an application this node does not know.")
    if not redirect_uri or redirect_uri not in client.redirect_uris:
        raise PageError("This sign-in request asks to return to an address the application did not register.")
    state_values = params.get("state") or []
    state = state_values[0] if len(state_values) == 1 and state_values[0] else None

    def fail(error: str, description: str) -> RedirectError:
        return RedirectError(redirect_uri, state, error, description)

    try:
        values = {
            n: _single(params, n)
            for n in (
                "response_type",
                "scope",
                "state",
                "nonce",
                "code_challenge",
                "code_challenge_method",
                "prompt",
                "response_mode",
                "login_hint",
            )
        }
    except ValueError as exc:
        raise fail("invalid_request", str(exc)) from None
    if params.get("request"):
        raise fail("request_not_supported", "request objects are not supported")
    if params.get("request_uri"):
        raise fail("request_uri_not_supported", "request_uri is not supported")
    if values["response_type"] != "code":
        raise fail("unsupported_response_type", "only response_type=code is supported")
    if values["response_mode"] not in (None, "query"):
        raise fail("invalid_request", "only response_mode=query is supported")
    if not state:
        raise fail("invalid_request", "state is required")
    requested = (values["scope"] or "").split()
    if "openid" not in requested:
        raise fail("invalid_scope", "scope must include openid")
    challenge, method = values["code_challenge"], values["code_challenge_method"]
    if challenge is None:
        if method is not None:
            raise fail("invalid_request", "code_challenge_method without code_challenge")
        if client.secret_hash is None:
            raise fail("invalid_request", "public clients must use PKCE (code_challenge with S256)")
    elif method != "S256":
        raise fail("invalid_request", "code_challenge_method must be S256 (plain is not accepted)")
    elif not PKCE_VALUE.fullmatch(challenge) or len(challenge) != 43:
        raise fail("invalid_request", "code_challenge must be a base64url SHA-256 digest (43 characters)")
    if "none" in (values["prompt"] or "").split():
        raise fail("login_required", "this provider keeps no sign-in sessions; the person must sign in")
    return AuthRequest(
        client_id=client.client_id,
        client_name=client.name,
        redirect_uri=redirect_uri,
        state=state,
        scope=" ".join(s for s in SCOPES if s in requested),
        nonce=values["nonce"],
        code_challenge=challenge,
        login_hint=values["login_hint"],
    )


def error_redirect(settings: Settings, exc: RedirectError) -> str:
    return with_query(
        exc.redirect_uri,
        {"error": exc.error, "error_description": exc.description, "state": exc.state, "iss": issuer(settings)},
    )


def success_redirect(settings: Settings, redirect_uri: str, code: str, state: str) -> str:
    return with_query(redirect_uri, {"code": code, "state": state, "iss": issuer(settings)})


# --- pending logins -----------------------------------------------------------------------
async def start_login(redis: Redis, settings: Settings, req: AuthRequest, browser: str) -> tuple[str, PendingLogin]:
    login_id = secrets.token_urlsafe(24)
    pending = PendingLogin(
        **{f: getattr(req, f) for f in AuthRequest.__dataclass_fields__},
        csrf=secrets.token_urlsafe(32),
        browser=digest(browser),
    )
    await redis.set(_key("login", login_id), msgspec.json.encode(pending), ex=settings.auth.login_ttl)
    return login_id, pending


async def load_login(redis: Redis, login_id: str) -> PendingLogin | None:
    if not login_id or len(login_id) > 64:
        return None
    raw = await redis.get(_key("login", login_id))
    return msgspec.json.decode(raw, type=PendingLogin) if raw else None


def login_form_ok(pending: PendingLogin, csrf: str, browser: str | None) -> bool:
    """The form's CSRF token and the browser cookie both match the pending login."""
    csrf_ok = hmac.compare_digest(pending.csrf.encode(), csrf.encode())
    browser_ok = browser is not None and hmac.compare_digest(pending.browser.encode(), digest(browser).encode())
    return csrf_ok and browser_ok


async def finish_login(redis: Redis, login_id: str) -> bool:
    """Consume the pending login; False when another request already did."""
    return bool(await redis.delete(_key("login", login_id)))


class LoginRefused(Exception):
    pass


def account_name(username: str) -> str:
    return username.strip().lower()


async def check_password(account: Any | None, password: str) -> str | None:
    """:class:`LoginRefused` unless ``account`` (None: no such name) exists, is enabled and has
    this password (same message for unknown names); a better hash to store, if one is due."""
    ok, new_hash = await asyncio.to_thread(verify_password, account.password_hash if account else None, password)
    if not ok or account is None:
        raise LoginRefused(BAD_CREDENTIALS)
    if account.disabled:
        raise LoginRefused(DISABLED)
    return new_hash


# --- codes --------------------------------------------------------------------------------
async def issue_code(redis: Redis, settings: Settings, pending: PendingLogin, account_id: uuid.UUID) -> str:
    code = secrets.token_urlsafe(32)
    grant = CodeGrant(
        client_id=pending.client_id,
        redirect_uri=pending.redirect_uri,
        account_id=str(account_id),
        scope=pending.scope,
        nonce=pending.nonce,
        code_challenge=pending.code_challenge,
        auth_time=int(time.time()),
    )
    await redis.set(_key("code", digest(code)), msgspec.json.encode(grant), ex=settings.auth.auth_code_ttl)
    return code


# --- token endpoint -----------------------------------------------------------------------
def _invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, 401, {"WWW-Authenticate": 'Basic realm="oidc"'})


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise _invalid_client("only HTTP Basic client authentication is accepted in the Authorization header")
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise _invalid_client("malformed Basic credentials") from None
    if not sep:
        raise _invalid_client("malformed Basic credentials")
    # RFC 6749 2.3.1: client id and secret are form-encoded before Basic encoding.
    return unquote_plus(user), unquote_plus(password)


async def authenticate_client(conn: AsyncConnection, form: Mapping[str, str | None], authorization: str | None) -> Any:
    """client_secret_basic, client_secret_post, or none (public clients): the client row."""
    basic = _basic_credentials(authorization)
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    if basic and form_secret is not None:
        raise OAuthError("invalid_request", "use one client authentication method, not two")
    if basic and form_id is not None and form_id != basic[0]:
        raise OAuthError("invalid_request", "client_id differs from the authenticated client")
    client_id, secret = basic if basic else (form_id, form_secret)
    if not client_id:
        raise _invalid_client("client authentication is required")
    client = await client_by_id(conn, client_id) if CLIENT_ID.fullmatch(client_id) else None
    if client is None:
        raise _invalid_client("unknown client or wrong secret")
    if client.secret_hash is None:
        if secret is not None:
            raise _invalid_client("public clients authenticate with PKCE, not a secret")
        return client
    if not secret or not verify_client_secret(client.secret_hash, secret):
        raise _invalid_client("unknown client or wrong secret")
    return client


def _pkce_ok(challenge: str, verifier: str) -> bool:
    computed = _b64(hashlib.sha256(verifier.encode("ascii")).digest())
    return hmac.compare_digest(computed.encode(), challenge.encode())


async def _take_code(redis: Redis, code: str) -> CodeGrant:
    key = digest(code)
    raw = await redis.getdel(_key("code", key))
    if raw is None:
        # A replayed code revokes the access token it gave (RFC 6749 4.1.2).
        issued = await redis.getdel(_key("code-used", key))
        if issued is not None:
            token_key = issued.decode() if isinstance(issued, bytes) else str(issued)
            await redis.delete(_key("at", token_key))
        raise OAuthError("invalid_grant", "the code is invalid, expired or already used")
    return msgspec.json.decode(raw, type=CodeGrant)


def _profile_claims(account: Any, scope: str) -> dict[str, Any]:
    scopes = scope.split()
    claims: dict[str, Any] = {}
    if "profile" in scopes:
        claims["preferred_username"] = account.username
        if account.display_name:
            claims["name"] = account.display_name
    if "email" in scopes and account.email:
        claims["email"] = account.email
    return claims


async def exchange_code(
    conn: AsyncConnection, redis: Redis, settings: Settings, form: Mapping[str, str | None], authorization: str | None
) -> dict[str, Any]:
    """The authorization_code grant (RFC 6749 4.1.3, OIDC Core 3.1.3): tokens for a code."""
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type != "authorization_code":
        raise OAuthError("unsupported_grant_type", "only authorization_code is supported")
    client = await authenticate_client(conn, form, authorization)
    code, redirect_uri, verifier = form.get("code"), form.get("redirect_uri"), form.get("code_verifier")
    if not code or not redirect_uri:
        raise OAuthError("invalid_request", "code and redirect_uri are required")
    grant = await _take_code(redis, code)
    if not hmac.compare_digest(grant.client_id.encode(), client.client_id.encode()):
        raise OAuthError("invalid_grant", "the code was issued to another client")
    if redirect_uri != grant.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
    if grant.code_challenge is not None:
        if not verifier or not PKCE_VALUE.fullmatch(verifier) or not _pkce_ok(grant.code_challenge, verifier):
            raise OAuthError("invalid_grant", "the PKCE code_verifier is missing or does not match")
    elif verifier is not None:
        raise OAuthError("invalid_grant", "code_verifier given but the authorization request had no challenge")
    account = await account_by_id(conn, uuid.UUID(grant.account_id))
    if account is None or account.disabled:
        raise OAuthError("invalid_grant", "the account is no longer active")

    access_token = secrets.token_urlsafe(32)
    at_key = digest(access_token)
    ttl = settings.auth.access_token_ttl
    async with redis.pipeline(transaction=True) as pipe:
        access = AccessGrant(grant.account_id, client.client_id, grant.scope)
        pipe.set(_key("at", at_key), msgspec.json.encode(access), ex=ttl)
        pipe.set(_key("code-used", digest(code)), at_key, ex=ttl)
        await pipe.execute()

    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer(settings),
        "sub": grant.account_id,
        "aud": client.client_id,
        "iat": now,
        "exp": now + ttl,
        "auth_time": grant.auth_time,
        "at_hash": _b64(hashlib.sha256(access_token.encode()).digest()[:16]),
        **_profile_claims(account, grant.scope),
    }
    if grant.nonce is not None:
        claims["nonce"] = grant.nonce
    id_token = (await key_ring(settings)).sign(claims)
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "id_token": id_token,
        "scope": grant.scope,
    }


# --- userinfo -----------------------------------------------------------------------------
def _invalid_token(description: str, *, error: bool = True) -> OAuthError:
    header = 'Bearer realm="oidc", error="invalid_token"' if error else 'Bearer realm="oidc"'
    return OAuthError("invalid_token", description, 401, {"WWW-Authenticate": header})


async def userinfo(conn: AsyncConnection, redis: Redis, authorization: str | None) -> dict[str, Any]:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        # RFC 6750 3.1: no error code when the request carried no token at all.
        raise _invalid_token("a Bearer access token is required", error=bool(authorization))
    raw = await redis.get(_key("at", digest(token))) if len(token) <= MAX_PARAM else None
    if raw is None:
        raise _invalid_token("the access token is invalid or expired")
    grant = msgspec.json.decode(raw, type=AccessGrant)
    account = await account_by_id(conn, uuid.UUID(grant.account_id))
    if account is None or account.disabled:
        raise _invalid_token("the account is no longer active")
    return {"sub": grant.account_id, **_profile_claims(account, grant.scope)}


# --- queries ----------------------------------------------------------------------------------
async def client_by_id(conn: AsyncConnection, client_id: str) -> Any | None:
    return (await conn.execute(sa.select(idp_clients).where(idp_clients.c.client_id == client_id))).first()


async def account_by_username(conn: AsyncConnection, username: str) -> Any | None:
    return (await conn.execute(sa.select(idp_accounts).where(idp_accounts.c.username == username))).first()


async def account_by_id(conn: AsyncConnection, account_id: uuid.UUID) -> Any | None:
    return (await conn.execute(sa.select(idp_accounts).where(idp_accounts.c.id == account_id))).first()


async def update_password_hash(conn: AsyncConnection, account_id: uuid.UUID, old: str, new: str) -> None:
    """Replace a hash made with older parameters (only if nobody changed it meanwhile)."""
    await conn.execute(
        sa.update(idp_accounts)
        .where(idp_accounts.c.id == account_id, idp_accounts.c.password_hash == old)
        .values(password_hash=new)
    )


# --- the provider, as the handlers use it ---------------------------------------------------
class OIDCProvider:
    """The provider over the process's router (registry reads), Redis and settings."""

    def __init__(self, router: Router, redis: Redis, settings: Settings) -> None:
        self.router, self.redis, self.settings = router, redis, settings

    async def validate_authorize(self, params: Mapping[str, list[str]]) -> AuthRequest:
        async with self.router.registry_read() as conn:
            return await validate_authorize(conn, params)

    async def start_login(self, req: AuthRequest, browser: str) -> tuple[str, PendingLogin]:
        return await start_login(self.redis, self.settings, req, browser)

    async def load_login(self, login_id: str) -> PendingLogin | None:
        return await load_login(self.redis, login_id)

    async def finish_login(self, login_id: str) -> bool:
        return await finish_login(self.redis, login_id)

    async def issue_code(self, pending: PendingLogin, account_id: uuid.UUID) -> str:
        return await issue_code(self.redis, self.settings, pending, account_id)

    async def sign_in(self, username: str, password: str, client_ip: str) -> Any:
        """The account, once the password is right and this account has attempts left from this
        address: :class:`ratelimit.RateLimited` when it has none, :class:`LoginRefused` on a
        wrong password (counted)."""
        limit = self.settings.auth.rate_limit_password
        caller = f"ip:{client_ip}:account:{digest(account_name(username))[:32]}"
        await ratelimit.refuse_if_spent(self.redis, prefix(self.settings), "password", caller, limit)
        name = account_name(username)
        account = None
        if USERNAME.fullmatch(name):
            async with self.router.registry_read() as conn:
                account = await account_by_username(conn, name)
        try:  # the slow hash runs with no database connection held
            new_hash = await check_password(account, password)
        except LoginRefused:
            await ratelimit.spend(self.redis, prefix(self.settings), "password", caller, limit)
            raise
        if new_hash and account is not None:
            async with self.router.registry_transaction() as conn:
                await update_password_hash(conn, account.id, account.password_hash, new_hash)
        return account

    async def exchange_code(self, form: Mapping[str, str | None], authorization: str | None) -> dict[str, Any]:
        async with self.router.registry_read() as conn:
            return await exchange_code(conn, self.redis, self.settings, form, authorization)

    async def userinfo(self, authorization: str | None) -> dict[str, Any]:
        async with self.router.registry_read() as conn:
            return await userinfo(conn, self.redis, authorization)


# --- administration (CLI) ---------------------------------------------------------------------
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


async def list_clients(router: Router) -> list[dict[str, Any]]:
    async with router.registry_read() as conn:
        result = await conn.execute(sa.select(idp_clients).order_by(idp_clients.c.client_id))
        return [
            {
                "client_id": r.client_id,
                "name": r.name,
                "type": "confidential" if r.secret_hash else "public",
                "redirect_uris": list(r.redirect_uris),
                "created_at": r.created_at.isoformat() if r.created_at else None,
            }
            for r in result
        ]
