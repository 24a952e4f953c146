"""The player app's people pages in Chromium against the real node and worker: home (level,
XP, Heart tokens, streak, badges after a real payout), the unread count in the navigation
following notifications live, the notifications page, leaderboards (own rank, opted-out
players left out) and the profile (name, language, leaderboards, Matrix link code, zone room).

Every page is opened at phone and desktop size, checked with axe (no serious or critical
violation) and saved as a screenshot (test-artifacts/screenshots/people-*)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from core.routing import Router
from territories.registry import Registry
from tests.browser import check_axe, check_fits, new_page, snap, watch
from tests.conftest import Env, Node, Proc, eventually, rows
from tests.test_auth import provider_for
from tests.test_impact import approved, paid
from tests.test_quests import AARHUS, AMAGER, make_quest, make_zone
from tests.webfixtures import Web, sign_in, web  # noqa: F401  (the web fixture)

HOMESERVER = "people.test"
SIZES = ("phone", "desktop")


@dataclass
class Land:
    """A territory of its own (leaderboards and notifications of nobody else), with a
    Matrix homeserver name, sign-in through the built-in provider, two zones and quests."""

    code: str
    name: str
    zone: uuid.UUID
    other_zone: uuid.UUID
    quest: uuid.UUID  # difficulty 3, 50 XP, 10 tokens: pays 75 XP and 15 tokens at level 1
    small_quest: uuid.UUID  # 10 XP, 1 token, difficulty 1
    dsn: str
    signed: dict[str, uuid.UUID] = field(default_factory=dict)

    @property
    def schema(self) -> str:
        return f"territory_{self.code}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def land(env: Env, router: Router, node: Node, web: Web) -> Land:  # noqa: F811
    return await make_land(env, router, node)


async def make_land(env: Env, router: Router, node: Node) -> Land:
    code = f"pp_{uuid.uuid4().hex[:8]}"
    name = f"People {code[3:]}"
    await Registry(router, "test").create_territory(code, name, "a", matrix_homeserver=HOMESERVER)
    provider_for(env, node, code, node)
    zone = uuid.UUID(await make_zone(node, {**AMAGER, "name": "Amager beach"}, territory=code))
    other = uuid.UUID(await make_zone(node, {**AARHUS, "name": "Aarhus harbour"}, territory=code))
    quest = await make_quest(node, str(zone), territory=code, difficulty=3, max_completions=100)
    small = await make_quest(
        node, str(zone), territory=code, difficulty=1, base_xp=10, base_tokens=1, max_completions=100
    )
    return Land(code, name, zone, other, uuid.UUID(str(quest["id"])), uuid.UUID(str(small["id"])), env.dsn_a)


def user_id(env: Env, username: str) -> uuid.UUID:
    """The person an account of the built-in provider signed in as."""
    found = rows(
        env.dsn_a,
        "SELECT u.id FROM global.users u JOIN global.idp_accounts a ON u.subject = a.id::text WHERE a.username = %s",
        username,
    )
    assert found, f"{username} never signed in"
    return uuid.UUID(str(found[0][0]))


async def signed_in(browser: Browser, web: Web, land: Land, username: str, size: str) -> Page:  # noqa: F811
    page = await new_page(browser, size)  # type: ignore[arg-type]
    await sign_in(page, web, username, territory=land.code)
    land.signed[username] = user_id(web.env, username)
    return page


def api(node: Node, land: Land, player: uuid.UUID) -> httpx.AsyncClient:
    """The JSON API as that player (a node token, as the mobile app holds)."""
    headers = node.auth(home=land.code, roles={land.code: ["player"]}, user_id=player)
    return httpx.AsyncClient(base_url=node.url, headers=headers, timeout=30)


def clean(page: Page) -> None:
    """Nothing off loopback was fetched, no CSP violation, no script error."""
    seen = watch(page)
    assert not seen.blocked, seen.blocked
    assert not seen.csp_violations(), seen.csp_violations()
    assert not seen.errors, seen.errors


async def look(page: Page, name: str) -> None:
    """axe finds nothing serious, the page fits its width, and a screenshot to look at."""
    await check_axe(page)
    await check_fits(page)
    await snap(page, f"people-{name}")


# --- home and notifications ---------------------------------------------------------------
async def test_home_shows_a_payout_live_and_the_unread_count_follows(
    browser: Browser,
    web: Web,  # noqa: F811
    land: Land,
    router: Router,
    env: Env,
    worker: Proc,
) -> None:
    username = web.player("home")
    phone = await signed_in(browser, web, land, username, "phone")
    desktop = await signed_in(browser, web, land, username, "desktop")
    me = land.signed[username]
    fetched: list[str] = []
    phone.on("request", lambda r: fetched.append(r.url))
    try:
        for page in (phone, desktop):
            await page.goto(f"{web.url}/app")
            await expect(page.locator("#level-title")).to_have_text("Level 1")
            await expect(page.locator("#xp")).to_have_text("0")
            await expect(page.locator("#unread")).to_be_empty()
            await expect(page.locator("#streak")).to_have_text("No streak yet")
        await look(phone, "home-new")
        # The count loaded once, and stays quiet until a notification comes (no polling loop).
        await phone.wait_for_timeout(1500)
        assert len([u for u in fetched if u.endswith("/app/notifications/unread")]) == 1, fetched

        # A real payout: a proof auto-approved as the verification worker does, paid by the worker.
        proof = await approved(router, land.code, land.quest, me)
        assert (await paid(env, "a", land.code, proof))["xp"] == 75
        # Both open pages change without a reload: standing, notifications, the bell's count.
        for page in (phone, desktop):
            await expect(page.locator("#xp")).to_have_text("75", timeout=20_000)
            await expect(page.locator("#tokens")).to_have_text("15")
            await expect(page.locator("#streak")).to_have_text("🔥 1 day in a row")
            await expect(page.locator("#level-progress")).to_have_attribute("value", "75")
            await expect(page.locator("#level-progress")).to_have_attribute("max", "100")
            await expect(page.locator("#level-text")).to_have_text("75 of 100 XP; 25 XP to go.")
            # The payout and the first badge.
            await expect(page.locator("#unread .visually-hidden")).to_have_text("2 unread", timeout=20_000)
            await expect(page.locator("#badges .badges-held")).to_contain_text("First heart")
            await expect(page.locator("#recent")).to_contain_text("+75 XP, +15 Heart tokens")
            await expect(page.locator("#recent")).to_contain_text("New badge: First heart")
            await expect(page.locator("a.bell")).to_have_accessible_name("Notifications 2 unread")
            await expect(page.locator("#unread [aria-hidden=true]")).to_have_text("2")
        # The next badges, with how far along: 1 of 5 for the monthly regular.
        await expect(desktop.locator("#badges .badges-next")).to_contain_text("Monthly regular")
        await expect(desktop.locator("#badges .badges-next")).to_contain_text("1 of 5 good deeds")
        for page in (phone, desktop):
            await look(page, "home")
            clean(page)

        # The notifications page: rendered by kind, newest first.
        await phone.goto(f"{web.url}/app/notifications")
        items = phone.locator("#notification-list li.note")
        await expect(items).to_have_count(2)
        await expect(items.nth(0)).to_contain_text("New badge: First heart")
        await expect(items.nth(1)).to_contain_text("+75 XP, +15 Heart tokens")
        await expect(items.nth(1)).to_contain_text("For “Beach clean-up”.")
        await look(phone, "notifications")
        await desktop.goto(f"{web.url}/app/notifications")
        await look(desktop, "notifications")

        # New notifications appear on the open page without a reload (a second payout takes
        # the player to level 2): the list and the count rise.
        second = await approved(router, land.code, land.quest, me)
        await paid(env, "a", land.code, second)
        await expect(phone.locator("#notification-list li.note")).to_have_count(4, timeout=20_000)
        await expect(phone.locator("#notification-list li.note").nth(0)).to_contain_text("Level 2!")
        await expect(phone.locator("#unread .visually-hidden")).to_have_text("4 unread")

        # Mark one read: the count falls by one, that one is no longer marked new.
        await (
            phone.locator("#notification-list li.note")
            .nth(0)
            .get_by_role("button", name=re.compile("^Mark read"))
            .click()
        )
        await expect(phone.locator("#unread .visually-hidden")).to_have_text("3 unread")
        await expect(phone.locator("#notification-list li.note.unread")).to_have_count(3)
        assert rows(
            land.dsn, f"SELECT count(*) FROM {land.schema}.notifications WHERE player_id = %s AND read_at IS NULL", me
        ) == [(3,)]
        # Mark all read: the count is gone (empty, hidden), the button is disabled.
        await phone.get_by_role("button", name="Mark all read").click()
        await expect(phone.locator("#unread")).to_be_empty()
        await expect(phone.get_by_role("button", name="Mark all read")).to_be_disabled()
        await expect(phone.locator("a.bell")).to_have_accessible_name("Notifications")
        # The other window's count follows at its next update (here: a reload).
        await desktop.reload()
        await expect(desktop.locator("#unread")).to_be_empty()
        await look(phone, "notifications-read")
        clean(phone)
    finally:
        await phone.context.close()
        await desktop.context.close()


async def test_someone_elses_notification_cannot_be_marked_read(
    browser: Browser,
    web: Web,  # noqa: F811
    land: Land,
    router: Router,
    env: Env,
    worker: Proc,
) -> None:
    other = uuid.uuid4()
    proof = await approved(router, land.code, land.small_quest, other)
    await paid(env, "a", land.code, proof)
    theirs = rows(land.dsn, f"SELECT id FROM {land.schema}.notifications WHERE player_id = %s", other)[0][0]
    username = web.player("nosy")
    page = await signed_in(browser, web, land, username, "phone")
    try:
        await page.goto(f"{web.url}/app/notifications")
        csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
        # A plain form post, as a hand-made form would send it.
        status = await page.evaluate(
            """async ([id, csrf]) => (await fetch(`/app/notifications/${id}/read`, {method: "POST",
                 headers: {"Content-Type": "application/x-www-form-urlencoded"},
                 body: new URLSearchParams({csrf}), redirect: "manual"})).status""",
            [theirs, csrf],
        )
        assert status == 404
        assert rows(land.dsn, f"SELECT read_at FROM {land.schema}.notifications WHERE id = %s", theirs) == [(None,)]
    finally:
        await page.context.close()


# --- leaderboards --------------------------------------------------------------------------
async def test_leaderboards_show_my_rank_and_leave_out_who_opted_out(
    browser: Browser,
    web: Web,  # noqa: F811
    node: Node,
    router: Router,
    env: Env,
    worker: Proc,
) -> None:
    land = await make_land(env, router, node)  # a board of this test's players only
    username = web.player("ranked")
    phone = await signed_in(browser, web, land, username, "phone")
    me = land.signed[username]
    # Eleven players with a 50 XP quest's payout, named through the API; the viewer earns less.
    others = [uuid.uuid4() for _ in range(11)]
    for i, player in enumerate(others):
        async with api(node, land, player) as c:
            proof = await approved(router, land.code, land.quest, player)
            await paid(env, "a", land.code, proof)
            r = await c.patch("/api/players/me", json={"display_name": f"  Runner {i:02d}  "})
            assert r.status_code == 200 and r.json()["display_name"] == f"Runner {i:02d}", r.text
    mine = await approved(router, land.code, land.small_quest, me)
    await paid(env, "a", land.code, mine)

    async def board(player: uuid.UUID, **params: Any) -> dict[str, Any]:
        async with api(node, land, player) as c:
            r = await c.get("/api/leaderboard", params=params)
            assert r.status_code == 200, r.text
            return dict(r.json())

    # Counted by the worker's consumer: wait until every payout is on the board.
    async def counted() -> bool:
        return len((await board(me, limit=50))["items"]) >= 12

    await eventually(counted)
    before = await board(me)
    assert before["me"]["rank"] == 12 and len(before["items"]) == 10
    desktop = await signed_in(browser, web, land, username, "desktop")
    try:
        for page in (phone, desktop):
            await page.goto(f"{web.url}/app/leaderboards?period=all")
            rows_ = page.locator("#board tbody tr")
            await expect(rows_).to_have_count(12)  # the top ten, a gap, me
            await expect(page.locator("#board tr.gap")).to_have_count(1)
            await expect(page.locator("#board tr.me")).to_contain_text("(you)")
            await expect(page.locator("#board tr.me td").first).to_have_text("12")
            await expect(page.locator("#my-rank")).to_have_text("Your rank: 12 with 10 XP.")
            await look(page, "leaderboards")
            clean(page)

        # One of those above opts out (the API's PATCH): they vanish, everyone below moves up.
        hidden = others[0]
        async with api(node, land, hidden) as c:
            r = await c.patch("/api/players/me", json={"on_leaderboards": False})
            assert r.status_code == 200 and r.json()["on_leaderboards"] is False
        after = await board(me)
        assert after["me"]["rank"] == 11
        assert str(hidden) not in {i["player_id"] for i in after["items"]}
        assert [i["rank"] for i in after["items"]] == list(range(1, 11))
        assert (await board(hidden))["me"] is None and (await board(hidden))["hidden"] is True
        await phone.reload()
        await expect(phone.locator("#board")).not_to_contain_text("Runner 00")
        await expect(phone.locator("#board tr.me td").first).to_have_text("11")
        await expect(phone.locator("#board tbody tr")).to_have_count(12)

        # Day and week boards; the zone's board; chosen with the radio buttons and the select.
        await phone.get_by_role("radio", name="Today").check()
        await expect(phone).to_have_url(re.compile(r"period=day"))
        await expect(phone.locator("#board-title")).to_contain_text("Today")
        await expect(phone.locator("#board tr.me td").first).to_have_text("11")
        await desktop.goto(f"{web.url}/app/leaderboards")
        await expect(desktop.get_by_role("radio", name="This week")).to_be_checked()
        await desktop.get_by_role("combobox", name="Board").select_option(str(land.other_zone))
        await expect(desktop.locator("#board-title")).to_contain_text("Aarhus harbour")
        await expect(desktop.locator("#board")).to_contain_text("Nobody has earned XP here in this period yet.")
        await expect(desktop.locator("#my-rank")).to_contain_text("You are not on this board yet")
        await look(desktop, "leaderboards-zone")
        await desktop.get_by_role("combobox", name="Board").select_option(str(land.zone))
        await expect(desktop.locator("#board tr.me td").first).to_have_text("11")
        # Without JavaScript the form works the same (a plain GET).
        nojs = await new_page(browser, "phone", java_script_enabled=False)
        try:
            await nojs.context.add_cookies(await phone.context.cookies())
            await nojs.goto(f"{web.url}/app/leaderboards")
            await nojs.get_by_role("radio", name="All time").check()
            await nojs.get_by_role("button", name="Show").click()
            await expect(nojs).to_have_url(re.compile(r"period=all"))
            await expect(nojs.locator("#board tr.me td").first).to_have_text("11")
        finally:
            await nojs.context.close()
        clean(phone)
        clean(desktop)
    finally:
        await phone.context.close()
        await desktop.context.close()


# --- profile -------------------------------------------------------------------------------
async def test_profile_saves_name_language_and_opt_out_and_shows_a_link_code(
    browser: Browser,
    web: Web,  # noqa: F811
    land: Land,
    env: Env,
) -> None:
    username = web.player("profile")
    phone = await signed_in(browser, web, land, username, "phone")
    me = land.signed[username]
    desktop = await signed_in(browser, web, land, username, "desktop")
    try:
        for page in (phone, desktop):
            await page.goto(f"{web.url}/app/profile")
            await expect(page.get_by_label("Show me on leaderboards")).to_be_checked()
            await expect(page.locator("#links")).to_have_text("No Matrix account is linked yet.")
            await expect(page.locator("#zone-room")).to_contain_text("This zone has no room yet")
            await look(page, "profile")
            clean(page)
        # Bad input: a name of spaces is refused with a clear message, and nothing changes.
        before = rows(
            land.dsn, f"SELECT display_name, language, on_leaderboards FROM {land.schema}.players WHERE id = %s", me
        )
        await phone.get_by_label("Display name").fill("   ")
        await phone.get_by_role("button", name="Save").click()
        await expect(phone.locator("#profile-error")).to_contain_text("Your display name cannot be empty.")
        await expect(phone.locator("#profile-error")).to_contain_text("Nothing was changed.")
        await look(phone, "profile-refused")
        assert (
            rows(
                land.dsn, f"SELECT display_name, language, on_leaderboards FROM {land.schema}.players WHERE id = %s", me
            )
            == before
        )

        # Name, Danish, off the leaderboards: saved, and the page speaks Danish at once.
        await phone.get_by_label("Display name").fill("  Ada Lovelace ")
        await phone.get_by_label("Your language").select_option("da")
        await phone.get_by_label("Show me on leaderboards").uncheck()
        await phone.get_by_role("button", name="Save").click()
        await expect(phone.locator("html")).to_have_attribute("lang", "da")
        await expect(phone.locator("#display-name")).to_have_value("Ada Lovelace")
        await expect(phone.locator("#on-leaderboards")).not_to_be_checked()
        assert rows(
            land.dsn, f"SELECT display_name, language, on_leaderboards FROM {land.schema}.players WHERE id = %s", me
        ) == [("Ada Lovelace", "da", False)]
        cookies = {c["name"]: c for c in await phone.context.cookies()}
        assert cookies["oh_lang"]["value"] == "da"
        await look(phone, "profile-saved-da")
        # Another browser of the same player keeps its own language until it signs in again.
        await desktop.goto(f"{web.url}/app/profile")
        await expect(desktop.locator("html")).to_have_attribute("lang", "en")
        # A new sign-in, in a fresh browser, comes in the profile's language from the start.
        fresh = await new_page(browser, "desktop", locale="en-GB", extra_http_headers={"Accept-Language": "en"})
        try:
            await sign_in(fresh, web, username, territory=land.code)
            await fresh.goto(f"{web.url}/app")
            await expect(fresh.locator("html")).to_have_attribute("lang", "da")
            assert not any(c["name"] == "oh_lang" for c in await fresh.context.cookies())
        finally:
            await fresh.context.close()
        # Back to the browser's language (English here).
        await phone.locator("#language").select_option("")
        await phone.locator("#profile-form button[type=submit]").click()
        await expect(phone.locator("html")).to_have_attribute("lang", "en")
        assert not any(c["name"] == "oh_lang" for c in await phone.context.cookies())
        assert rows(land.dsn, f"SELECT language FROM {land.schema}.players WHERE id = %s", me) == [(None,)]

        # A Matrix link code: shown once, with what to send and to whom.
        await phone.get_by_role("button", name="Get a link code").click()
        code = phone.locator("#link-code .code")
        await expect(code).to_have_text(re.compile(r"^[A-Z2-9]{4}-[A-Z2-9]{4}$"))
        shown = await code.text_content()
        await expect(phone.locator("#link-code")).to_contain_text(f"!link {shown}")
        await expect(phone.locator("#link-code")).to_contain_text(f"@oh_bot:{HOMESERVER}")
        assert rows(land.dsn, f"SELECT count(*) FROM {land.schema}.matrix_link_codes WHERE player_id = %s", me) == [
            (1,)
        ]
        await look(phone, "profile-link-code")
        # Without JavaScript the same button gives the same (a form post).
        nojs = await new_page(browser, "desktop", java_script_enabled=False)
        try:
            await nojs.context.add_cookies(await desktop.context.cookies())
            await nojs.goto(f"{web.url}/app/profile")
            await nojs.get_by_role("button", name="Get a link code").click()
            await expect(nojs.locator("#link-code .code")).to_have_text(re.compile(r"^[A-Z2-9]{4}-[A-Z2-9]{4}$"))
            await snap(nojs, "people-profile-link-code-nojs")
        finally:
            await nojs.context.close()
        assert rows(land.dsn, f"SELECT count(*) FROM {land.schema}.matrix_link_codes WHERE player_id = %s", me) == [
            (2,)
        ]

        # The gateway links the account and makes the zone's room: the profile shows both.
        alias = f"#oh_{land.code}_amager-beach_{land.zone.hex[:8]}:{HOMESERVER}"
        rows(
            land.dsn,
            f"INSERT INTO {land.schema}.matrix_rooms (key, kind, zone_id, room_id, alias) "
            "VALUES (%s, 'zone', %s, %s, %s)",
            str(land.zone), land.zone, f"!room{uuid.uuid4().hex[:8]}:{HOMESERVER}", alias,
        )  # fmt: skip
        rows(
            land.dsn,
            f"INSERT INTO {land.schema}.matrix_links (mxid, player_id, homeserver, via) VALUES (%s, %s, %s, 'code')",
            f"@ada:{HOMESERVER}", me, HOMESERVER,
        )  # fmt: skip
        await phone.goto(f"{web.url}/app/profile?zone={land.zone}")
        await expect(phone.locator("#links")).to_contain_text(f"@ada:{HOMESERVER}")
        room = phone.get_by_role("link", name="Open the room of Amager beach in Element")
        await expect(room).to_have_attribute(
            "href", "https://matrix.to/#/" + alias.replace("#", "%23").replace(":", "%3A")
        )
        await phone.get_by_label("Zone").select_option(str(land.other_zone))
        await phone.get_by_role("button", name="Show room").click()
        await expect(phone.locator("#zone-room")).to_contain_text("This zone has no room yet")
        await phone.goto(f"{web.url}/app/profile?zone={land.zone}")
        await look(phone, "profile-linked")
        clean(phone)
    finally:
        await phone.context.close()
        await desktop.context.close()


async def test_profile_api_validates_and_changes_nothing_on_bad_input(node: Node, land: Land) -> None:
    player = uuid.uuid4()
    async with api(node, land, player) as c:
        ok = await c.patch("/api/players/me", json={"display_name": " Grace  Hopper ", "language": "se"})
        assert ok.status_code == 200, ok.text
        assert (ok.json()["display_name"], ok.json()["language"], ok.json()["on_leaderboards"]) == (
            "Grace  Hopper",
            "se",
            True,
        )
        for bad in (
            {"display_name": "   "},
            {"display_name": "x" * 61},
            {"display_name": "bell\u0007"},
            {"display_name": "tab\there"},
            {"display_name": "evil\u202etxt.exe"},
            {"display_name": "nul\u0000"},
            {"language": "xx"},
            {"language": "Danish"},
            {"on_leaderboards": "no"},
            {"surprise": 1},
            {"display_name": "Fine", "language": "zz"},  # one bad field: nothing at all changes
        ):
            r = await c.patch("/api/players/me", json=bad)
            assert r.status_code == 400, (bad, r.text)
            assert r.json()["error"] == "invalid_request"
        now = (await c.get("/api/players/me")).json()
        assert (now["display_name"], now["language"]) == ("Grace  Hopper", "se")
        cleared = await c.patch("/api/players/me", json={"language": None, "display_name": "Å" * 60})
        assert cleared.status_code == 200 and cleared.json()["language"] is None
        assert (await c.patch("/api/players/me", json={})).json()["display_name"] == "Å" * 60
