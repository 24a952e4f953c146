"""The API docs page (/docs) in a real browser: Swagger UI comes from the node itself (no CDN),
renders the node's operations at phone and desktop sizes, and works under a strict
Content-Security-Policy (the node's own once it sends one; a strict one added here until then)."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, expect

from tests.browser import new_page, snap, watch
from tests.conftest import Node

# What the docs page must work under: nothing inline, nothing from elsewhere.
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


async def with_csp(page: Page, url: str) -> list[str]:
    """Give the page at ``url`` a strict CSP when the node sends none; the policies in effect."""
    seen: list[str] = []

    async def answer(route: Route) -> None:
        response = await route.fetch()
        headers = dict(response.headers)
        policy = headers.get("content-security-policy") or STRICT_CSP
        seen.append(policy)
        await route.fulfill(response=response, headers={**headers, "content-security-policy": policy})

    await page.route(url, answer)
    return seen


@pytest.mark.parametrize("size", ["phone", "desktop"])
async def test_docs_render_swagger_ui_from_the_node(browser: Browser, node: Node, size: str) -> None:
    page = await new_page(browser, size)  # type: ignore[arg-type]
    try:
        policies = await with_csp(page, f"{node.url}/docs")
        response = await page.goto(f"{node.url}/docs")
        assert response is not None and response.status == 200
        assert policies and "script-src" in policies[0], policies
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
    """The page names only the node's own files, and they are served with the right types."""
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as c:
        page = (await c.get("/docs")).text
        assert "cdn." not in page and "https://" not in page and "<script>" not in page, page
        types = {
            "/static/vendor/swagger-ui-dist/swagger-ui-bundle.js": "text/javascript",
            "/static/vendor/swagger-ui-dist/swagger-ui-standalone-preset.js": "text/javascript",
            "/static/vendor/swagger-ui-dist/swagger-ui.css": "text/css",
            "/docs/swagger-init.js": "text/javascript",
        }
        for path, media in types.items():
            assert f'"{path}"' in page, path
            r = await c.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith(media), (path, r.headers)
        # Swagger UI's OAuth2 redirect page (an inline script) is not served: no OAuth2 flows here.
        assert (await c.get("/docs/oauth2-redirect.html")).status_code == 404
