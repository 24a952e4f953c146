"""Request plumbing shared by every service: request ids, access log, territory dependency."""

from __future__ import annotations

import re
import time
import uuid
from typing import Annotated, Any

import structlog
from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.di import NamedDependency
from litestar.params import HeaderParameter
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from core.auth import Identity, require_identity
from core.errors import Forbidden
from territories.routing import Router, Territory

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


def provide_identity(request: Request[Any, Any, Any]) -> Identity:
    return require_identity(request)
