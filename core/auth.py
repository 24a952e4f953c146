"""Who is calling: node access tokens, identities, guards.

Access tokens are 15-minute JWTs (ES256) signed by the node's key ring
(``secrets/node-keys``, published at ``/.well-known/jwks.json``). Claims: ``sub`` (global
user id), ``home`` (home territory), ``roles`` ({territory or "*": [role, ...]}), ``iss``
(the node's public URL), ``aud`` ("oneheart"), ``iat``, ``exp``, ``jti``; an optional ``nbf`` is
honoured. ``exp``, ``iat`` and ``nbf`` are checked with the same small :data:`LEEWAY` for clock
skew between replicas.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from core.errors import Forbidden, Unauthorized
from core.keys import KeyRing
from core.ratelimit import check
from core.redis import prefix
from core.settings import Settings

AUDIENCE = "oneheart"
LEEWAY = 30
GLOBAL_SCOPE = "*"
_MISSING = object()


def node_keys(settings: Settings) -> KeyRing:
    return KeyRing(
        settings.secrets_dir / "node-keys",
        "ES256",
        rotate_after=settings.auth.signing_key_rotate_days * 86400,
        grace=settings.auth.access_token_ttl + 2 * LEEWAY,
    )


@dataclass(frozen=True)
class Identity:
    user_id: uuid.UUID
    home: str
    roles: dict[str, list[str]] = field(default_factory=dict)
    jti: str = ""
    expires: int = 0

    def has(self, role: str, territory: str | None = None) -> bool:
        return role in self.roles.get(GLOBAL_SCOPE, []) or (
            territory is not None and role in self.roles.get(territory, [])
        )

    def acts_in(self, territory: str) -> bool:
        """May this person read and write in ``territory`` at all?"""
        return territory == self.home or bool(self.roles.get(territory)) or self.has("global_admin")


def issue_access(ring: KeyRing, settings: Settings, identity: Identity, now: float | None = None) -> str:
    now = time.time() if now is None else now
    return ring.sign(
        {
            "iss": settings.http.public_url,
            "aud": AUDIENCE,
            "sub": str(identity.user_id),
            "home": identity.home,
            "roles": identity.roles,
            "iat": int(now),
            "exp": int(now) + settings.auth.access_token_ttl,
            "jti": uuid.uuid4().hex,
        }
    )


def _time_claim(claims: dict[str, Any], name: str) -> int | None:
    """A NumericDate claim (whole seconds, as the node issues them); None if absent or not one."""
    value = claims.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def verify_access(ring: KeyRing, settings: Settings, token: str, now: float | None = None) -> Identity:
    """The identity in a node access token; :class:`Unauthorized` with the reason otherwise."""
    try:
        claims = ring.verify(token)
    except ValueError as exc:
        if "invalid_key_id" not in str(exc):
            raise Unauthorized(str(exc)) from None
        try:  # a key made by another replica after we loaded ours
            claims = ring.load().verify(token)
        except ValueError as again:
            raise Unauthorized(str(again)) from None
    now = time.time() if now is None else now
    if claims.get("iss") != settings.http.public_url or claims.get("aud") != AUDIENCE:
        raise Unauthorized("token was not issued for this node")
    exp, iat, nbf = (_time_claim(claims, name) for name in ("exp", "iat", "nbf"))
    if exp is None or exp + LEEWAY < now:
        raise Unauthorized("token expired")
    if iat is None:
        raise Unauthorized("token is missing claims")
    if iat - LEEWAY > now:
        raise Unauthorized("token is issued in the future")
    if "nbf" in claims and (nbf is None or nbf - LEEWAY > now):
        raise Unauthorized("token is not valid yet")
    try:
        return Identity(
            uuid.UUID(claims["sub"]), str(claims["home"]), dict(claims.get("roles") or {}), claims["jti"], exp
        )
    except (KeyError, ValueError, TypeError):
        raise Unauthorized("token is missing claims") from None


class VerifiedTokens:
    """Tokens already verified, until they expire: an app sends the same access token for up
    to 15 minutes, and a dict lookup is far cheaper than an ECDSA check. Bounded; oldest out."""

    def __init__(self, ring: KeyRing, settings: Settings, size: int = 20_000) -> None:
        self.ring, self.settings, self.size = ring, settings, size
        self._seen: dict[str, tuple[float, Identity]] = {}

    def identity(self, token: str) -> Identity:
        now = time.time()
        hit = self._seen.get(token)
        if hit is not None and hit[0] + LEEWAY >= now:
            return hit[1]
        identity = verify_access(self.ring, self.settings, token, now)
        if len(self._seen) >= self.size:
            self._seen.pop(next(iter(self._seen)))
        self._seen[token] = (float(identity.expires), identity)
        return identity


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def identity_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Identity | None:
    """The caller's identity from a node access token (cached on the request); None if no token."""
    cached = connection.scope.get("oh_identity", _MISSING)  # type: ignore[call-overload]
    if cached is not _MISSING:
        return cached  # type: ignore[return-value]
    token = bearer_token(connection)
    identity = None
    if token is not None and token.count(".") == 2:
        identity = connection.app.state.verified_tokens.identity(token)
    connection.scope["oh_identity"] = identity  # type: ignore[typeddict-unknown-key]
    return identity


def require_identity(connection: ASGIConnection[Any, Any, Any, Any]) -> Identity:
    identity = identity_of(connection)
    if identity is None:
        raise Unauthorized("sign in first: send 'Authorization: Bearer <access token>'")
    return identity


def require_role(identity: Identity, role: str, territory: str | None = None) -> None:
    if not identity.has(role, territory):
        where = f" in territory {territory!r}" if territory else ""
        raise Forbidden(f"this needs the {role} role{where}")


async def rate_limit(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """App-wide guard: the route's ``rate_group`` (opt) limits each user, or each IP."""
    group = handler.opt.get("rate_group", "api")
    if group is None:
        return
    state = connection.app.state
    spec = getattr(state.settings.auth, f"rate_limit_{group}")
    try:
        identity = identity_of(connection)
    except Unauthorized:
        identity = None
    caller = f"u:{identity.user_id}" if identity else f"ip:{connection.client.host if connection.client else '-'}"
    await check(state.redis, prefix(state.settings), group, caller, spec)
