"""Player app benchmark (issue 11). Prints ratios against baselines measured in the same run.

1. Server time of each page against the JSON API calls that carry the same data, one after
   the other on loopback (medians of many requests, alternating): goal, a page costs at most
   1.5x its API calls.
2. Bytes of JS + CSS a player's browser loads for the app's pages, gzip-compressed as the node
   sends them: goal, at most 200 KB with the map library.
3. The time from "upload" on the capture page to "auto-approved" visible in Chromium (the
   worker verifies the photo; the page hears it over the live stream).

Run after ``oneheart stack up``: ``.venv/bin/python scripts/bench/web.py [--quick]``.
Uses a scratch database ``oh_bench_web`` on the stack's Postgres, the stack's Redis and IPFS,
and Debian's chromium (installed by scripts/test).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.auth import Identity, issue_access, node_keys
from core.settings import Settings
from scripts.bench.common import PY, cli, env_for, free_port, scratch_database, start
from services.auth.dto import TokenPair
from services.auth.sessions import Sessions, cookie_name

TERRITORY = "bench_web"
LAT, LNG = 55.6761, 12.5683
# Each page and the JSON API calls that give the data it shows.
PAGES: list[tuple[str, list[str]]] = [
    ("/app", ["/api/impact/me", "/api/notifications?limit=5", "/api/impact/badges"]),
    (f"/app/quests?lat={LAT}&lng={LNG}", [f"/api/quests?lat={LAT}&lng={LNG}", "/api/zones"]),
    ("/app/proofs", ["/api/proofs"]),
    ("/app/notifications", ["/api/notifications"]),
    ("/app/leaderboards", ["/api/leaderboard?scope=territory&period=week", "/api/impact/me"]),
    ("/app/wallet", ["/api/tokens/balance", "/api/ledger?mine=true"]),
    ("/app/rewards", ["/api/rewards", "/api/rewards/redemptions"]),
    ("/app/profile", ["/api/players/me", "/api/social/links"]),
]
ASSET = re.compile(r'<(?:script[^>]+src|link[^>]+rel="stylesheet"[^>]+href)="([^"]+)"')


async def session_cookie(settings: Settings, user_id: uuid.UUID) -> dict[str, str]:
    """A signed-in browser of a player: a session made the way /app/callback makes one."""
    import redis.asyncio as aioredis

    identity = Identity(user_id, TERRITORY, {TERRITORY: ["player"]})
    access = issue_access(node_keys(settings).load(), settings, identity)
    redis = aioredis.from_url(settings.redis.url)
    try:
        sid, _ = await Sessions(redis, settings).create(
            TokenPair(access, "Bearer", settings.auth.access_token_ttl, "bench-refresh-" + uuid.uuid4().hex), identity
        )
    finally:
        await redis.aclose()
    return {cookie_name(settings): sid}


async def timed(c: httpx.AsyncClient, path: str, **kw: object) -> float:
    started = time.perf_counter()
    r = await c.get(path, **kw)  # type: ignore[arg-type]
    took = time.perf_counter() - started
    if r.status_code != 200:
        raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:300]}")
    return took * 1000


async def pages_vs_api(
    url: str, cookies: dict[str, str], bearer: dict[str, str], rounds: int
) -> list[tuple[str, float, float]]:
    out = []
    async with (
        httpx.AsyncClient(base_url=url, cookies=cookies, timeout=30) as browser,
        httpx.AsyncClient(base_url=url, headers=bearer, timeout=30) as app,
    ):
        for path, calls in PAGES:
            for _ in range(20):  # warm up both
                await timed(browser, path)
                for call in calls:
                    await timed(app, call)
            page_ms, api_ms = [], []
            for _ in range(rounds):  # alternate, so drift in machine load hits both sides alike
                page_ms.append(await timed(browser, path))
                api_ms.append(sum([await timed(app, call) for call in calls]))
            out.append((path, statistics.median(page_ms), statistics.median(api_ms)))
    return out


async def asset_bytes(url: str, cookies: dict[str, str]) -> tuple[int, int, dict[str, int]]:
    """(compressed, uncompressed, per file) bytes of every script and stylesheet the pages load."""
    files: dict[str, int] = {}
    raw = 0
    async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=30) as c:
        for path, _ in PAGES:
            html = (await c.get(path)).text
            for asset in ASSET.findall(html):
                if asset in files:
                    continue
                async with c.stream("GET", asset.replace("&amp;", "&"), headers={"Accept-Encoding": "gzip"}) as r:
                    body = b"".join([chunk async for chunk in r.aiter_raw()])
                    files[asset] = len(body)
                    raw += len(await _plain(c, asset))
    return sum(files.values()), raw, files


async def _plain(c: httpx.AsyncClient, asset: str) -> bytes:
    return (await c.get(asset.replace("&amp;", "&"), headers={"Accept-Encoding": "identity"})).content


async def upload_to_approved(url: str, cookies: dict[str, str], quest_id: str) -> float:
    """Seconds from pressing "Upload" on the capture page to "auto-approved" shown, in Chromium."""
    from playwright.async_api import async_playwright

    from tests.photos import jpeg

    photo = Path(tempfile.mkdtemp()) / "photo.jpg"
    photo.write_bytes(jpeg("chelsea"))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )  # fmt: skip
        context = await browser.new_context(
            geolocation={"latitude": LAT, "longitude": LNG, "accuracy": 8}, permissions=["geolocation"]
        )
        host = url.split("//", 1)[1].split(":")[0]
        await context.add_cookies([{"name": k, "value": v, "domain": host, "path": "/"} for k, v in cookies.items()])
        page = await context.new_page()
        await page.goto(f"{url}/app/quests/{quest_id}")
        start_button = page.get_by_role("button", name=re.compile("start", re.I))
        if await start_button.count():
            await start_button.first.click()
        await page.goto(f"{url}/app/quests/{quest_id}/capture")
        await page.locator('input[type="file"]').set_input_files(str(photo))
        started = time.perf_counter()
        await page.get_by_role("button", name=re.compile("upload|send", re.I)).first.click()
        await page.get_by_text(re.compile("auto-approved", re.I)).first.wait_for(timeout=120_000)
        took = time.perf_counter() - started
        await browser.close()
    return took


def main() -> None:
    quick = "--quick" in sys.argv
    rounds = 40 if quick else 200
    dsn = scratch_database("oh_bench_web")
    data = Path(tempfile.mkdtemp(prefix="oh-bench-web-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = env_for(dsn, data, OH_RATE_LIMIT_API="100000000/60", OH_PUBLIC_URL=url)
    settings = Settings(data_dir=data).replace(
        registry={"dsn": dsn}, http={"public_url": url}, redis={"url": env.get("OH_REDIS_URL", Settings().redis.url)}
    )
    cli(env, "registry", "init")
    cli(env, "server", "add", "main", dsn, "--region", "bench")
    cli(env, "territory", "create", TERRITORY, "--name", "Bench web", "--server", "main")
    cli(env, "auth", "ensure-key")
    node = start([PY, "-m", "node", "serve", "--port", str(port)], env, port, "/health")
    worker = start([PY, "-m", "node", "worker"], env, port, "/health")
    player = uuid.uuid4()
    staff = {"Authorization": "Bearer " + issue_access(node_keys(settings).load(), settings,
             Identity(uuid.uuid4(), TERRITORY, {TERRITORY: ["operator", "player"]}))}  # fmt: skip
    bearer = {"Authorization": "Bearer " + issue_access(node_keys(settings).load(), settings,
              Identity(player, TERRITORY, {TERRITORY: ["player"]}))}  # fmt: skip
    try:
        quest_id = asyncio.run(seed(url, staff, bearer))
        cookies = asyncio.run(session_cookie(settings, player))
        results = asyncio.run(pages_vs_api(url, cookies, bearer, rounds))
        print(f"\n1. server time of a page against its JSON API calls (median of {rounds}, sequential, loopback)")
        worst = 0.0
        for path, page_ms, api_ms in results:
            worst = max(worst, page_ms / api_ms)
            print(f"   {path:44s} page {page_ms:6.2f} ms   API {api_ms:6.2f} ms   ratio {page_ms / api_ms:.2f}")
        print(f"   worst ratio page/API = {worst:.2f}   (goal <= 1.5)")
        compressed, plain, files = asyncio.run(asset_bytes(url, cookies))
        print("\n2. JS + CSS the app's pages load")
        for name, size in sorted(files.items(), key=lambda kv: -kv[1]):
            print(f"   {size / 1024:7.1f} KB  {name.split('?')[0]}")
        print(f"   total {compressed / 1024:.1f} KB gzip ({plain / 1024:.1f} KB uncompressed)   (goal <= 200 KB)")
        seconds = asyncio.run(upload_to_approved(url, cookies, quest_id))
        print(f"\n3. upload to auto-approved visible in Chromium: {seconds:.2f} s (the worker verifies it)")
    finally:
        worker.stop()
        node.stop()


async def seed(url: str, staff: dict[str, str], player: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=url, headers=staff, timeout=30) as c:
        zone = (
            await c.post("/api/zones", json={"name": "Bench park", "lat": LAT, "lng": LNG, "radius_m": 1500})
        ).json()
        quest_id = ""
        for i in range(12):
            r = await c.post(
                "/api/quests",
                json={"title": f"Bench quest {i}", "type": "daily", "category": ["waste", "nature", "care"][i % 3],
                      "zone_id": zone["id"], "base_xp": 10, "base_tokens": 2, "difficulty": 1},
            )  # fmt: skip
            r.raise_for_status()
            quest_id = quest_id or r.json()["id"]
    async with httpx.AsyncClient(base_url=url, headers=player, timeout=30) as c:
        (await c.post(f"/api/quests/{quest_id}/start")).raise_for_status()  # the player exists from here on
    return quest_id


if __name__ == "__main__":
    main()
