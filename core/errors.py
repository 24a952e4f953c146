"""Errors: one JSON shape for every failure, ``{"error": code, "detail": text}``.

Domain code raises :class:`AppError` subclasses; the app turns them (and framework
errors) into responses. Stack traces are logged, never returned.
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

log = structlog.get_logger(__name__)


class ErrorBody(msgspec.Struct, omit_defaults=True):
    error: str
    detail: str
    fields: list[dict[str, str]] | None = None


class AppError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class InvalidInput(AppError):
    status, code = 400, "invalid_request"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class Locked(AppError):
    status, code = 423, "territory_suspended"


class Unavailable(AppError):
    status, code = 503, "unavailable"


def _json(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json", headers=headers)


def app_error_handler(_: Request[Any, Any, Any], exc: AppError) -> Response[bytes]:
    return _json(exc.status, ErrorBody(exc.code, exc.detail), exc.headers)


def validation_handler(_: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    fields = [
        {"field": str(e.get("key") or e.get("source") or ""), "message": str(e.get("message", ""))}
        for e in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(e, dict)
    ]
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or str(exc.detail)
    return _json(400, ErrorBody("invalid_request", detail, fields or None))


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def http_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    code = _HTTP_CODES.get(exc.status_code, "error")
    detail = exc.detail if exc.status_code < 500 else "internal error"
    return _json(exc.status_code, ErrorBody(code, str(detail)), exc.headers)


def unhandled_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # A yield dependency (``db``, ``tx``) that turns the error thrown into it into an AppError
    # (a dead server into Unavailable) reaches us wrapped by Litestar in an ExceptionGroup.
    if isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1 and isinstance(exc.exceptions[0], AppError):
        return app_error_handler(request, exc.exceptions[0])
    log.exception("unhandled error", path=request.url.path, exc_info=exc)
    return _json(500, ErrorBody("internal", "internal error"))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    AppError: app_error_handler,
    ValidationException: validation_handler,
    NotFoundException: http_handler,
    HTTPException: http_handler,
    Exception: unhandled_handler,
}

_DESCRIPTIONS = {
    400: "Invalid request",
    401: "Missing or invalid credentials",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    422: "Idempotency key reused with a different request",
    423: "Territory suspended",
    503: "A backing service is unavailable; retry after the Retry-After delay",
}


# What every territory-scoped route can answer (the ``territory`` dependency): no or a bad token,
# no role in that territory, an unknown one, a suspended one, too many requests, its server down.
TERRITORY_ROUTE = (401, 403, 404, 423, 429, 503)


def territory_errors(*extra: int) -> dict[int, ResponseSpec]:
    """OpenAPI error entries of a territory-scoped route: :data:`TERRITORY_ROUTE` and ``extra``."""
    return error_responses(*TERRITORY_ROUTE, *extra)


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the errors a route can answer (all with :class:`ErrorBody`)."""
    return {
        s: ResponseSpec(data_container=ErrorBody, description=_DESCRIPTIONS.get(s, "Error")) for s in (400, *statuses)
    }
