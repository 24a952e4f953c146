"""Request plumbing shared by every service: request ids, access log, and the dependencies
handlers ask for by name: ``identity``, ``actor``, ``territory``, ``db`` (a read connection for
the request's territory), ``tx`` (its transaction), ``registry_db`` and ``registry_tx``.

A handler never opens a connection itself: it names ``db`` or ``tx`` and calls its domain's
service functions with it; the connection knows its territory."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity, require_identity
from core.errors import Forbidden
from core.routing import Router, Territory

Conn = AsyncConnection

log = structlog.get_logger("oneheart.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# A handler with opt {"body_limit": EVIDENCE_UPLOAD} takes bodies up to OH_EVIDENCE_MAX_BYTES
# (plus its form fields) instead of OH_REQUEST_MAX_BODY; core.app applies it.
EVIDENCE_UPLOAD = "evidence_upload"


def request_context_middleware(access_log: bool) -> Any:
    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
            request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(request_id=request_id)
            started = time.perf_counter()
            status = 500

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    MutableScopeHeaders.from_message(message)["x-request-id"] = request_id
                await send(message)

            try:
                await app(scope, receive, send_with_id)
            finally:
                if access_log:
                    log.info(
                        "request",
                        method=scope.get("method"),
                        path=scope["path"],
                        status=status,
                        ms=round((time.perf_counter() - started) * 1000, 2),
                    )

        return middleware

    return factory


def provide_router(request: Request[Any, Any, Any]) -> Router:
    return request.app.state.router  # type: ignore[no-any-return]


def provide_identity(request: Request[Any, Any, Any]) -> Identity:
    return require_identity(request)


async def provide_territory(
    request: Request[Any, Any, Any],
    router: NamedDependency[Router],
    x_territory: Annotated[
        str | None,
        HeaderParameter(
            name="X-Territory",
            required=False,
            description="Territory this request acts in; defaults to the caller's home territory",
            pattern=r"^[a-z][a-z0-9_]{1,30}$",
        ),
    ] = None,
) -> Territory:
    """The territory a request acts in: named, or the token's home. A token of one territory
    cannot act in another unless its roles there (or global_admin) allow it."""
    identity = require_identity(request)
    code = x_territory or identity.home
    if not identity.acts_in(code):
        raise Forbidden(f"your token is for territory {identity.home!r}; it has no role in {code!r}")
    territory = await router.resolve(code)
    structlog.contextvars.bind_contextvars(territory=territory.code)
    return territory


async def provide_db(router: NamedDependency[Router], territory: NamedDependency[Territory]) -> AsyncIterator[Conn]:
    """A read connection for the request's territory (each statement on its own)."""
    async with router.read(territory) as conn:
        yield conn


async def provide_tx(router: NamedDependency[Router], territory: NamedDependency[Territory]) -> AsyncIterator[Conn]:
    """One transaction for the request's territory: it commits when the handler returns and
    rolls back when it raises (Litestar throws the error into this generator)."""
    async with router.transaction(territory) as conn:
        yield conn


async def provide_registry_db(router: NamedDependency[Router]) -> AsyncIterator[Conn]:
    """A read connection to the registry's own schema (identity, clients, providers)."""
    async with router.registry_read() as conn:
        yield conn


async def provide_registry_tx(router: NamedDependency[Router]) -> AsyncIterator[Conn]:
    async with router.registry_transaction() as conn:
        yield conn


def provide_actor(request: Request[Any, Any, Any]) -> str:
    """Who acts, for the audit log: what a guard recorded, else the signed-in user."""
    actor = getattr(request.state, "actor", None)
    if isinstance(actor, str):
        return actor
    return f"user:{require_identity(request).user_id}"


def dependencies() -> dict[str, Provide]:
    """The app-wide dependencies every handler may ask for by name."""
    return {
        "router": Provide(provide_router, sync_to_thread=False),
        "identity": Provide(provide_identity, sync_to_thread=False),
        "actor": Provide(provide_actor, sync_to_thread=False),
        "territory": Provide(provide_territory),
        "db": Provide(provide_db),
        "tx": Provide(provide_tx),
        "registry_db": Provide(provide_registry_db),
        "registry_tx": Provide(provide_registry_tx),
    }
