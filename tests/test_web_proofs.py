"""The player app's "My proofs" and "Community review" pages in a real browser.

Everything is real: the node (with its web app), a worker (relay, verification, impact),
js-ipfs, Postgres, NATS, Redis and Debian's Chromium. Players sign in through the built-in
provider; their proofs go up through the JSON API (the capture page is another page's job) as
the very players who signed in, and the verification worker decides them.
"""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from PIL import Image, ImageDraw, ImageFilter
from playwright.async_api import Browser, Page, expect

from tests.browser import check_axe, new_page, snap, watch
from tests.conftest import Env, Node, Proc, eventually, rows
from tests.test_proofs import submit
from tests.test_quests import make_quest, make_zone
from tests.webfixtures import Web, sign_in, web  # noqa: F401  (the "web" fixture)

pytestmark = pytest.mark.asyncio(loop_scope="session")

# A zone on the Copenhagen harbour front; 1 degree of latitude is ~111.2 km.
ZONE: dict[str, Any] = {"name": "Harbour Front", "lat": 55.6900, "lng": 12.6000, "radius_m": 1500}
INSIDE = (55.6905, 12.6005)
NEAR_OUT = (55.6900 + 3.6 / 111.2, 12.6000)  # ~2.1 km outside the circle: flagged, not rejected
FAR_OUT = (55.6900 + 53.5 / 111.2, 12.6000)  # ~52 km outside
LIVE_MS = 30_000


