"""The gateway's Matrix client: matrix-nio acting as the application service's bot user.

matrix-nio has no application-service support; acting as the bot works with
``access_token = as_token``. Every call is bounded in time: a homeserver that is down raises
(the caller's event is retried later, never dropped). A 429 is retried after the server's
``retry_after_ms`` (nio does the waiting) a few times, then raised as :class:`RateLimited`.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import aiohttp
from nio import AsyncClient, AsyncClientConfig, ErrorResponse, RoomPreset, RoomVisibility

from federation.config import HomeserverConfig


class MatrixError(Exception):
    def __init__(self, what: str, errcode: str | None, message: str, retry_after_ms: int | None = None) -> None:
        super().__init__(f"{what}: {errcode or 'error'}: {message}")
        self.errcode, self.retry_after_ms = errcode, retry_after_ms


class RateLimited(MatrixError):
    """The homeserver kept answering 429; try again after ``retry_after_ms``."""


class Unreachable(MatrixError):
    """The homeserver did not answer (down, restarting, too slow)."""


def _raise_for(what: str, resp: Any) -> Any:
    if isinstance(resp, ErrorResponse):
        code = str(resp.status_code) if resp.status_code is not None else None
        cls = RateLimited if code in ("M_LIMIT_EXCEEDED", "429") else MatrixError
        raise cls(what, code, resp.message, getattr(resp, "retry_after_ms", None))
    return resp


class Bot:
    """The bot user of one territory's homeserver."""

    def __init__(self, config: HomeserverConfig, timeout: float = 10.0, max_rate_limited: int = 3) -> None:
        self.config = config
        self.timeout = timeout
        self.client = AsyncClient(
            config.url,
            config.bot,
            config=AsyncClientConfig(
                max_limit_exceeded=max_rate_limited,
                max_timeouts=1,
                request_timeout=timeout,
                backoff_factor=0.2,
                max_timeout_retry_wait_time=2,
            ),
        )
        self.client.access_token = config.as_token
        self.client.user_id = config.bot

    @property
    def user_id(self) -> str:
        return self.config.bot

    async def close(self) -> None:
        await self.client.close()

    async def _call(self, what: str, coro: Any) -> Any:
        try:
            # Bounds nio's own retries too (it retries a refused connection once).
            async with asyncio.timeout(self.timeout * 3):
                resp = await coro
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise Unreachable(what, None, f"{type(exc).__name__}: {exc}") from None
        return _raise_for(what, resp)

    # --- rooms ------------------------------------------------------------------------
    async def resolve_alias(self, alias: str) -> str | None:
        try:
            resp = await self._call("resolve alias", self.client.room_resolve_alias(alias))
        except MatrixError as exc:
            if exc.errcode == "M_NOT_FOUND" or "404" in str(exc):
                return None
            raise
        return str(resp.room_id)

    async def create_room(
        self,
        *,
        alias_localpart: str,
        name: str,
        topic: str,
        space: bool = False,
        initial_state: list[dict[str, Any]] | None = None,
    ) -> str:
        """A public, federatable room (or space) with ``#alias_localpart``; an existing room
        with that alias (an earlier attempt that was not recorded) is returned instead."""
        alias = f"#{alias_localpart}:{self.config.server_name}"
        found = await self.resolve_alias(alias)
        if found:
            return found
        try:
            resp = await self._call(
                "create room",
                self.client.room_create(
                    visibility=RoomVisibility.public,
                    alias=alias_localpart,
                    name=name,
                    topic=topic,
                    federate=True,
                    preset=RoomPreset.public_chat,
                    space=space,
                    initial_state=[
                        {
                            "type": "m.room.history_visibility",
                            "state_key": "",
                            "content": {"history_visibility": "world_readable"},
                        },
                        *(initial_state or []),
                    ],
                ),
            )
        except MatrixError as exc:
            if exc.errcode == "M_ROOM_IN_USE":  # someone was quicker
                again = await self.resolve_alias(alias)
                if again:
                    return again
            raise
        return str(resp.room_id)

    async def put_state(self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = "") -> str:
        resp = await self._call(
            "put state", self.client.room_put_state(room_id, event_type, content, state_key=state_key)
        )
        return str(resp.event_id)

    async def join(self, room_id: str) -> str:
        resp = await self._call("join", self.client.join(room_id))
        return str(resp.room_id)

    # --- messages ---------------------------------------------------------------------
    async def send(self, room_id: str, content: dict[str, Any], txn_id: str, event_type: str = "m.room.message") -> str:
        """Send an event; ``txn_id`` makes a retried send the same event (the homeserver
        deduplicates transaction ids per user)."""
        resp = await self._call("send", self.client.room_send(room_id, event_type, content, tx_id=txn_id))
        return str(resp.event_id)

    async def upload(self, data: bytes, content_type: str, filename: str) -> str:
        """Put bytes in the homeserver's media store; returns the ``mxc://`` URI."""

        def provider(_got_429: int, _got_timeouts: int) -> bytes:
            return data

        try:
            async with asyncio.timeout(self.timeout * 3):
                resp, _keys = await self.client.upload(
                    provider, content_type=content_type, filename=filename, filesize=len(data)
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise Unreachable("upload", None, f"{type(exc).__name__}: {exc}") from None
        return str(_raise_for("upload", resp).content_uri)

    # --- admin ------------------------------------------------------------------------
    async def sso_identities(self, mxid: str) -> list[dict[str, str]]:
        """The SSO identities (``auth_provider``, ``external_id``) the homeserver recorded for a
        local user; empty without an admin token or for unknown users."""
        if not self.config.admin_token:
            return []
        url = f"{self.config.url}/_synapse/admin/v2/users/{quote(mxid)}"
        headers = {"Authorization": f"Bearer {self.config.admin_token}"}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                async with session.get(url, headers=headers) as resp:
                    if resp.status == 404:
                        return []
                    if resp.status != 200:
                        raise MatrixError("admin user", str(resp.status), (await resp.text())[:200])
                    body = await resp.json()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise Unreachable("admin user", None, str(exc)) from None
        return [dict(x) for x in body.get("external_ids") or []]
