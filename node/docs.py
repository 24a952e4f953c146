"""The API docs page (``/docs``): Swagger UI served by the node itself.

Litestar's ``SwaggerRenderPlugin`` loads Swagger UI (and a favicon) from a public CDN and starts
it with an inline script: a blank page offline, and one a ``script-src 'self'`` policy blocks.
Here the page loads ``swagger-ui-dist`` (web/package-lock.json, installed into the vendor
directory, ``OH_WEB_VENDOR_DIR``) from ``/static/vendor/swagger-ui-dist/`` and starts it with
our own small script (``node/static/swagger-init.js``, at ``/docs/swagger-init.js``), which
reads the schema's address from a ``data-`` attribute. Nothing on the page is inline.
"""

from __future__ import annotations

import html
import os
from functools import cache
from pathlib import Path
from typing import Any

from litestar import Request, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

VENDOR_PATH = "/static/vendor/swagger-ui-dist"
INIT_SCRIPT = Path(__file__).resolve().parent / "static" / "swagger-init.js"
INIT_HANDLER = "oneheart-swagger-init"
# The files change with web/package-lock.json, not with every deploy: an hour in caches.
ASSET_CACHE = CacheControlHeader(max_age=3600, public=True)


@cache
def _init_script() -> bytes:
    return INIT_SCRIPT.read_bytes()


@get(
    "/swagger-init.js",
    name=INIT_HANDLER,
    media_type="text/javascript",
    include_in_schema=False,
    sync_to_thread=False,
    cache_control=ASSET_CACHE,
    opt={"rate_group": None},
)
def swagger_init() -> bytes:
    return _init_script()


class LocalSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Swagger UI from the node's own static files, started without inline script."""

    def __init__(self, assets: str = VENDOR_PATH, **kwargs: Any) -> None:
        self.assets = assets.rstrip("/")
        super().__init__(
            js_url=f"{self.assets}/swagger-ui-bundle.js",
            css_url=f"{self.assets}/swagger-ui.css",
            standalone_preset_js_url=f"{self.assets}/swagger-ui-standalone-preset.js",
            favicon=f'<link rel="icon" type="image/png" href="{self.assets}/favicon-32x32.png">',
            style="",
            **kwargs,
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        attrs = {
            "data-openapi-url": self.get_openapi_json_route(request),
        }
        csrf = request.app.csrf_config
        if csrf is not None and not csrf.cookie_httponly:
            attrs |= {"data-csrf-cookie": csrf.cookie_name, "data-csrf-header": csrf.header_name}
        data = " ".join(f'{name}="{html.escape(value)}"' for name, value in attrs.items())
        init = html.escape(request.app.route_reverse(INIT_HANDLER))
        page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(str(openapi_schema["info"]["title"]))}</title>
{self.favicon}
<link rel="stylesheet" href="{html.escape(self.css_url)}">
<script src="{html.escape(self.js_url)}" defer></script>
<script src="{html.escape(self.standalone_preset_js_url)}" defer></script>
<script src="{init}" defer></script>
</head>
<body>
<div id="swagger-ui" {data}></div>
</body>
</html>
"""
        return page.encode()

    def receive_router(self, router: Router) -> None:
        # Our start script, next to the page. Not SwaggerUI's oauth2-redirect.html route (an
        # inline script): the API's security schemes are bearer tokens, no OAuth2 flow.
        router.register(swagger_init)


def swagger_plugin() -> LocalSwaggerRenderPlugin:
    """The render plugin for OpenAPIConfig(render_plugins=[...])."""
    return LocalSwaggerRenderPlugin()


def vendor_dir(settings: Any) -> Path:
    """Where the front-end libraries are: ``settings.web.vendor_dir`` (OH_WEB_VENDOR_DIR);
    until the web settings exist, that variable or the repository's web/node_modules."""
    web = getattr(settings, "web", None)
    if web is not None and getattr(web, "vendor_dir", None):
        return Path(web.vendor_dir)
    explicit = os.environ.get("OH_WEB_VENDOR_DIR", "").strip()
    return Path(explicit) if explicit else Path(__file__).resolve().parent.parent / "web" / "node_modules"


def docs_assets_router(vendor_dir: Path) -> Router:
    """Serves ``<vendor_dir>/swagger-ui-dist`` at /static/vendor/swagger-ui-dist/ (until the
    page kit's asset layer serves the whole vendor directory)."""
    return create_static_files_router(
        path=VENDOR_PATH,
        directories=[vendor_dir / "swagger-ui-dist"],
        name="docs-vendor",
        cache_control=ASSET_CACHE,
        include_in_schema=False,
        opt={"rate_group": None},
    )
