"""Browser tests with Playwright (async API) and Debian's Chromium, kept off the internet.

The suite runs pytest-asyncio in auto mode on one session loop, so this kit uses
``playwright.async_api``. Chromium is the machine's (``apt-get install chromium``; scripts/test
installs it); Playwright's own browser downloads are never used.

- ``browser`` (session fixture): headless Chromium.
- ``await new_page(browser, "phone" | "desktop", **context_kwargs)``: a page in a fresh context
  of that size (phone: 360x640, mobile with touch; desktop: 1280x800). Every request whose host
  is not loopback is aborted and recorded (``watch(page).blocked``); console errors and uncaught
  exceptions are recorded too (``watch(page).console``, ``watch(page).errors``). Close it with
  ``await page.context.close()``.
- ``await check_axe(page)``: runs axe-core (web/node_modules/axe-core) on the page and fails
  listing the serious and critical violations.
- ``await check_fits(page)``: fails when the page is wider than its viewport (a phone would
  scroll sideways or zoom out), naming the innermost elements that stick out.
- ``await snap(page, name)``: a full-page screenshot, test-artifacts/screenshots/<name>-<size>.png.
"""

from __future__ import annotations

import json
import shutil
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import Browser, ConsoleMessage, Error, Page, ProxySettings, Route, async_playwright, expect

REPO = Path(__file__).resolve().parent.parent
AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
# A second wall behind the request routes (which see only what pages fetch): Chromium, and
# Playwright's own fetches (route.fetch), send everything not on loopback to a proxy that is
# not there.
DEAD_PROXY: ProxySettings = {"server": "http://127.0.0.1:9", "bypass": "127.0.0.1,localhost,[::1]"}
Size = Literal["phone", "desktop"]
SIZES: dict[str, dict[str, Any]] = {
    "phone": {"viewport": {"width": 360, "height": 640}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}
TIMEOUT_MS = 20_000
# Assertions wait as long as actions do: on a loaded 2-core CI machine a sign-in round trip
# (app, provider, callback) can take longer than Playwright's 5 s default.
expect.set_options(timeout=TIMEOUT_MS)


@dataclass
class Watch:
    """What a page did besides what the test looks at."""

    size: str
    blocked: list[str] = field(default_factory=list)  # URLs off loopback, aborted
    console: list[str] = field(default_factory=list)  # console errors ("error: text (url:line)")
    errors: list[str] = field(default_factory=list)  # uncaught exceptions in the page

    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]


_watches: weakref.WeakKeyDictionary[Page, Watch] = weakref.WeakKeyDictionary()


def watch(page: Page) -> Watch:
    """The record of a page made by new_page."""
    return _watches[page]


def is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in {"data", "blob", "about"}:
        return True
    return (parts.hostname or "") in LOOPBACK


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(pytestconfig: pytest.Config) -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, for the whole session."""
    wanted = pytestconfig.getoption("--browser", default=None) or []
    if any(name != "chromium" for name in wanted):
        pytest.fail(f"tests/browser.py drives Debian's chromium only (--browser {' '.join(wanted)})")
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is missing: apt-get install chromium (scripts/test installs it)")
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS, proxy=DEAD_PROXY
        )
        try:
            yield launched
        finally:
            await launched.close()


async def new_page(browser: Browser, size: Size = "phone", **context_kwargs: Any) -> Page:
    """A page in a new context of the given size; requests off loopback are aborted."""
    if size not in SIZES:
        raise ValueError(f"size is one of {sorted(SIZES)}, not {size!r}")
    options: dict[str, Any] = {"service_workers": "block", **SIZES[size], **context_kwargs}
    context = await browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    record = Watch(size)

    async def guard(route: Route) -> None:
        url = route.request.url
        if is_loopback(url):
            await route.continue_()
        else:
            record.blocked.append(url)
            await route.abort("blockedbyclient")

    await context.route("**/*", guard)
    page = await context.new_page()
    _watches[page] = record

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location
            record.console.append(f"{message.type}: {message.text} ({where.get('url')}:{where.get('lineNumber')})")

    def on_error(error: Error) -> None:
        record.errors.append(f"{error.name}: {error.message}")

    page.on("console", on_console)
    page.on("pageerror", on_error)
    return page


async def check_axe(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is; fail listing the violations of those impacts. The
    violations of lesser impact are returned.

    axe is evaluated through the DevTools protocol rather than added as a <script> tag, so a
    page's Content-Security-Policy (``script-src 'self'``) does not keep it out."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` in web/ (scripts/test does)")
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(AXE.read_text())
    result = await page.evaluate(
        """async () => {
            const r = await window.axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({target: n.target, html: n.html, summary: n.failureSummary})),
            }));
        }"""
    )
    bad = [v for v in result if v["impact"] in impacts]
    if bad:
        lines = [f"axe: {len(bad)} {'/'.join(impacts)} violation(s) on {page.url}"]
        for v in bad:
            lines.append(f"- [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
            for node in v["nodes"][:10]:
                snippet = " ".join(str(node["html"]).split())
                snippet = snippet if len(snippet) <= 120 else snippet[:117] + "..."
                fixes = [" ".join(line.split()) for line in str(node["summary"] or "").splitlines() if line.strip()]
                lines.append(f"    at {json.dumps(node['target'])} {snippet}")
                lines += [f"      {fix}" for fix in fixes]
            if len(v["nodes"]) > 10:
                lines.append(f"    ... and {len(v['nodes']) - 10} more")
        pytest.fail("\n".join(lines), pytrace=False)
    return [v for v in result if v["impact"] not in impacts]


async def check_fits(page: Page) -> None:
    """Fail when the page is wider than the viewport it was opened at, naming the innermost
    elements that stick out (a mobile browser widens its layout viewport to fit them, so
    window.innerWidth is no measure)."""
    width = (page.viewport_size or {"width": 0})["width"]
    found = await page.evaluate(
        """(width) => {
            const out = [...document.querySelectorAll("body *")].filter(
                (e) => e.getBoundingClientRect().right > width + 0.5);
            const inner = out.filter((e) => !out.some((o) => o !== e && e.contains(o)));
            const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
                + [...e.classList].map((c) => "." + c).join("");
            const edge = (e) => Math.round(e.getBoundingClientRect().right);
            return {scroll: document.documentElement.scrollWidth,
                    inner: inner.slice(0, 10).map((e) => `${name(e)} (right edge ${edge(e)}px)`)};
        }""",
        width,
    )
    if found["scroll"] > width:
        listed = "\n".join(f"- {item}" for item in found["inner"]) or "- (no element found: a margin or a transform?)"
        pytest.fail(
            f"{page.url} is {found['scroll']}px wide in a {width}px viewport; sticking out:\n{listed}", pytrace=False
        )


async def snap(page: Page, name: str) -> Path:
    """Save a full-page screenshot to test-artifacts/screenshots/<name>-<size>.png; its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{watch(page).size}.png"
    await page.screenshot(path=path, full_page=True)
    return path
