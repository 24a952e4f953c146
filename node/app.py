"""The node's Litestar application: every domain mounted by default, or a chosen few."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
import structlog
from litestar import Litestar
from litestar import Router as Routes
from litestar.config.compression import CompressionConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from core.assets import Assets
from core.auth import VerifiedTokens, node_keys, rate_limit
from core.errors import EXCEPTION_HANDLERS
from core.events.bus import connect
from core.events.consumers import parse_registry_event
from core.evidence import EvidenceStore
from core.http import EVIDENCE_UPLOAD, dependencies, request_context_middleware
from core.i18n import Catalogs
from core.logging import configure_logging
from core.pages import PAGE_EXCEPTION_HANDLERS, Pages, content_security_policy, csrf_guard
from core.routing import Router
from core.settings import Settings, get_settings
from node import domains
from node.docs import docs_headers, swagger_plugin
from services.auth.sessions import session_middleware
from services.health.controllers import HealthController
from territories.registry import open_router

log = structlog.get_logger(__name__)
VERSION = "0.1.0"
HERE = Path(__file__).resolve().parent
CORE = HERE.parent / "core"
# Bodies compressed when the browser asks: pages, their assets, the docs. Not the JSON API
# (its clients and latency budget are its own), not live streams, not metrics.
UNCOMPRESSED = ["^/api/", "^/app/live", "^/metrics", "^/health", "^/ready", "^/oidc", "^/\\.well-known"]


def web_router(settings: Settings, controllers: list[Any], assets: Assets) -> tuple[Routes, Pages]:
    """The player app: its pages behind the browser session and CSRF checks, errors as pages."""
    template_dirs = [CORE / "templates"]
    for controller in controllers:
        folder = Path(sys.modules[controller.__module__].__file__ or "").parent / "templates"
        if folder.is_dir() and folder not in template_dirs:
            template_dirs.append(folder)
    pages = Pages(settings, template_dirs, Catalogs(HERE / "locales", settings.web.default_language), assets)
    routes = Routes(
        "/",
        route_handlers=controllers,
        middleware=[session_middleware],
        guards=[csrf_guard],
        exception_handlers=PAGE_EXCEPTION_HANDLERS,
    )
    return routes, pages


async def watch_registry(app: Litestar) -> None:
    """Keep a NATS connection and drop registry cache entries when territories change."""
    settings: Settings = app.state.settings
    router: Router = app.state.router
    while True:
        try:
            nc, _ = await connect(settings, "api")
            app.state.nats = nc

            async def on_event(msg: Any) -> None:
                router.invalidate(parse_registry_event(msg.data))

            await nc.subscribe("oh.global.territory.>", cb=on_event)
            # Anything changed while we were away is not in the cache's future.
            router.invalidate()
            return
        except Exception as exc:
            log.warning("nats unavailable; retrying", error=str(exc))
            await asyncio.sleep(2)


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.router = open_router(settings)
    app.state.redis = aioredis.from_url(settings.redis.url, socket_connect_timeout=2, socket_timeout=2)
    app.state.nats = None
    # Outbound HTTP (identity providers): bounded, never following redirects silently.
    app.state.http = httpx.AsyncClient(timeout=10, follow_redirects=False, limits=httpx.Limits(max_connections=50))
    # Evidence bytes on IPFS; the daemon is reached lazily, so the node starts while it is down.
    app.state.evidence = EvidenceStore(settings)
    watcher = asyncio.create_task(watch_registry(app))
    # Everything built so far lives as long as the process: keep it out of GC generations,
    # so full collections under load stop rescanning it (it shortens the latency tail).
    gc.freeze()
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(BaseException):
            await watcher
        if app.state.nats is not None:
            with contextlib.suppress(Exception):
                await app.state.nats.close()
        await app.state.redis.aclose()
        await app.state.http.aclose()
        await app.state.evidence.close()
        await app.state.router.close()


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False
    opt = {"rate_group": None}


def create_app(settings: Settings | None = None, only: list[str] | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings.log.level, settings.log.as_json)
    available = domains.routes()
    chosen = only or list(available)
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise ValueError(f"unknown service(s) {', '.join(unknown)}; choose from {', '.join(available)}")
    # The static files (the app's and the npm libraries') serve the pages and the API docs.
    assets = Assets(HERE / "static", settings.web.vendor_dir)
    handlers: list[Any] = [HealthController, MetricsController, *assets.routers()]
    pages = None
    for name in chosen:
        if name == "web":
            web, pages = web_router(settings, available[name], assets)
            handlers.append(web)
        else:
            handlers.extend(available[name])
    prometheus = PrometheusConfig(app_name="oneheart", prefix="oh", group_path=True, exclude=["/metrics"])
    app = Litestar(
        route_handlers=handlers,
        dependencies=dependencies(),
        guards=[rate_limit],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            request_context_middleware(settings.log.access_log),
            prometheus.middleware,
            docs_headers(content_security_policy(settings)),
        ],
        compression_config=CompressionConfig(backend="gzip", minimum_size=500, exclude=UNCOMPRESSED),
        lifespan=[lifespan],
        request_max_body_size=settings.http.request_max_body,
        openapi_config=OpenAPIConfig(
            title="OneHeart node",
            version=VERSION,
            description="Territory registry and territory-scoped APIs of a OneHeart node.",
            path="/docs",
            render_plugins=[swagger_plugin()],
            components=Components(security_schemes={"adminToken": SecurityScheme(type="http", scheme="bearer")}),
        ),
        debug=False,
    )
    app.state.settings = settings
    app.state.pages = pages
    app.state.assets = assets
    # The installed languages, also for the JSON API (a profile's language is one of them).
    app.state.catalogs = pages.catalogs if pages else Catalogs(HERE / "locales", settings.web.default_language)
    # Evidence uploads may be larger than other bodies: their limit is a setting too.
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if handler.opt.get("body_limit") == EVIDENCE_UPLOAD:
                handler.request_max_body_size = settings.evidence.evidence_max_bytes + 64 * 1024  # + form fields
    app.state.node_keys = node_keys(settings).ensure_current()
    app.state.verified_tokens = VerifiedTokens(app.state.node_keys, settings)
    return app


def openapi_document() -> str:
    """The OpenAPI document of the full app, as stable JSON."""
    import msgspec

    schema = create_app(Settings()).openapi_schema.to_schema()
    return msgspec.json.format(msgspec.json.encode(schema, order="sorted"), indent=2).decode()
