"""The browser kit itself (tests/browser.py): nothing leaves loopback, axe finds what it must
(also under a strict Content-Security-Policy), CSP violations are seen, screenshots are saved."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, Route

from tests.browser import SCREENSHOTS, check_axe, check_fits, new_page, snap, watch

STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'"
# A loopback address nothing listens on: the page kit's routes answer it.
ORIGIN = "http://127.0.0.1:9"

GOOD = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Kit</title></head>
<body><main><h1>Kit</h1><p>Plain text.</p><button type="button">Go</button>
<script>document.title = "inline ran";</script></main></body></html>"""

BAD = """<!DOCTYPE html><html><head><title>Bad</title></head><body>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<button type="button"></button></body></html>"""


async def serve(page: Page, body: str, csp: str | None = None) -> None:
    """Answer ORIGIN/ with ``body`` (and a CSP header) from the page's own route."""
    headers = {"Content-Type": "text/html; charset=utf-8"} | ({"Content-Security-Policy": csp} if csp else {})

    async def answer(route: Route) -> None:
        await route.fulfill(status=200, headers=headers, body=body)

    await page.route(f"{ORIGIN}/", answer)
    await page.goto(f"{ORIGIN}/")


async def test_requests_off_loopback_are_aborted_and_recorded(browser: Browser) -> None:
    page = await new_page(browser, "desktop")
    try:
        await page.set_content('<img alt="" src="https://tile.openstreetmap.org/0/0/0.png">')
        outcome = await page.evaluate(
            """async () => {
                try { await fetch("http://93.184.216.34/"); return "reached"; }
                catch (e) { return "failed"; }
            }"""
        )
        assert outcome == "failed"
        assert watch(page).blocked == ["https://tile.openstreetmap.org/0/0/0.png", "http://93.184.216.34/"]
    finally:
        await page.context.close()


async def test_sizes() -> None:
    with pytest.raises(ValueError, match="size"):
        await new_page(None, "tablet")  # type: ignore[arg-type]


@pytest.mark.parametrize("size", ["phone", "desktop"])
async def test_axe_passes_a_clean_page_under_a_strict_csp(browser: Browser, size: str) -> None:
    page = await new_page(browser, size)  # type: ignore[arg-type]
    try:
        await serve(page, GOOD, STRICT_CSP)
        assert await page.title() == "Kit"  # the inline script was refused ...
        assert watch(page).csp_violations(), watch(page).console  # ... and the refusal seen
        assert await check_axe(page) == []
        shot = await snap(page, "kit")
        assert shot == SCREENSHOTS / f"kit-{size}.png" and shot.stat().st_size > 0
        viewport = await page.evaluate("() => [window.innerWidth, matchMedia('(pointer: coarse)').matches]")
        assert viewport == ([360, True] if size == "phone" else [1280, False])
        await check_fits(page)
    finally:
        await page.context.close()


async def test_axe_lists_serious_and_critical_violations(browser: Browser) -> None:
    page = await new_page(browser, "phone")
    try:
        await serve(page, BAD, STRICT_CSP)
        with pytest.raises(pytest.fail.Exception) as failed:
            await check_axe(page)
        message = str(failed.value)
        for rule in ("image-alt", "button-name", "html-has-lang"):
            assert rule in message, message
        assert 'at ["img"] <img src="data:image/gif' in message, message  # where, readable
    finally:
        await page.context.close()


async def test_check_fits_names_what_sticks_out(browser: Browser) -> None:
    page = await new_page(browser, "phone")
    try:
        wide = GOOD.replace(
            "<p>Plain text.</p>", '<p>Plain text.</p><div class="row"><img alt="" width="400" height="10"></div>'
        )
        await serve(page, wide, STRICT_CSP)
        with pytest.raises(pytest.fail.Exception) as failed:
            await check_fits(page)
        assert "in a 360px viewport" in str(failed.value) and "- img (right edge" in str(failed.value), failed.value
    finally:
        await page.context.close()
