"""Browser sessions of the player app: the node's tokens kept server-side, a cookie that names them.

After sign-in the browser holds one cookie, ``oh_session`` (``__Host-oh_session`` when the
node is served over https): HttpOnly, SameSite=Lax, Secure on https, path ``/``. Its value is
random; Redis keeps, under the SHA-256 of it, the person's node access and refresh tokens, the
session's CSRF token and language (``<prefix>session:<hash>``). Nothing of the tokens reaches
the browser, so no script (or extension) can read them.

Each request of the web app (:func:`session_middleware`) loads the session, refreshes the
access token shortly before it expires (one request at a time, under a Redis lock: a refresh
token is single-use, a second presenter would revoke the whole login), and puts the identity
where :mod:`core.auth` looks for it. A session ends when it has been idle for
``OH_WEB_SESSION_IDLE``, after ``OH_WEB_SESSION_MAX_AGE``, at sign-out (which revokes the
refresh token), or when its refresh token was revoked elsewhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from typing import Any

import msgspec
import structlog
from litestar.datastructures import Cookie
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.auth import Identity
from core.errors import AppError, Unavailable
from core.pages import SESSION, SESSION_ENDED
from core.redis import prefix
from core.settings import Settings
from services.auth.dto import TokenPair
from services.auth.service import refresh_tokens_of, revoke

log = structlog.get_logger(__name__)
REFRESH_BEFORE = 60  # seconds before the access token expires (at most; see Sessions.refresh_margin)


class WebSession(msgspec.Struct):
    user_id: str
    home: str
    access: str
    refresh: str
    access_expires: int
    csrf: str
    created: int
    lang: str | None = None


def cookie_name(settings: Settings) -> str:
    return "__Host-oh_session" if secure(settings) else "oh_session"


def secure(settings: Settings) -> bool:
    return settings.http.public_url.startswith("https://")


class Sessions:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis, self.settings = redis, settings
        self._prefix = f"{prefix(settings)}session:"

    def _key(self, sid: str) -> str:
        return self._prefix + hashlib.sha256(sid.encode()).hexdigest()

    async def create(self, pair: TokenPair, identity: Identity, lang: str | None = None) -> tuple[str, WebSession]:
        sid = secrets.token_urlsafe(32)
        now = int(time.time())
        session = WebSession(
            str(identity.user_id),
            identity.home,
            pair.access_token,
            pair.refresh_token,
            now + pair.expires_in,
            secrets.token_urlsafe(24),
            now,
            lang,
        )
        await self.save(sid, session)
        return sid, session

    async def load(self, sid: str) -> WebSession | None:
        if not sid or len(sid) > 100:
            return None
        # One round trip: read it and restart its idle time (sliding expiry).
        raw = await self.redis.getex(self._key(sid), ex=self.settings.web.session_idle)
        if raw is None:
            return None
        session = msgspec.json.decode(raw, type=WebSession)
        left = session.created + self.settings.web.session_max_age - time.time()
        if left <= 0:
            await self.redis.delete(self._key(sid))
            return None
        if left < self.settings.web.session_idle:
            await self.redis.expire(self._key(sid), max(1, int(left)))
        return session

    async def save(self, sid: str, session: WebSession) -> None:
        left = session.created + self.settings.web.session_max_age - int(time.time())
        ttl = max(1, min(self.settings.web.session_idle, left))
        await self.redis.set(self._key(sid), msgspec.json.encode(session), ex=ttl)

    async def set_language(self, sid: str, lang: str | None) -> None:
        """The session's language (the profile's, just saved): the next page speaks it."""
        session = await self.load(sid)
        if session is not None:
            await self.save(sid, msgspec.structs.replace(session, lang=lang))

    async def end(self, sid: str) -> WebSession | None:
        session = await self.load(sid)
        await self.redis.delete(self._key(sid))
        return session

    async def fresh(self, sid: str, session: WebSession, state: Any) -> WebSession | None:
        """The session with an access token valid for a while yet; None when the login is gone."""
        margin = self.refresh_margin()
        if session.access_expires - margin > time.time():
            return session
        lock = f"{self._key(sid)}:refresh"
        if not await self.redis.set(lock, "1", nx=True, ex=10):
            # Another request of this browser is refreshing: use what it stores.
            for _ in range(50):
                await asyncio.sleep(0.1)
                again = await self.load(sid)
                if again is None or again.access_expires - margin > time.time():
                    return again
            return None
        try:
            try:
                async with state.router.registry_transaction() as conn:
                    pair = await refresh_tokens_of(conn, self.settings, state.node_keys, session.refresh)
            except AppError as exc:
                if exc.status == 401:  # revoked, reused or expired: the login is over
                    await self.redis.delete(self._key(sid))
                    return None
                raise
            session = msgspec.structs.replace(
                session,
                access=pair.access_token,
                refresh=pair.refresh_token,
                access_expires=int(time.time()) + pair.expires_in,
            )
            await self.save(sid, session)
            return session
        finally:
            await self.redis.delete(lock)

    def refresh_margin(self) -> int:
        """How long before the access token expires it is refreshed: a minute, or a quarter of
        the token's life when that is shorter (a short OH_ACCESS_TOKEN_TTL must not refresh
        at every request)."""
        return min(REFRESH_BEFORE, max(1, self.settings.auth.access_token_ttl // 4))

    async def sign_out(self, sid: str, state: Any) -> None:
        session = await self.end(sid)
        if session is not None:
            async with state.router.registry_transaction() as conn:
                await revoke(conn, session.refresh)

    def cookie(self, sid: str) -> Cookie:
        return Cookie(
            key=cookie_name(self.settings),
            value=sid,
            path="/",
            max_age=self.settings.web.session_max_age,
            httponly=True,
            secure=secure(self.settings),
            samesite="lax",
        )

    def cleared(self) -> Cookie:
        return Cookie(
            key=cookie_name(self.settings),
            value="",
            path="/",
            max_age=0,
            httponly=True,
            secure=secure(self.settings),
            samesite="lax",
        )


def sessions_of(state: Any) -> Sessions:
    if getattr(state, "sessions", None) is None:
        state.sessions = Sessions(state.redis, state.settings)
    return state.sessions  # type: ignore[no-any-return]


def sid_of(scope: Scope, name: str) -> str | None:
    for key, value in scope["headers"]:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name:
                    return v
    return None


def session_middleware(app: ASGIApp) -> ASGIApp:
    """The web app's requests: the browser's session (if any) becomes the request's identity."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        state = scope["app"].state
        sessions = sessions_of(state)
        sid = sid_of(scope, cookie_name(state.settings))
        if sid:
            try:
                session = await sessions.load(sid)
                if session is not None:
                    session = await sessions.fresh(sid, session, state)
                if session is not None:
                    scope["oh_identity"] = state.verified_tokens.identity(session.access)  # type: ignore[typeddict-unknown-key]
                    scope[SESSION] = session  # type: ignore[typeddict-unknown-key]
                    scope["oh_sid"] = sid  # type: ignore[typeddict-unknown-key]
                else:
                    scope[SESSION_ENDED] = True  # type: ignore[typeddict-unknown-key]
            except RedisError:
                log.warning("session store unavailable")
                raise Unavailable("the session store (Redis) is unavailable", headers={"Retry-After": "5"}) from None
            except AppError as exc:
                log.info("session dropped", reason=exc.detail)
                scope[SESSION_ENDED] = True  # type: ignore[typeddict-unknown-key]
        if scope.get(SESSION) is None:  # type: ignore[call-overload]
            scope["oh_identity"] = None  # type: ignore[typeddict-unknown-key]  # never a bearer token here
        await app(scope, receive, send)

    return middleware
