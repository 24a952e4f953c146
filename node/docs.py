"""The API docs page (``/docs``): Swagger UI served by the node itself.

Litestar's ``SwaggerRenderPlugin`` loads Swagger UI (and a favicon) from a public CDN and starts
it with an inline script: a blank page offline, and one a ``script-src 'self'`` policy blocks.
Here the page loads ``swagger-ui-dist`` (web/package-lock.json) from the node's static files
(``core/assets.py``: ``/static/vendor/swagger-ui/``) and starts it with our own small script
(``node/static/swagger-init.js``, at ``/static/app/``), which reads the schema's address from a
``data-`` attribute. Nothing on the page is inline; the URLs carry the files' hashes as the
pages' do.
"""

from __future__ import annotations

import html
from typing import Any

from litestar import Request, Router
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from core.assets import Assets

BUNDLE = "vendor/swagger-ui/swagger-ui-bundle.js"
PRESET = "vendor/swagger-ui/swagger-ui-standalone-preset.js"
CSS = "vendor/swagger-ui/swagger-ui.css"
ICON = "vendor/swagger-ui/favicon-32x32.png"
INIT = "app/swagger-init.js"


class LocalSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Swagger UI from the node's own static files, started without inline script."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            js_url=f"/static/{BUNDLE}", css_url=f"/static/{CSS}", standalone_preset_js_url=f"/static/{PRESET}", **kwargs
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        assets: Assets = request.app.state.assets
        url = assets.url
        attrs = {"data-openapi-url": self.get_openapi_json_route(request)}
        csrf = request.app.csrf_config
        if csrf is not None and not csrf.cookie_httponly:
            attrs |= {"data-csrf-cookie": csrf.cookie_name, "data-csrf-header": csrf.header_name}
        data = " ".join(f'{name}="{html.escape(value)}"' for name, value in attrs.items())
        page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(str(openapi_schema["info"]["title"]))}</title>
<link rel="icon" type="image/png" href="{html.escape(url(ICON))}">
<link rel="stylesheet" href="{html.escape(url(CSS))}">
<script src="{html.escape(url(BUNDLE))}" defer></script>
<script src="{html.escape(url(PRESET))}" defer></script>
<script src="{html.escape(url(INIT))}" defer></script>
</head>
<body>
<div id="swagger-ui" {data}></div>
</body>
</html>
"""
        return page.encode()

    def receive_router(self, router: Router) -> None:
        # Not Swagger UI's oauth2-redirect.html route (an inline script): the API's security
        # schemes are bearer tokens, no OAuth2 flow.
        return


def docs_headers(policy: str) -> Any:
    """ASGI middleware: the docs page gets the pages' Content-Security-Policy and framing rules."""
    extra = [
        (b"content-security-policy", policy.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
    ]

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or not scope["path"].startswith("/docs") or scope["path"].endswith(".json"):
                await app(scope, receive, send)
                return

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), *extra]
                await send(message)

            await app(scope, receive, send_with_headers)

        return middleware

    return factory


def swagger_plugin() -> LocalSwaggerRenderPlugin:
    """The render plugin for OpenAPIConfig(render_plugins=[...])."""
    return LocalSwaggerRenderPlugin()
