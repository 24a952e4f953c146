"""Static files of the player app: the node's own (``node/static``) and the front-end
libraries that ``npm ci`` installed from ``web/package-lock.json`` (``OH_WEB_VENDOR_DIR``).

Only the folders named in :data:`VENDOR` are served, never the rest of ``node_modules``.
URLs carry a hash of the file (``?v=``), so browsers may keep a file for a day and still
see a new release at once.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import structlog
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

log = structlog.get_logger(__name__)

# Public folder under /static/vendor/ -> folder inside node_modules.
VENDOR = {
    "htmx": "htmx.org/dist",
    "leaflet": "leaflet/dist",
    "swagger-ui": "swagger-ui-dist",
}
CACHE = CacheControlHeader(public=True, max_age=86400)


class Assets:
    def __init__(self, app_dir: Path, vendor_dir: Path) -> None:
        self.app_dir, self.vendor_dir = app_dir, vendor_dir
        missing = [name for name, folder in VENDOR.items() if not (vendor_dir / folder).is_dir()]
        if missing:
            log.warning(
                "front-end libraries missing: run `npm ci` in web/ (scripts/dev does) or set OH_WEB_VENDOR_DIR",
                vendor_dir=str(vendor_dir),
                missing=missing,
            )

    def file(self, path: str) -> Path:
        """The file behind a public path like ``app/app.js`` or ``vendor/htmx/htmx.min.js``."""
        kind, _, rest = path.partition("/")
        if kind == "app":
            return self.app_dir / rest
        name, _, inner = rest.partition("/")
        return self.vendor_dir / VENDOR[name] / inner

    def url(self, path: str) -> str:
        return f"/static/{path}?v={_digest(self.file(path))}"

    def routers(self) -> list[Any]:
        routers = [
            create_static_files_router(
                "/static/app", [self.app_dir], cache_control=CACHE, include_in_schema=False, opt={"rate_group": None}
            )
        ]
        for name, folder in VENDOR.items():
            routers.append(
                create_static_files_router(
                    f"/static/vendor/{name}",
                    [self.vendor_dir / folder],
                    cache_control=CACHE,
                    include_in_schema=False,
                    opt={"rate_group": None},
                )
            )
        return routers


@lru_cache(maxsize=256)
def _digest(file: Path) -> str:
    try:
        return hashlib.sha256(file.read_bytes()).hexdigest()[:10]
    except OSError:
        return "missing"
