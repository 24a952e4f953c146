"""Route guards. Until OIDC roles land, global-admin routes take the bootstrap admin token."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from core.errors import Unauthorized


def global_admin(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    expected = connection.app.state.settings.admin_token
    if expected is None:
        raise Unauthorized("the registry API is disabled: no admin token is configured (OH_ADMIN_TOKEN)")
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if (
        scheme.lower() != "bearer"
        or not token
        or not hmac.compare_digest(token.encode(), expected.get_secret_value().encode())
    ):
        raise Unauthorized("a global admin bearer token is required")
