"""The API docs page (/docs) in a real browser: Swagger UI comes from the node itself (no CDN),
renders the node's operations at phone and desktop sizes, and works under the pages'
Content-Security-Policy (the one /docs sends, else the player pages' own, added here)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, expect

from core.pages import content_security_policy
from tests.browser import new_page, snap, watch
from tests.conftest import Node


async def with_csp(page: Page, url: str, strict: str) -> list[str]:
    """Give the page at ``url`` the ``strict`` CSP when the node sends none; the policies in effect."""
    seen: list[str] = []

    async def answer(route: Route) -> None:
        response = await route.fetch()
        headers = dict(response.headers)
        policy = headers.get("content-security-policy") or strict
        seen.append(policy)
        await route.fulfill(response=response, headers={**headers, "content-security-policy": policy})

    await page.route(url, answer)
    return seen


@pytest.mark.parametrize("size", ["phone", "desktop"])
async def test_docs_render_swagger_ui_from_the_node(browser: Browser, node: Node, size: str) -> None:
    page = await new_page(browser, size)  # type: ignore[arg-type]
    try:
        policies = await with_csp(page, f"{node.url}/docs", content_security_policy(node.env.settings))
        response = await page.goto(f"{node.url}/docs")
        assert response is not None and response.status == 200
        assert policies and "script-src 'self';" in policies[0] and "unsafe-inline" not in policies[0], policies
        await expect(page).to_have_title("OneHeart node")
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text("OneHeart node")
        zones = page.locator('.opblock-summary-path[data-path="/api/zones"]').first
        await expect(zones).to_be_visible()
        # An operation opens (Swagger UI's own scripts work, not only its first render).
        await zones.click()
        await expect(page.locator(".opblock.is-open").first).to_be_visible()
        await zones.click()
        await snap(page, "docs")
        seen = watch(page)
        assert seen.blocked == [], f"requests left loopback: {seen.blocked}"
        assert seen.csp_violations() == [], seen.csp_violations()
        assert seen.errors == [], seen.errors
        assert seen.console == [], seen.console
    finally:
        await page.context.close()


async def test_docs_assets_are_the_nodes_own(node: Node) -> None:
    """The page names only the node's own files (hashed URLs, as the pages'), served with
    the right types."""
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as c:
        page = (await c.get("/docs")).text
        assert "cdn." not in page and "https://" not in page and "<script>" not in page, page
        urls = re.findall(r'(?:src|href)="([^"]+)"', page)
        expected = {
            "/static/vendor/swagger-ui/swagger-ui-bundle.js": "text/javascript",
            "/static/vendor/swagger-ui/swagger-ui-standalone-preset.js": "text/javascript",
            "/static/vendor/swagger-ui/swagger-ui.css": "text/css",
            "/static/vendor/swagger-ui/favicon-32x32.png": "image/png",
            "/static/app/swagger-init.js": "text/javascript",
        }
        assert sorted(u.split("?")[0] for u in urls) == sorted(expected), urls
        for url in urls:
            assert re.search(r"\?v=[0-9a-f]{10}$", url), url
            r = await c.get(url)
            assert r.status_code == 200, (url, r.status_code)
            assert r.headers["content-type"].startswith(expected[url.split("?")[0]]), (url, r.headers)
        # Swagger UI's OAuth2 redirect page (an inline script) is not served: no OAuth2 flows here.
        assert (await c.get("/docs/oauth2-redirect.html")).status_code == 404
