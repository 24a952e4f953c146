"""The player app's quest pages in a real browser: quests near the player on a map and in a
list (nearest first), one quest and its start button, the capture page sending a real
photograph with where and when it was taken, the offline queue, refusals, and the PWA.

Everything is real: the node (its web app, the built-in provider), a worker (relay,
verification, impact), js-ipfs, Postgres, NATS, and Debian's Chromium. The browser's position
is set in its context (``geolocation``); no tile server is configured, and no request may leave
loopback.
"""

from __future__ import annotations

import io
import json
import os
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from devstack.seed import SEED_USER
from PIL import Image
from playwright.async_api import Browser, Page, Route, expect

from core.routing import Router
from tests import webfixtures
from tests.browser import check_axe, check_fits, new_page, snap, watch
from tests.conftest import Env, Node, Proc, eventually, rows
from tests.photos import jpeg
from tests.test_quests import make_quest, make_zone
from tests.webfixtures import Web, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")
web = webfixtures.web  # the session's web app (pytest finds a fixture by its name here)

# Bornholm, far from the zones other tests make around Copenhagen and Aarhus: a beach zone at
# Rønne, the harbour next to it, and Hammershus castle ~19 km north.
BEACH = {"name": "Rønne beach", "lat": 55.1000, "lng": 14.7000, "radius_m": 800}
HARBOUR = {"name": "Rønne harbour", "lat": 55.0925, "lng": 14.6880, "radius_m": 500}
CASTLE = {"name": "Hammershus", "lat": 55.2717, "lng": 14.7566, "radius_m": 500}
# A photograph no earlier proof resembles, per size (another test's would be a duplicate).
PHOTO_CROPS = {"phone": (0.0, 0.0, 0.5, 1.0), "desktop": (0.5, 0.0, 1.0, 1.0)}
# The player stands on the beach, 40 m from its centre.
HERE = {"latitude": 55.1003, "longitude": 14.7004, "accuracy": 9}