def now_local() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def photo(*, taken_at: datetime | None = None, size: tuple[int, int] = (720, 540), blur: float = 0.0) -> bytes:
    """A photo no other test uploads (random shapes over grain, so sharp and unlike any other),
    as a camera JPEG: make, model and DateTimeOriginal (local time) in its EXIF."""
    rng = np.random.default_rng(uuid.uuid4().int % 2**32)
    image = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(30):
        x0, y0 = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        x1, y1 = x0 + int(rng.integers(20, size[0] // 2)), y0 + int(rng.integers(20, size[1] // 2))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        (draw.rectangle if rng.random() < 0.5 else draw.ellipse)((x0, y0, x1, y1), fill=colour)
    grain = rng.normal(0, 18, (size[1], size[0], 3))
    image = Image.fromarray(np.clip(np.asarray(image, dtype=float) + grain, 0, 255).astype(np.uint8))
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    exif = Image.Exif()
    exif[0x010F] = "Fairphone"
    exif[0x0110] = "FP5"
    exif.get_ifd(0x8769)[0x9003] = (taken_at or now_local()).strftime("%Y:%m:%d %H:%M:%S")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90, exif=exif)
    return out.getvalue()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def quest(node: Node) -> str:
    zone = await make_zone(node, ZONE)
    return str((await make_quest(node, zone, title="Harbour litter pick", max_completions=20))["id"])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def other_quest(node: Node) -> str:
    """A second quest in the zone: a player whose proof of the first is still open can do this one."""
    zone = await make_zone(node, {**ZONE, "name": "Harbour Front West"})
    return str((await make_quest(node, zone, title="Harbour bench repair", max_completions=20))["id"])


def user_id_of(env: Env, node: Node, username: str) -> uuid.UUID:
    """The person behind a built-in provider account (made at their first sign-in)."""
    found = rows(
        env.dsn_a,
        "SELECT u.id FROM global.users u JOIN global.idp_accounts a ON u.subject = a.id::text "
        "WHERE a.username = %s AND u.issuer = %s",
        username,
        f"{node.url}/oidc",
    )
    assert found, f"{username} has not signed in"
    return uuid.UUID(str(found[0][0]))


async def signed_in(browser: Browser, site: Web, prefix: str, size: str, territory: str = "dk") -> tuple[Page, str]:
    username = site.player(prefix)
    page = await new_page(browser, size)  # type: ignore[arg-type]
    await sign_in(page, site, username, territory=territory)
    return page, username


async def proof_by(node: Node, user_id: uuid.UUID, quest: str, data: bytes, at: tuple[float, float], **kw: Any) -> str:
    """Submit ``data`` as that player (their own token, through the API) and wait for the verdict."""
    headers = node.auth(home="dk", roles={"dk": ["player"]}, user_id=user_id)
    async with node.client("dk", headers) as c:
        accepted = await submit(c, quest, data, at=at, **kw)
    return str(accepted["proof_id"])


async def verdict(node: Node, proof_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        async with node.client("dk") as c:  # staff: sees every proof
            body = (await c.get(f"/api/proofs/{proof_id}")).json()
        return body if body["status"] != "submitted" else None

    return dict(await eventually(check, timeout=60, interval=0.3))


async def needs_community(node: Node, proof_id: str, worker: Proc) -> dict[str, Any]:
    found = await verdict(node, proof_id)
    assert found["status"] == "needs_community", (found, worker.log_text()[-2000:])
    return found


async def tally(node: Node, proof_id: str) -> dict[str, Any]:
    async with node.client("dk") as c:
        return dict((await c.get(f"/api/proofs/{proof_id}/votes")).json())


def clean(page: Page) -> None:
    seen = watch(page)
    assert seen.blocked == [], f"requests left loopback: {seen.blocked}"
    assert seen.csp_violations() == [], seen.csp_violations()
    assert seen.errors == [], seen.errors


async def test_witnesses_vote_with_keys_and_the_author_watches_it_live(
    browser: Browser,
    web: Web,  # noqa: F811
    env: Env,
    node: Node,
    worker: Proc,
    quest: str,
) -> None:
    author_page, author = await signed_in(browser, web, "author", "desktop")
    author_id = user_id_of(env, node, author)
    proof_id = await proof_by(node, author_id, quest, photo(), NEAR_OUT)
    await needs_community(node, proof_id, worker)
    witness_page = third_page = None
    try:
        # The author's proof page stays open (never reloaded) for the whole test.
        await author_page.goto(f"{web.url}/app/proofs/{proof_id}")
        timeline = author_page.locator("#timeline")
        await expect(timeline.locator(".now")).to_contain_text("Waiting for the community")
        await expect(timeline.locator('[data-flag="outside_zone"]')).to_contain_text("km outside the zone")
        await expect(timeline.locator('[data-step="payout"]')).to_contain_text("Paid once the proof is accepted")
        await expect(author_page.locator(".proof-map .leaflet-overlay-pane path")).to_have_count(3)  # zone, fix, point
        await check_axe(author_page)
        await snap(author_page, "proof-waiting")
        await author_page.evaluate("() => { window.__sameDocument = true; }")

        # A second player reviews it: keys d, then a (a changed vote).
        witness_page, _ = await signed_in(browser, web, "witness", "phone")
        await witness_page.goto(f"{web.url}/app/review?focus={proof_id}#proof-{proof_id}")
        card = witness_page.locator(f"#proof-{proof_id}")
        await expect(card).to_have_class(re.compile(r"\bcurrent\b"))
        await card.locator("img.evidence").scroll_into_view_if_needed()
        await expect(card.locator("img.evidence")).to_have_js_property("naturalWidth", 720)
        await expect(card.locator("figcaption")).to_contain_text("outside the zone")
        await expect(card.locator("figcaption")).to_contain_text("Harbour Front")
        await expect(card.get_by_role("button", name="Agree", exact=True)).to_have_attribute("data-key", "a")
        await expect(card.locator("kbd.shortcut").first).to_be_visible()
        await check_axe(witness_page)
        await snap(witness_page, "review")

        async with witness_page.expect_navigation():
            await witness_page.keyboard.press("d")
        card = witness_page.locator(f"#proof-{proof_id}")
        await expect(card.locator(".my-vote")).to_contain_text("Your vote: disagree")
        await expect(card.get_by_role("button", name="Disagree")).to_have_attribute("aria-pressed", "true")
        await expect(timeline.locator(".votes")).to_contain_text("1 disagree", timeout=LIVE_MS)
        await expect(timeline.locator(".votes")).to_contain_text("0 agree")

        async with witness_page.expect_navigation():
            await witness_page.keyboard.press("a")
        card = witness_page.locator(f"#proof-{proof_id}")
        await expect(card.locator(".my-vote")).to_contain_text("Your vote: agree")
        await expect(card.get_by_role("button", name="Agree", exact=True)).to_have_attribute("aria-pressed", "true")
        await expect(timeline.locator(".votes")).to_contain_text("1 agree", timeout=LIVE_MS)
        await expect(timeline.locator(".votes")).to_contain_text("0 disagree")
        assert (await tally(node, proof_id))["outcome"] is None
        clean(witness_page)

        # A third player agrees with the button: the quorum (2 witnesses, > 2/3) is reached.
        third_page, _ = await signed_in(browser, web, "third", "desktop")
        await third_page.goto(f"{web.url}/app/review?focus={proof_id}")
        await check_axe(third_page)
        await snap(third_page, "review")
        async with third_page.expect_navigation():
            await third_page.locator(f"#proof-{proof_id}").get_by_role("button", name="Agree", exact=True).click()
        assert third_page.url == f"{web.url}/app/proofs/{proof_id}"  # the vote decided it: its page
        await expect(third_page.locator("#timeline .outcome")).to_contain_text("Validated by the community")
        await expect(third_page.locator('#timeline [data-step="payout"]')).to_have_count(0)  # not theirs
        clean(third_page)

        # The author's page: validated, then the payout, without a reload.
        await expect(timeline.locator(".now")).to_contain_text("Validated by the community", timeout=LIVE_MS)
        await expect(timeline.locator(".outcome")).to_contain_text("2 witnesses")
        payout = timeline.locator('[data-step="payout"] .payout')
        await expect(payout).to_contain_text("XP and +", timeout=60_000)
        await expect(payout).to_contain_text("Heart tokens")
        assert await author_page.evaluate("() => window.__sameDocument === true")
        paid = rows(env.dsn_a, "SELECT xp, tokens FROM territory_dk.payouts WHERE proof_id = %s", proof_id)
        xp, tokens = paid[0]
        await expect(payout).to_have_text(f"+{xp:,} XP and +{tokens:,} Heart tokens")
        await check_axe(author_page)
        await snap(author_page, "proof-paid")
        clean(author_page)
        final = await tally(node, proof_id)
        assert (final["witnesses"], final["agree"], final["disagree"], final["outcome"]) == (2, 2.0, 0.0, "validated")
        # One notification per distinct vote (the witness's disagree, their agree, the third's agree).
        votes_told = rows(
            env.dsn_a,
            "SELECT count(*) FROM territory_dk.notifications WHERE player_id = %s AND kind = 'vote'",
            author_id,
        )
        assert votes_told == [(3,)]

        # "My proofs" lists it, with its status.
        for size in ("phone", "desktop"):
            mine = await new_page(browser, size)  # type: ignore[arg-type]
            try:
                await sign_in(mine, web, author)
                await mine.goto(f"{web.url}/app/proofs")
                row = mine.locator(".proof-row", has=mine.locator(f'a[href="/app/proofs/{proof_id}"]'))
                await expect(row).to_contain_text("Harbour litter pick")
                await expect(row.locator(".badge")).to_have_text("Validated by the community")
                await check_axe(mine)
                await snap(mine, "proofs")
                await mine.goto(f"{web.url}/app/proofs/{proof_id}")
                await expect(mine.locator('[data-step="payout"] .payout')).to_contain_text("XP")
                await check_axe(mine)
                await snap(mine, "proof-paid")
                clean(mine)
            finally:
                await mine.context.close()
    finally:
        for p in (author_page, witness_page, third_page):
            if p is not None:
                await p.context.close()


async def test_the_author_sees_their_proof_listed_without_buttons(
    browser: Browser,
    web: Web,  # noqa: F811
    env: Env,
    node: Node,
    worker: Proc,
    quest: str,
) -> None:
    author_page, author = await signed_in(browser, web, "own", "phone")
    try:
        proof_id = await proof_by(node, user_id_of(env, node, author), quest, photo(), NEAR_OUT)
        await needs_community(node, proof_id, worker)
        await author_page.goto(f"{web.url}/app/review")
        card = author_page.locator(f"#proof-{proof_id}")
        await expect(card).to_contain_text("This is your own proof: you cannot vote on it")
        await expect(card.get_by_role("button")).to_have_count(0)
        await expect(card.locator("[data-key]")).to_have_count(0)
        await author_page.keyboard.press("a")  # no key votes on the author's own proof
        # The API's review list (the page's function) says the same.
        as_author = node.auth(home="dk", roles={"dk": ["player"]}, user_id=user_id_of(env, node, author))
        async with node.client("dk", as_author) as c:
            listed = (await c.get("/api/social/review", params={"limit": 200})).json()["items"]
        mine = next(i for i in listed if i["proof"]["id"] == proof_id)
        assert (mine["cannot_vote"], mine["my_vote"], mine["quest"]["title"]) == ("author", None, "Harbour litter pick")
        await check_axe(author_page)
        await snap(author_page, "review-own")
        await author_page.goto(f"{web.url}/app/proofs/{proof_id}")
        await expect(author_page.locator("#timeline")).to_contain_text("you cannot vote on it yourself")
        await expect(author_page.get_by_role("button", name="Agree", exact=True)).to_have_count(0)
        # Posting a vote anyway (the form the page does not show) is refused as the API refuses it.
        refused = await author_page.evaluate(
            """async (id) => {
                const body = new URLSearchParams({value: "agree", csrf: OneHeart.csrf()});
                const r = await fetch(`/app/proofs/${id}/votes`, {method: "POST", body});
                return [r.status, await r.text()];
            }""",
            proof_id,
        )
        assert refused[0] == 403 and "the author of a proof cannot vote on it" in refused[1]
        clean(author_page)
    finally:
        await author_page.context.close()
    assert (await tally(node, proof_id))["votes"] == []
    assert rows(env.dsn_a, "SELECT count(*) FROM territory_dk.social_votes WHERE proof_id = %s", proof_id) == [(0,)]


async def test_other_territories_and_strangers_are_refused(
    browser: Browser,
    web: Web,  # noqa: F811
    env: Env,
    node: Node,
    worker: Proc,
    quest: str,
    other_quest: str,
) -> None:
    author_page, author = await signed_in(browser, web, "owner", "desktop")
    author_id = user_id_of(env, node, author)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    bytes_ = photo(taken_at=now_local() - timedelta(hours=1))
    waiting = await proof_by(node, author_id, quest, bytes_, NEAR_OUT, captured=hour_ago)
    await needs_community(node, waiting, worker)
    cid = rows(env.dsn_a, "SELECT cid FROM territory_dk.evidence WHERE proof_id = %s", waiting)[0][0]
    pages: list[Page] = [author_page]
    try:
        # The author sees the evidence through the node: the very bytes, and no CID in the page.
        await author_page.goto(f"{web.url}/app/proofs/{waiting}")
        assert str(cid) not in await author_page.content()
        got = await author_page.request.get(f"{web.url}/app/proofs/{waiting}/evidence")
        assert got.status == 200 and got.headers["content-type"] == "image/jpeg" and await got.body() == bytes_
        assert "x-evidence-cid" not in got.headers

        # A player of sami, at both sizes: the page and the evidence are refused, nothing leaks.
        for size in ("phone", "desktop"):
            stranger, _ = await signed_in(browser, web, "sami", size, territory="sami")
            pages.append(stranger)
            for url in (f"/app/proofs/{waiting}", f"/app/proofs/{waiting}/evidence"):
                response = await stranger.goto(f"{web.url}{url}")
                assert response is not None and response.status == 404
                await expect(stranger.get_by_role("heading", level=1)).to_have_text("Not found")
                await expect(stranger.locator(".detail")).to_contain_text("does not exist in this territory")
                await expect(stranger.locator("main img, main video")).to_have_count(0)
                html = await stranger.content()
                assert "Harbour litter pick" not in html and str(cid) not in html and "Harbour Front" not in html
            await check_axe(stranger)
            await snap(stranger, "proof-refused")
            # The same answer as the API gives a sami player for that id.
            headers = node.auth(home="sami", roles={"sami": ["player"]})
            async with node.client(None, headers) as c:
                assert (await c.get(f"/api/proofs/{waiting}")).status_code == 404
                assert (await c.get(f"/api/proofs/{waiting}/evidence")).status_code == 404
            # Their review page lists none of dk's proofs.
            await stranger.goto(f"{web.url}/app/review")
            await expect(stranger.locator(f"#proof-{waiting}")).to_have_count(0)
            clean(stranger)

        # Nobody signed in: sent to sign in first, and shown nothing of the proof.
        anonymous = await new_page(browser, "phone")
        pages.append(anonymous)
        for url in (f"/app/proofs/{waiting}", f"/app/proofs/{waiting}/evidence", "/app/review"):
            await anonymous.goto(f"{web.url}{url}")
            assert anonymous.url.startswith(f"{web.url}/app/signin?next="), anonymous.url
            assert "Harbour" not in await anonymous.content()

        # A dk player who is not the author may not see a proof the community was not asked about.
        approved = await proof_by(node, author_id, other_quest, photo(), INSIDE)
        assert (await verdict(node, approved))["status"] == "auto_approved"
        # The author's list pages with a cursor: newest first, one a page here.
        await author_page.goto(f"{web.url}/app/proofs?limit=1")
        await expect(author_page.locator(".proof-row a")).to_have_attribute("href", f"/app/proofs/{approved}")
        await expect(author_page.locator(".proof-row .badge")).to_have_text("Approved")
        await author_page.get_by_role("link", name="Older proofs").click()
        await expect(author_page.locator(".proof-row a")).to_have_attribute("href", f"/app/proofs/{waiting}")
        await expect(author_page.get_by_role("link", name="Older proofs")).to_have_count(0)
        await expect(author_page.get_by_role("link", name="Newest proofs")).to_be_visible()
        response = await author_page.goto(f"{web.url}/app/proofs?cursor=not-a-cursor")
        assert response is not None and response.status == 400
        await expect(author_page.locator(".detail")).to_have_text("malformed cursor")

        neighbour, _ = await signed_in(browser, web, "neighbour", "phone")
        pages.append(neighbour)
        for url in (f"/app/proofs/{approved}", f"/app/proofs/{approved}/evidence"):
            response = await neighbour.goto(f"{web.url}{url}")
            assert response is not None and response.status == 404
            await expect(neighbour.get_by_role("heading", level=1)).to_have_text("Not found")
        # ... but may see (and review) the one waiting for the community.
        response = await neighbour.goto(f"{web.url}/app/proofs/{waiting}")
        assert response is not None and response.status == 200
        await expect(neighbour.locator('[data-step="payout"]')).to_have_count(0)
        await expect(neighbour.get_by_role("link", name="Review and vote")).to_be_visible()
        await check_axe(neighbour)
        await snap(neighbour, "proof-as-witness")

        # Bad input changes nothing: an unknown vote value, a missing CSRF token.
        bad = await neighbour.evaluate(
            """async (id) => {
                const post = async (fields) => {
                    const body = new URLSearchParams(fields);
                    const r = await fetch(`/app/proofs/${id}/votes`, {method: "POST", body});
                    return [r.status, await r.text()];
                };
                return [await post({value: "maybe", csrf: OneHeart.csrf()}), await post({value: "agree"})];
            }""",
            waiting,
        )
        assert bad[0][0] == 400 and "agree or disagree" in bad[0][1] and "Nothing was changed" in bad[0][1]
        assert bad[1][0] == 403 and "security token" in bad[1][1]
        assert (await tally(node, waiting))["votes"] == []
        clean(neighbour)
    finally:
        for p in pages:
            await p.context.close()


async def test_the_timeline_says_each_flag_in_plain_words(
    browser: Browser,
    web: Web,  # noqa: F811
    env: Env,
    node: Node,
    worker: Proc,
    quest: str,
    other_quest: str,
) -> None:
    # Someone sends a photo taken three days ago (its camera says so) from inside the zone...
    old = photo(taken_at=now_local() - timedelta(days=3))
    first = await proof_by(node, uuid.uuid4(), quest, old, INSIDE)
    await verdict(node, first)
    author_page, author = await signed_in(browser, web, "flagged", "desktop")
    author_id = user_id_of(env, node, author)
    pages = [author_page]
    try:
        # ... and our author sends the very same file, from 52 km outside the zone.
        copied = await proof_by(node, author_id, quest, old, FAR_OUT)
        found = await verdict(node, copied)
        assert {"outside_zone", "duplicate", "clock_skew"} <= set(found["flags"]), found
        await author_page.goto(f"{web.url}/app/proofs/{copied}")
        flags = author_page.locator("#timeline .flags")
        await expect(flags.locator('[data-flag="outside_zone"]')).to_contain_text("Taken 52 km outside the zone")
        await expect(flags.locator('[data-flag="duplicate"]')).to_contain_text("The same photo was submitted before.")
        await expect(flags.locator('[data-flag="clock_skew"]')).to_contain_text(
            "Taken 3 days before it was uploaded (the photo's own camera time)."
        )
        score = author_page.locator("#timeline .score")
        await expect(score).to_contain_text(f"Integrity score: {found['score']} of 100")
        if found["status"] == "rejected":
            await expect(author_page.locator("#timeline .outcome")).to_have_text("Rejected by the automatic checks.")
            await expect(author_page.locator('[data-step="payout"]')).to_contain_text("No payout")
        await check_axe(author_page)
        await snap(author_page, "proof-flags")

        # A small, blurry photo: quality flags with their numbers.
        small = photo(size=(320, 240), blur=6)
        blurry_id = await proof_by(node, author_id, other_quest, small, INSIDE)
        found = await verdict(node, blurry_id)
        assert {"blurry", "low_resolution"} <= set(found["flags"]), found
        phone = await new_page(browser, "phone")
        pages.append(phone)
        await sign_in(phone, web, author)
        await phone.goto(f"{web.url}/app/proofs/{blurry_id}")
        flags = phone.locator("#timeline .flags")
        await expect(flags.locator('[data-flag="blurry"]')).to_contain_text("The photo is blurry (sharpness")
        await expect(flags.locator('[data-flag="blurry"]')).to_contain_text("100 or more is sharp")
        await expect(flags.locator('[data-flag="low_resolution"]')).to_contain_text(
            "The photo is small: 320 \u00d7 240 pixels (at least 400 on the short side is expected)."
        )
        await check_axe(phone)
        await snap(phone, "proof-flags")
        await phone.goto(f"{web.url}/app/proofs/{copied}")
        await check_axe(phone)
        for p in pages:
            clean(p)
    finally:
        for p in pages:
            await p.context.close()