@pytest.fixture(scope="module")
def player_worker(env: Env, router: Router, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """Relay, verification and impact: a proof is checked, decided and paid."""
    w = Proc(env, ["worker"], tmp_path_factory.mktemp("web-quests") / "worker.log").start()
    yield w
    w.kill(signal.SIGTERM)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def area(node: Node) -> dict[str, Any]:
    """Zones and quests around Rønne; titles carry this run's tag so only ours are counted."""
    tag = uuid.uuid4().hex[:6]
    beach = await make_zone(node, {**BEACH, "name": f"{BEACH['name']} {tag}"})
    harbour = await make_zone(node, {**HARBOUR, "name": f"{HARBOUR['name']} {tag}"})
    castle = await make_zone(node, {**CASTLE, "name": f"{CASTLE['name']} {tag}"})
    made = {
        "beach": await make_quest(
            node, beach, title=f"Clean Rønne beach {tag}", max_completions=5, category="beach_cleanup"
        ),
        "dunes": await make_quest(
            node, beach, title=f"Plant dune grass {tag}", type="story", category="nature", base_xp=120, base_tokens=30
        ),
        "harbour": await make_quest(
            node, harbour, title=f"Harbour litter pick {tag}", category="litter", max_completions=3
        ),
        "castle": await make_quest(
            node, castle, title=f"Castle path walk {tag}", type="community", category="litter", difficulty=3
        ),
    }
    return {"tag": tag, "zones": {"beach": beach, "harbour": harbour, "castle": castle}, "quests": made}


def now_local() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


async def player_page(browser: Browser, web: Web, size: str = "phone", **kw: Any) -> tuple[Page, str]:
    """A new player signed in, in a browser standing on the beach; the page and their user id."""
    page = await new_page(browser, size, geolocation=HERE, permissions=["geolocation"], **kw)  # type: ignore[arg-type]
    await sign_in(page, web, web.player("quester"))
    await page.goto(f"{web.url}/app/quests")
    user_id = await page.locator("#queue-count").get_attribute("data-player")
    assert user_id
    return page, user_id


def titles_of(items: list[str], area: dict[str, Any]) -> list[str]:
    """The list's titles that are ours, in the order shown."""
    return [t.strip() for t in items if t.strip().endswith(area["tag"])]


def proofs_of(env: Env, user_id: str) -> list[tuple[Any, ...]]:
    return rows(env.dsn_a, "SELECT id, status, quest_id FROM territory_dk.proofs WHERE player_id = %s", user_id)


async def checked(page: Page) -> None:
    """No serious or critical axe-core violation, and nothing wider than the screen."""
    await check_axe(page)
    await check_fits(page)


def no_leaks(page: Page) -> None:
    seen = watch(page)
    assert seen.blocked == [], f"requests left loopback: {seen.blocked}"
    assert seen.csp_violations() == [], seen.csp_violations()
    assert seen.errors == [], seen.errors


async def choose(page: Page, name: str, data: bytes, mime: str = "image/jpeg") -> None:
    await page.locator("#capture-file").set_input_files({"name": name, "mimeType": mime, "buffer": data})


@pytest.mark.parametrize("size", ["phone", "desktop"])
async def test_a_player_finds_quests_near_them_starts_one_and_sends_a_photo(
    browser: Browser, web: Web, env: Env, area: dict[str, Any], player_worker: Proc, size: str
) -> None:
    page, user_id = await player_page(browser, web, size)
    quests = area["quests"]
    try:
        # The position reached the server: the list is sorted by distance, ours nearest first.
        await expect(page.locator("#list-title")).to_have_text("Open quests, nearest first")
        await expect(page.locator("#position-status")).to_contain_text("within 9 m")
        shown = titles_of(await page.locator("#quest-results .quest-title").all_inner_texts(), area)
        assert shown[2:] == [quests["harbour"]["title"], quests["castle"]["title"]], shown
        assert set(shown[:2]) == {quests["beach"]["title"], quests["dunes"]["title"]}, shown
        beach_item = page.locator(f'[data-quest="{quests["beach"]["id"]}"]')
        await expect(beach_item.locator(".distance")).to_have_text("You are in this zone")
        castle_item = page.locator(f'[data-quest="{quests["castle"]["id"]}"]')
        await expect(castle_item.locator(".distance")).to_have_text("19 km away")
        # The map: zones as areas, one marker per listed quest, the player and their accuracy,
        # on a plain background (no tile server), with a scale.
        listed = await page.locator("#quest-results [data-quest][data-lat]").count()
        await expect(page.locator("#quest-map path.quest-marker")).to_have_count(listed)
        assert await page.locator("#quest-map path.zone-area").count() >= 3
        await expect(page.locator("#quest-map path.player-position")).to_have_count(1)
        await expect(page.locator("#quest-map path.player-accuracy")).to_have_count(1)
        await expect(page.locator("#quest-map .leaflet-control-scale")).to_be_visible()
        assert await page.locator("#quest-map img, #quest-map .leaflet-tile").count() == 0
        await checked(page)
        await snap(page, "quests")

        # Filters: only community quests, still near the player.
        await page.locator("#filter-type").select_option("community")
        await expect(page.locator(f'[data-quest="{quests["beach"]["id"]}"]')).to_have_count(0)
        shown = titles_of(await page.locator("#quest-results .quest-title").all_inner_texts(), area)
        assert shown == [quests["castle"]["title"]], shown
        await expect(page.locator("#quest-map path.quest-marker")).to_have_count(
            await page.locator("#quest-results [data-quest][data-lat]").count()
        )
        await page.locator("#filter-type").select_option("")
        await page.locator("#filter-category").select_option("beach_cleanup")
        await expect(page.locator(f'[data-quest="{quests["dunes"]["id"]}"]')).to_have_count(0)
        await expect(page.locator(f'[data-quest="{quests["beach"]["id"]}"]')).to_have_count(1)

        # The quest: its window, how often, no history yet; start it (a POST) -> the capture page.
        await page.locator(f'[data-quest="{quests["beach"]["id"]}"] a').click()
        await expect(page.locator("h1")).to_have_text(quests["beach"]["title"])
        await expect(page.locator("#quest-window")).to_have_text("Always open")
        await expect(page.locator("#quest-completions")).to_contain_text("up to 5 times")
        await expect(page.locator("#quest-completions")).to_contain_text("0 of 5")
        await checked(page)
        await snap(page, "quest")
        await page.get_by_role("button", name="Start this quest").click()
        await page.wait_for_url(f"**/app/quests/{quests['beach']['id']}/capture")
        await expect(page.locator("#capture-position")).to_contain_text("Within 9 m")
        await checked(page)
        await snap(page, "capture-empty")

        # A real photograph, taken now, inside the zone; it goes up and is checked by the worker.
        await page.evaluate("window.__stayed = true")
        await choose(page, "beach.jpg", jpeg("hubble_deep_field", crop=PHOTO_CROPS[size], taken_at=now_local()))
        await expect(page.locator("#capture-preview img")).to_be_visible()
        await expect(page.locator("#capture-time")).to_contain_text("Taken")
        await page.get_by_role("button", name="Send proof").click()
        status = page.locator("#capture-result .proof-status")
        await expect(status.locator(".proof-state")).to_have_text("Auto-approved", timeout=60_000)
        # The payout arrives with the player's notification: the fragment refreshes itself.
        await expect(status.locator(".earned")).to_contain_text("XP", timeout=30_000)
        await expect(status.locator(".earned")).to_contain_text("Heart tokens")
        assert await page.evaluate("window.__stayed === true")  # no reload
        proof_id = await status.get_attribute("data-proof")
        await expect(status.get_by_role("link", name="See this proof")).to_have_attribute(
            "href", f"/app/proofs/{proof_id}"
        )
        await expect(page.locator("#capture-queue li")).to_have_count(0)
        await checked(page)
        await snap(page, "capture-sent")

        stored = proofs_of(env, user_id)
        assert [(str(p[0]), p[1]) for p in stored] == [(proof_id, "auto_approved")]
        paid = rows(env.dsn_a, "SELECT xp, tokens FROM territory_dk.payouts WHERE proof_id = %s", proof_id)
        shown_xp = await status.locator(".earned").inner_text()
        assert paid and f"{paid[0][0]} XP" in shown_xp and f"{paid[0][1]} Heart tokens" in shown_xp

        # Back on the quest: completed once, in the history.
        await page.goto(f"{web.url}/app/quests/{quests['beach']['id']}")
        await expect(page.locator("#quest-completions")).to_contain_text("1 of 5")
        await expect(page.locator("table.history tbody tr")).to_have_count(1)
        await expect(page.locator("table.history tbody tr")).to_contain_text("Completed")
        no_leaks(page)
    finally:
        await page.context.close()


async def start(page: Page, web: Web, quest_id: str) -> None:
    """Start the quest from its page; the capture page opens and knows the position."""
    await page.goto(f"{web.url}/app/quests/{quest_id}")
    await page.get_by_role("button", name="Start this quest").click()
    await page.wait_for_url(f"**/app/quests/{quest_id}/capture")
    await expect(page.locator("#capture-position")).to_contain_text("Within 9 m")


async def queued(page: Page) -> list[dict[str, Any]]:
    """The captures waiting in this browser's IndexedDB queue (for the signed-in player)."""
    return list(
        await page.evaluate("OneHeart.queue.all().then(items => items.map(i => ({key: i.key, quest: i.quest})))")
    )


def key_rows(env: Env, key: str) -> int:
    [(count,)] = rows(env.dsn_a, "SELECT count(*) FROM territory_dk.idempotency_keys WHERE key = %s", key)
    return int(str(count))


async def test_a_capture_made_offline_waits_on_the_device_and_is_sent_once(
    browser: Browser, web: Web, env: Env, area: dict[str, Any], player_worker: Proc
) -> None:
    page, user_id = await player_page(browser, web, "phone")
    quest = area["quests"]["harbour"]
    try:
        await start(page, web, quest["id"])
        await page.context.set_offline(True)
        await choose(page, "harbour.jpg", jpeg("retina", crop=(0, 0, 0.55, 0.55), taken_at=now_local()))
        await page.get_by_role("button", name="Send proof").click()
        await expect(page.locator("#capture-result .kept")).to_contain_text("You are offline")
        await expect(page.locator("#capture-queue li")).to_have_count(1)
        await expect(page.locator("#capture-queue li")).to_contain_text(quest["title"])
        # A second capture made offline can be discarded (after a confirmation).
        await choose(page, "again.jpg", jpeg("chelsea", taken_at=now_local()))
        await page.get_by_role("button", name="Send proof").click()
        await expect(page.locator("#capture-queue li")).to_have_count(2)
        page.once("dialog", lambda dialog: dialog.accept())
        await page.locator("#capture-queue li").nth(1).get_by_role("button", name="Discard").click()
        await expect(page.locator("#capture-queue li")).to_have_count(1)
        waiting = await queued(page)
        assert len(waiting) == 1 and waiting[0]["quest"] == quest["id"], waiting
        key = waiting[0]["key"]
        assert proofs_of(env, user_id) == [] and key_rows(env, key) == 0
        await checked(page)
        await snap(page, "capture-offline")

        # Back online: sent by itself, shown with its status, gone from the queue.
        await page.context.set_offline(False)
        status = page.locator("#capture-result .proof-status")
        await expect(status).to_be_visible(timeout=30_000)
        await expect(page.locator("#capture-queue li")).to_have_count(0)
        stored = proofs_of(env, user_id)
        assert len(stored) == 1 and str(stored[0][2]) == quest["id"], stored
        assert await status.get_attribute("data-proof") == str(stored[0][0])
        assert key_rows(env, key) == 1
        # Opening the page again sends nothing more.
        await page.reload()
        await expect(page.locator("#capture-queue-empty")).to_be_visible()
        await page.wait_for_timeout(1000)
        assert len(proofs_of(env, user_id)) == 1 and await queued(page) == []
        no_leaks(page)
    finally:
        await page.context.close()


async def test_a_lost_answer_is_sent_again_with_the_same_key_and_stored_once(
    browser: Browser, web: Web, env: Env, area: dict[str, Any], player_worker: Proc
) -> None:
    """The node stores the proof but its answer never reaches the browser: the capture stays
    queued (the quests page counts it) and is sent again, with its key, until an answer comes;
    the node answers the key with its first answer, so there is one proof."""
    page, user_id = await player_page(browser, web, "phone")
    quest = area["quests"]["dunes"]
    keys: list[str | None] = []

    async def lose_the_answer(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key"))
        await route.fetch()  # the node gets the upload and answers...
        await route.abort("connectionreset")  # ...but the browser never hears it

    try:
        await start(page, web, quest["id"])
        await page.route("**/app/quests/*/proofs", lose_the_answer)
        await choose(page, "dunes.jpg", jpeg("retina", crop=(0.45, 0.45, 1, 1), taken_at=now_local()))
        await page.get_by_role("button", name="Send proof").click()
        await expect(page.locator("#capture-result .kept")).to_contain_text("connection failed")
        await expect(page.locator("#capture-queue li")).to_have_count(1)
        assert len(proofs_of(env, user_id)) == 1

        # The quests page counts what waits, and tries again as it opens (lost again).
        await page.goto(f"{web.url}/app/quests")
        await expect(page.locator("#queue-count")).to_be_visible()
        await expect(page.locator("#queue-count [data-count]")).to_have_text("1")
        await eventually(lambda: _true(len(keys) >= 2), timeout=10)
        await checked(page)
        await snap(page, "quests-waiting")

        await page.unroute("**/app/quests/*/proofs", lose_the_answer)
        await page.reload()
        await expect(page.locator("#messages")).to_contain_text(f"Sent: “{quest['title']}”")
        await expect(page.locator("#queue-count")).to_be_hidden()
        assert await queued(page) == []
        key = keys[0]
        assert key and set(keys) == {key}, keys
        stored = proofs_of(env, user_id)
        assert len(stored) == 1, stored
        assert key_rows(env, key) == 1
        assert await page.locator("#messages .proof-status").get_attribute("data-proof") == str(stored[0][0])
        no_leaks(page)
    finally:
        await page.context.close()


async def _true(value: bool) -> bool:
    return value


async def test_bad_files_are_refused_with_a_clear_message_and_nothing_is_stored(
    browser: Browser, web: Web, env: Env, area: dict[str, Any], player_worker: Proc, tmp_path: Path
) -> None:
    page, user_id = await player_page(browser, web, "desktop")
    quest = area["quests"]["castle"]
    max_bytes = env.settings.evidence.evidence_max_bytes
    oversized = b"\xff\xd8\xff" + b"\0" * (max_bytes + 1024 * 1024)
    try:
        await start(page, web, quest["id"])
        # Too large: refused on the device before anything is sent.
        huge = tmp_path / "huge.jpg"
        huge.write_bytes(oversized)
        await page.locator("#capture-file").set_input_files(huge)
        await page.get_by_role("button", name="Send proof").click()
        await expect(page.locator("#capture-result .refused")).to_contain_text("That file is too large")
        assert await queued(page) == []

        # Too large for the page's own route too: the node refuses it with 413 (its body limit).
        csrf = await page.evaluate("OneHeart.csrf()")
        form = {
            "lat": str(HERE["latitude"]),
            "lng": str(HERE["longitude"]),
            "accuracy_m": "9",
            "captured_at": datetime.now(UTC).isoformat(),
        }
        direct = await page.request.post(
            f"{web.url}/app/quests/{quest['id']}/proofs",
            multipart={**form, "file": {"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": oversized}},
            headers={"X-CSRF-Token": csrf, "Idempotency-Key": uuid.uuid4().hex, "HX-Request": "true"},
        )
        assert direct.status == 413, await direct.text()

        # Random bytes named .jpg: the node sniffs them, refuses them, and the queue lets go.
        await choose(page, "holiday.jpg", os.urandom(300_000))
        await page.get_by_role("button", name="Send proof").click()
        refused = page.locator("#capture-result .refused")
        await expect(refused).to_contain_text("That file is not a photo or video we accept. Nothing was stored.")
        await expect(refused).to_have_attribute("data-status", "415")
        assert await queued(page) == []
        await checked(page)
        await snap(page, "capture-refused")
        assert proofs_of(env, user_id) == []
        assert rows(
            env.dsn_a,
            "SELECT status FROM territory_dk.assignments WHERE player_id = %s AND quest_id = %s",
            user_id,
            quest["id"],
        ) == [("active",)]  # still open: the player can try again

        # A large real photograph (more than an ordinary request may carry) is taken.
        # The lower half of the astronaut, blown up: test_proofs sends the whole one in this territory,
        # and the same picture again would be flagged as a duplicate there.
        big = jpeg("astronaut", crop=(0, 0.45, 1, 1), scale=6, quality=100, taken_at=now_local())
        assert len(big) > env.settings.http.request_max_body
        await choose(page, "castle.jpg", big)
        await page.get_by_role("button", name="Send proof").click()
        await expect(page.locator("#capture-result .proof-status")).to_be_visible(timeout=30_000)
        assert len(proofs_of(env, user_id)) == 1
        no_leaks(page)
    finally:
        await page.context.close()


async def test_bad_addresses_and_values_get_an_error_page(browser: Browser, web: Web, area: dict[str, Any]) -> None:
    page, _ = await player_page(browser, web, "phone")
    try:
        for query, words in (
            ("lat=north&lng=14.7", "lat must be a number"),
            ("lat=55.1", "give both lat and lng"),
            ("lat=95&lng=14.7", "lat must be within"),
            ("type=weekly", "type must be one of"),
            ("radius_km=9000", "radius_km must be between"),
        ):
            response = await page.goto(f"{web.url}/app/quests?{query}")
            assert response is not None and response.status == 400, query
            await expect(page.locator(".error .detail")).to_contain_text(words)
        response = await page.goto(f"{web.url}/app/quests/{uuid.uuid4()}")
        assert response is not None and response.status == 404
        await expect(page.locator("h1")).to_have_text("Not found")
        unknown = f"{web.url}/app/quests/{area['quests']['beach']['id']}/proofs/{uuid.uuid4()}"
        response = await page.goto(unknown)
        assert response is not None and response.status == 404
        # Starting without the form's security token changes nothing.
        refused = await page.request.post(f"{web.url}/app/quests/{area['quests']['beach']['id']}/start")
        assert refused.status == 403
    finally:
        await page.context.close()


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


async def cached_urls(page: Page) -> list[str]:
    return list(
        await page.evaluate(
            """() => caches.keys().then(names => Promise.all(names.map(name =>
                   caches.open(name).then(cache => cache.keys()).then(requests => requests.map(r => r.url)))))
                 .then(lists => lists.flat())"""
        )
    )


async def test_the_manifest_names_png_icons_of_both_sizes(web: Web) -> None:
    async with httpx.AsyncClient(base_url=web.url) as c:
        r = await c.get("/app/manifest.webmanifest")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/manifest+json")
        manifest = json.loads(r.content)
        assert manifest["start_url"] == "/app" and manifest["display"] == "standalone"
        sizes: dict[str, set[int]] = {}
        for icon in manifest["icons"]:
            got = await c.get(icon["src"])
            assert got.status_code == 200, icon
            if icon["type"] == "image/png":
                width, height = png_size(got.content)
                assert icon["sizes"] == f"{width}x{height}", icon
                sizes.setdefault(icon.get("purpose", "any"), set()).add(width)
        assert {192, 512} <= sizes["any"] and 512 in sizes["maskable"], sizes
        sw = await c.get("/app/sw.js")
        assert sw.headers["service-worker-allowed"] == "/app"


@pytest.mark.parametrize("size", ["phone", "desktop"])
async def test_the_app_installs_a_service_worker_that_keeps_nothing_personal(
    browser: Browser, web: Web, area: dict[str, Any], size: str
) -> None:
    page, _ = await player_page(browser, web, size, service_workers="allow")
    try:
        registration = await page.evaluate(
            "navigator.serviceWorker.ready.then(r => ({scope: r.scope, script: r.active.scriptURL}))"
        )
        assert registration == {"scope": f"{web.url}/app", "script": f"{web.url}/app/sw.js"}
        cdp = await page.context.new_cdp_session(page)
        installability = await cdp.send("Page.getInstallabilityErrors")
        # Chromium's own checks of the manifest, icons and worker (headless may add its own).
        errors = {e["errorId"] for e in installability["installabilityErrors"]}
        assert not errors - {"in-incognito"}, installability
        # Pages go through the worker (now in control) and are never stored; static files are.
        await page.reload()
        await page.goto(f"{web.url}/app/quests/{area['quests']['beach']['id']}")
        await page.goto(f"{web.url}/app/quests")
        await expect(page.locator("#quest-map path.quest-marker").first).to_be_attached()
        urls = await eventually(lambda: _urls_with_static(page), timeout=10)
        paths = {httpx.URL(u).path for u in urls}
        assert "/app/offline" in paths and any(p.startswith("/static/") for p in paths), paths
        assert all(p.startswith("/static/") or p == "/app/offline" for p in paths), paths

        # Offline, a page that cannot be reached gets the offline page.
        await page.context.set_offline(True)
        await page.goto(f"{web.url}/app/quests")
        await expect(page.locator("h1")).to_have_text("You are offline")
        await expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
        await checked(page)
        await snap(page, "offline")
        await page.context.set_offline(False)

        # Signing out empties the caches: what only the quest pages load is gone (the sign-in
        # page that follows may keep its own static files again).
        await page.goto(f"{web.url}/app/quests")
        assert any("/static/app/quests.js" in u for u in await cached_urls(page))
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url("**/app/signin?signed_out=1")

        async def forgotten() -> bool:
            urls = await cached_urls(page)
            return not any("/static/app/quests.js" in u or "/static/vendor/leaflet/" in u for u in urls)

        await eventually(forgotten, timeout=10)
    finally:
        await page.context.close()


async def _urls_with_static(page: Page) -> list[str] | None:
    urls = await cached_urls(page)
    return urls if any("/static/" in u for u in urls) and any(u.endswith("/app/offline") for u in urls) else None


async def test_stack_seed_gives_a_newcomer_quests_to_play_and_runs_again_as_a_no_op(
    browser: Browser, web: Web, env: Env
) -> None:
    """``oneheart stack seed`` (the development stack's demo content), here for Sápmi only: zones
    and quests around Kautokeino, a reward; a second run creates nothing; a new player standing in
    the village sees the quests nearest first and can start one."""
    first = env.cli("stack", "seed", "--territory", "sami")
    assert "created 2 zones, 3 quests, 1 rewards" in " ".join(first.stdout.split()), first.stdout
    again = env.cli("stack", "seed", "--territory", "sami")
    assert "created 0 zones, 0 quests, 0 rewards" in " ".join(again.stdout.split()), again.stdout
    counted = rows(
        env.dsn_b,
        "SELECT (SELECT count(*) FROM territory_sami.zones WHERE name LIKE 'Guovdageai%%'),"
        " (SELECT count(*) FROM territory_sami.quests WHERE created_by = %s),"
        " (SELECT count(DISTINCT type) FROM territory_sami.quests WHERE created_by = %s)",
        str(SEED_USER),
        str(SEED_USER),
    )
    assert counted == [(2, 3, 3)]
    bad = env.cli("stack", "seed", "--territory", "atlantis", check=False)
    assert bad.returncode == 2

    village = {"latitude": 69.0116, "longitude": 23.0410, "accuracy": 15}
    page = await new_page(browser, "phone", geolocation=village, permissions=["geolocation"])
    try:
        await sign_in(page, web, web.player("newcomer"), territory="sami")
        await page.goto(f"{web.url}/app/quests")
        await expect(page.locator("#list-title")).to_have_text("Open quests, nearest first")
        first_two = await page.locator("#quest-results .quest-title").all_inner_texts()
        assert set(first_two[:2]) == {"Share a Sámi word a day", "Help an elder with firewood"}, first_two
        await page.get_by_role("link", name="Share a Sámi word a day").click()
        await page.get_by_role("button", name="Start this quest").click()
        await expect(page.locator("h1")).to_have_text("Capture proof")
        no_leaks(page)
    finally:
        await page.context.close()
    # Far from every zone (Karasjok, ~100 km), in a browser that does not tell where it is:
    # nothing near, and the territory's quests all the same.
    page = await new_page(browser, "desktop")
    try:
        await sign_in(page, web, web.player("faraway"), territory="sami")
        await page.goto(f"{web.url}/app/quests?lat=69.47&lng=25.51&radius_km=25")
        await expect(page.locator("#quest-results .message")).to_contain_text("No open quests within 25 km of you")
        await expect(page.locator("#quest-results .elsewhere")).to_be_visible()
        await expect(page.get_by_role("link", name="Share a Sámi word a day")).to_be_visible()
        await expect(page.locator("#locate")).to_be_visible()  # the position is asked for, not taken
        await checked(page)
        await snap(page, "quests-nothing-near")
    finally:
        await page.context.close()
