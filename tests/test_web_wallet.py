"""The wallet and the rewards in the player app, in Chromium against the real node and worker:
redeeming and sending tokens through their confirmation steps (a double submit counts once),
"Verify this entry" checked by the browser's own WebCrypto (and failing at the step a tampered
proof breaks), refusals that change nothing, axe and screenshots of every page at both sizes."""

from __future__ import annotations

import json
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route, expect

from core.routing import Router
from services.ledger import service as ledger
from services.ledger.canonical import Entry, canonical
from tests import webfixtures
from tests.browser import check_axe, check_fits, new_page, snap, watch
from tests.conftest import Env, Node, Proc, eventually
from tests.test_rewards import make_reward
from tests.test_tokens import headers
from tests.webfixtures import Web, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")
web = webfixtures.web  # the session's web app (a fixture)
HOME = "dk"
# A note with what JSON must escape and what it must not (quotes, a tab, a backslash, non-ASCII):
# the browser's canonical bytes must be the ledger's own.
MEMO = 'Bus "fare"\ttak \\ æøå — ✓ 💚'


@pytest.fixture
def signer(env: Env, router: Router, tmp_path: Path) -> Iterator[Proc]:
    """The worker (relay, consumers) signing a checkpoint of every ledger each second."""
    w = Proc(env, ["worker"], tmp_path / "worker.log", OH_LEDGER_CHECKPOINT_INTERVAL="1").start()
    yield w
    w.kill(signal.SIGTERM)


# --- helpers ------------------------------------------------------------------------------------
async def signed_in(browser: Browser, web: Web, size: str, prefix: str) -> tuple[Page, uuid.UUID, str]:
    """A new player signed in on a page of ``size``: the page, their player id, display name."""
    name = f"{prefix.title()} {uuid.uuid4().hex[:6]}"
    username = web.player(prefix, display_name=name)
    page = await new_page(browser, size)  # type: ignore[arg-type]
    await sign_in(page, web, username, territory=HOME)
    await page.goto(f"{web.url}/app/wallet")
    player = uuid.UUID((await page.locator("#player-id").inner_text()).strip())
    return page, player, name


async def someone(browser: Browser, web: Web, prefix: str) -> tuple[uuid.UUID, str]:
    """A player who signed in once (so they have a player in the territory): id, display name."""
    page, player, name = await signed_in(browser, web, "desktop", prefix)
    await page.context.close()
    return player, name


async def fund(router: Router, player: uuid.UUID, *amounts: int) -> list[Entry]:
    """Tokens paid to ``player`` as for approved proofs (ledger mints, as tests/test_tokens.py does)."""
    made = []
    async with router.transaction(await router.lookup(HOME)) as conn:
        for amount in amounts:
            made.append(
                await ledger.append(
                    conn,
                    HOME,
                    kind="mint",
                    debit="mint",
                    credit=ledger.player_account(player),
                    amount=amount,
                    xp=5,
                    ref_type="proof",
                    ref_id=str(uuid.uuid4()),
                )
            )
    return made


async def tokens_of(router: Router, player: uuid.UUID) -> int:
    async with router.read(await router.lookup(HOME)) as conn:
        tokens, _ = await ledger.get_balance(conn, ledger.player_account(player))
    return tokens


async def transfers_from(router: Router, player: uuid.UUID) -> list[Entry]:
    async with router.read(await router.lookup(HOME)) as conn:
        entries, _ = await ledger.list_entries(conn, account=ledger.player_account(player), kind="transfer", limit=100)
    return [e for e in entries if e.debit == ledger.player_account(player)]


async def checkpointed(router: Router, seq: int) -> None:
    """Wait until the worker has signed a checkpoint that holds entry ``seq``."""

    async def covers() -> bool:
        async with router.read(await router.lookup(HOME)) as conn:
            cp = await ledger.get_checkpoint(conn)
        return cp is not None and cp.tree_size >= seq

    await eventually(covers, timeout=30)


async def shown_tokens(page: Page, web: Web) -> int:
    await page.goto(f"{web.url}/app/wallet")
    return int(await page.locator("#tokens").get_attribute("data-tokens") or "-1")


async def clean(page: Page) -> None:
    """Nothing the page did broke its Content-Security-Policy or threw."""
    seen = watch(page)
    assert not seen.csp_violations(), seen.console
    assert not seen.errors, seen.errors
    assert not seen.blocked, seen.blocked


async def verify(page: Page) -> None:
    await page.locator("#verify-run").click()
    await expect(page.locator("#verify")).to_have_attribute("data-outcome", re.compile("pass|fail|error"))


async def statuses(page: Page) -> dict[str, str]:
    steps = page.locator("#verify-steps .step")
    return {
        await steps.nth(i).get_attribute("data-step") or "": await steps.nth(i).get_attribute("data-status") or ""
        for i in range(await steps.count())
    }


# --- rewards ------------------------------------------------------------------------------------
async def test_redeem_a_reward_through_its_confirmation_step(
    browser: Browser, web: Web, node: Node, router: Router, signer: Proc
) -> None:
    page, alice, _ = await signed_in(browser, web, "phone", "alice")
    try:
        await fund(router, alice, 100)
        title = f"Ferry ticket {uuid.uuid4().hex[:6]}"
        reward = await make_reward(node, HOME, title=title, price=25, stock=3)

        await page.goto(f"{web.url}/app/rewards")
        card = page.locator(f'[data-reward="{reward["id"]}"]')
        await expect(card.locator(".price")).to_have_text("25 Heart tokens")
        await expect(card.locator(".stock")).to_have_text("3")
        await card.get_by_role("link", name=f"Redeem {title}").click()

        await expect(page.get_by_role("heading", level=1)).to_have_text(f"Redeem {title} for 25 Heart tokens?")
        # Cancel takes nothing.
        await page.get_by_role("link", name="Cancel").click()
        await page.wait_for_url(f"{web.url}/app/rewards")
        assert await tokens_of(router, alice) == 100
        await card.get_by_role("link", name=f"Redeem {title}").click()
        confirm_url = page.url
        await page.get_by_role("button", name="Confirm and redeem").dblclick()

        await page.wait_for_url(re.compile(r"/app/rewards/mine\?new="))
        await expect(page.locator("#redeemed")).to_contain_text(f"You redeemed {title}")
        # Back to the confirmation and confirm again: the same key, nothing bought again.
        await page.goto(confirm_url)
        await page.get_by_role("button", name="Confirm and redeem").click()
        await page.wait_for_url(re.compile(r"/app/rewards/mine\?new=.*again=1"))
        await expect(page.locator("#redeemed")).to_contain_text("nothing was bought again")
        async with node.client() as c:
            r = await c.get("/api/rewards/redemptions", headers=headers(node, HOME, alice))
        (made,) = r.json()["items"]  # the API shows the same redemption, with the same voucher code
        assert re.fullmatch(r"[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}", made["code"])
        first = page.locator(f'[data-redemption="{made["id"]}"]')
        await expect(first.locator(".voucher")).to_have_text(made["code"])
        await expect(first.locator(".reward-title")).to_have_text(title)
        await expect(page.locator("#redeemed")).to_contain_text(made["code"])

        assert await shown_tokens(page, web) == 75
        top = page.locator("#entries .entry").first
        await expect(top.locator(".entry-what")).to_have_text(f"Redeemed: {title}")
        await expect(top.locator(".entry-amount")).to_have_text("\u221225 Heart tokens")
        await page.goto(f"{web.url}/app/rewards")
        await expect(card.locator(".stock")).to_have_text("2")
        await clean(page)
    finally:
        await page.context.close()


# --- transfers ----------------------------------------------------------------------------------
async def test_send_tokens_by_name_through_the_confirmation_step_once(
    browser: Browser, web: Web, router: Router, signer: Proc
) -> None:
    bob_page, bob, bob_name = await signed_in(browser, web, "desktop", "bob")
    page, alice, alice_name = await signed_in(browser, web, "desktop", "alice")
    try:
        await fund(router, alice, 100)
        await page.goto(f"{web.url}/app/wallet")
        await page.get_by_label("To (name or player id)").fill(bob_name.lower())  # any case, one player
        await page.get_by_label("Heart tokens").fill("5")
        await page.get_by_label("Note (optional)").fill(MEMO)
        await page.get_by_role("button", name="Check before sending").click()

        await expect(page.get_by_role("heading", level=1)).to_have_text(f"Send 5 Heart tokens to {bob_name}?")
        assert await tokens_of(router, alice) == 100  # the review sent nothing
        confirm_url = page.url
        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        await page.get_by_role("button", name="Confirm and send").dblclick()
        await page.wait_for_url(re.compile(r"/app/wallet\?sent="))
        await expect(page.locator("#sent")).to_have_text(f"Sent 5 Heart tokens to {bob_name}.")
        print(f"\nconfirm double-clicked: {len(posts)} POST(s) sent by the browser")
        assert posts, "the confirmation was not posted"

        # Back to the confirmation and confirm again: the same key, nothing sent again.
        await page.goto(confirm_url)
        await page.get_by_role("button", name="Confirm and send").click()
        await page.wait_for_url(re.compile(r"/app/wallet\?sent="))
        await expect(page.locator("#sent")).to_contain_text("already sent")

        sent = await transfers_from(router, alice)
        assert [(e.credit, e.amount, e.memo) for e in sent] == [(ledger.player_account(bob), 5, MEMO)]
        assert await tokens_of(router, alice) == 95 and await tokens_of(router, bob) == 5
        assert await shown_tokens(page, web) == 95
        top = page.locator("#entries .entry").first
        await expect(top.locator(".entry-what")).to_have_text(f"Sent to {bob_name}")
        await expect(top.locator(".entry-amount")).to_have_text("\u22125 Heart tokens")

        # The other player's wallet shows them, by the sender's name.
        assert await shown_tokens(bob_page, web) == 5
        received = bob_page.locator("#entries .entry").first
        await expect(received.locator(".entry-what")).to_have_text(f"Received from {alice_name}")
        await expect(received.locator(".entry-amount")).to_have_text("+5 Heart tokens")
        await expect(received.locator("q")).to_have_text(MEMO)

        # Two submits of one confirmation at the same moment (as from two quick taps): one transfer.
        await page.get_by_label("To (name or player id)").fill(bob_name)
        await page.get_by_label("Heart tokens").fill("2")
        await page.get_by_role("button", name="Check before sending").click()
        answers = await page.evaluate(
            """async () => {
                const form = document.querySelector('form[action="/app/wallet/send"]');
                const send = () => fetch(form.action, {method: "POST", body: new URLSearchParams(new FormData(form))})
                    .then(r => [r.status, r.url]);
                return Promise.all([send(), send()]);
            }"""
        )
        assert [status for status, _ in answers] == [200, 200], answers  # both led to the wallet
        assert sorted("again=1" in url for _, url in answers) == [False, True], answers
        assert [e.amount for e in await transfers_from(router, alice)] == [5, 2]
        assert await tokens_of(router, bob) == 7
        await page.goto(f"{web.url}/app/wallet")

        # By player id too.
        await page.get_by_label("To (name or player id)").fill(str(bob))
        await page.get_by_label("Heart tokens").fill("1")
        await page.get_by_role("button", name="Check before sending").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text(f"Send 1 Heart token to {bob_name}?")
        await page.get_by_role("button", name="Confirm and send").click()
        await page.wait_for_url(re.compile(r"/app/wallet\?sent="))
        assert await tokens_of(router, bob) == 8
        await clean(page)
        await clean(bob_page)
    finally:
        await page.context.close()
        await bob_page.context.close()


async def test_refusals_change_nothing(browser: Browser, web: Web, node: Node, router: Router) -> None:
    bob, bob_name = await someone(browser, web, "bob")
    page, alice, _ = await signed_in(browser, web, "phone", "alice")
    try:
        await fund(router, alice, 100)

        async def review(to: str, amount: str) -> None:
            await page.goto(f"{web.url}/app/wallet")
            await page.get_by_label("To (name or player id)").fill(to)
            await page.get_by_label("Heart tokens").fill(amount)
            await page.get_by_role("button", name="Check before sending").click()

        # More than the balance: refused at the review, before any confirmation.
        await review(bob_name, "1000")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Not sent")
        await expect(page.locator(".detail")).to_have_text("You have 100 Heart tokens; this transfer needs 1,000.")
        # An unknown player.
        await review(f"Nobody {uuid.uuid4().hex[:6]}", "5")
        await expect(page.locator(".detail")).to_contain_text("There is no player called")
        assert await page.locator(".detail").get_attribute("data-code") == "unknown_player"
        # Oneself, and a bad amount.
        await review(str(alice), "5")
        await expect(page.locator(".detail")).to_have_text("You cannot send tokens to yourself.")
        # (the form's own checks keep a browser from sending 0; the node refuses it all the same)
        await page.goto(f"{web.url}/app/wallet/send?to={bob}&amount=0")
        assert await page.locator(".detail").get_attribute("data-code") == "bad_amount"

        # A confirmation whose amount was edited past the balance: the ledger refuses it (409).
        await review(bob_name, "5")
        await page.locator('input[name="amount"]').evaluate("(el) => { el.value = '101'; }")
        async with page.expect_response(re.compile(r"/app/wallet/send$")) as answer:
            await page.get_by_role("button", name="Confirm and send").click()
        assert (await answer.value).status == 409
        await expect(page.locator(".detail")).to_have_text("You do not have enough Heart tokens for this transfer.")

        # Posts without the session's CSRF token: a plain fetch, as another page's script would.
        for path, body in (
            ("/app/wallet/send", f"to_player={bob}&amount=5&key=csrf-{uuid.uuid4().hex}"),
            (f"/app/rewards/{(await make_reward(node, HOME, price=5))['id']}/redeem", "key=x"),
        ):
            status, text = await page.evaluate(
                """async ([path, body]) => {
                    const r = await fetch(path, {method: "POST", body,
                        headers: {"Content-Type": "application/x-www-form-urlencoded"}});
                    return [r.status, await r.text()];
                }""",
                [path, body],
            )
            assert status == 403 and "csrf_refused" in text, (path, status)

        # A reward that costs more than the player has: no Redeem button, and a clear refusal.
        dear = await make_reward(node, HOME, title=f"Bike {uuid.uuid4().hex[:6]}", price=1000, stock=1)
        await page.goto(f"{web.url}/app/rewards")
        card = page.locator(f'[data-reward="{dear["id"]}"]')
        await expect(card).to_contain_text("You need 900 more Heart tokens.")
        assert await card.get_by_role("link").count() == 0
        await page.goto(f"{web.url}/app/rewards/{dear['id']}/redeem")
        await expect(page.locator(".detail")).to_have_text("This reward costs 1,000 Heart tokens; you have 100.")

        assert await tokens_of(router, alice) == 100 and await tokens_of(router, bob) == 0
        assert await transfers_from(router, alice) == []
        await clean(page)
    finally:
        await page.context.close()


# --- verification -------------------------------------------------------------------------------
async def test_verify_an_entry_in_the_browser_and_see_tampering_fail(
    browser: Browser, web: Web, node: Node, router: Router, signer: Proc
) -> None:
    bob, _ = await someone(browser, web, "bob")
    page, alice, _ = await signed_in(browser, web, "desktop", "alice")
    try:
        await fund(router, alice, 60, 40)
        async with node.client() as c:
            r = await c.post(
                "/api/tokens/transfer",
                json={"to_player": str(bob), "amount": 7, "memo": MEMO},
                headers=headers(node, HOME, alice, key=f"t-{uuid.uuid4()}"),
            )
        assert r.status_code == 201, r.text
        seq = r.json()["seq"]
        await checkpointed(router, seq)

        await page.goto(f"{web.url}/app/wallet")
        row = page.locator(f'#entries .entry[data-seq="{seq}"]')
        await row.get_by_role("link", name=f"Verify entry #{seq}").click()
        await page.wait_for_url(f"{web.url}/app/wallet/entries/{seq}#verify")
        await verify(page)
        assert await statuses(page) == dict.fromkeys(("entry", "leaf", "path", "root", "signature"), "pass")
        await expect(page.locator("#verify-result")).to_contain_text("Every step passed")
        # The browser hashed the ledger's own canonical bytes (the note's quotes, tab, æ, emoji).
        async with router.read(await router.lookup(HOME)) as conn:
            (entry,), _ = await ledger.list_entries(conn, from_seq=seq, to_seq=seq, limit=1)
        hashed = await page.locator('[data-step="entry"] pre').nth(1).inner_text()
        assert hashed == canonical(HOME, entry).decode()
        await expect(page.locator('[data-step="signature"] .step-detail')).to_contain_text("first time")
        await clean(page)

        async def tampered(change: Any) -> None:
            async def handler(route: Route) -> None:
                response = await route.fetch()
                body = await response.json()
                change(body)
                await route.fulfill(response=response, body=json.dumps(body))

            await page.unroute("**/app/wallet/ledger/entries/*/proof*")
            await page.route("**/app/wallet/ledger/entries/*/proof*", handler)
            await verify(page)

        def flip_path_byte(body: dict[str, Any]) -> None:
            h = body["audit_path"][0]
            body["audit_path"][0] = ("1" if h[0] == "0" else "0") + h[1:]

        await tampered(flip_path_byte)
        assert await statuses(page) == {
            "entry": "pass",
            "leaf": "pass",
            "path": "pass",
            "root": "fail",
            "signature": "skipped",
        }
        await expect(page.locator("#verify-result")).to_have_text(
            "Verification failed at step 4: The root and the newest checkpoint."
        )
        await snap(page, "wallet-entry-tampered-path")

        def more_tokens(body: dict[str, Any]) -> None:
            body["entry"]["amount"] += 1

        await tampered(more_tokens)
        assert await statuses(page) == {
            "entry": "fail",
            "leaf": "skipped",
            "path": "skipped",
            "root": "skipped",
            "signature": "skipped",
        }
        await expect(page.locator('[data-step="entry"] .step-status')).to_contain_text("Failed")

        def flip_signature(cp: dict[str, Any]) -> None:
            s = cp["signature"]
            cp["signature"] = s[:-2] + ("00" if s[-2:] != "00" else "01")

        # The proof's checkpoint must be the newest listed one: a changed signature there is
        # caught as "not the newest"; the same change in both is caught by Ed25519 itself.
        await tampered(lambda body: flip_signature(body["checkpoint"]))
        assert (await statuses(page))["root"] == "fail"

        async def forge_list(route: Route) -> None:
            response = await route.fetch()
            body = await response.json()
            flip_signature(body["items"][0])
            await route.fulfill(response=response, body=json.dumps(body))

        await page.route("**/app/wallet/ledger/checkpoints*", forge_list)
        await verify(page)
        assert await statuses(page) == {
            "entry": "pass",
            "leaf": "pass",
            "path": "pass",
            "root": "pass",
            "signature": "fail",
        }
        await expect(page.locator('[data-step="signature"] .step-status')).to_contain_text(
            "The signature does not match"
        )
        await snap(page, "wallet-entry-forged-signature")
    finally:
        await page.context.close()


# --- every page, both sizes ---------------------------------------------------------------------
@pytest.mark.parametrize("size", ["phone", "desktop"])
async def test_every_page_passes_axe_at_both_sizes(
    browser: Browser, web: Web, node: Node, router: Router, signer: Proc, size: str
) -> None:
    bob, bob_name = await someone(browser, web, "bob")
    page, alice, _ = await signed_in(browser, web, size, "alice")
    try:
        minted = await fund(router, alice, 120, 30)
        reward = await make_reward(node, HOME, title=f"Museum pass {uuid.uuid4().hex[:4]}", price=40, stock=5)
        await make_reward(node, HOME, title=f"Sold out mug {uuid.uuid4().hex[:4]}", price=10, stock=0)

        async def look(name: str) -> None:
            await check_axe(page)
            await check_fits(page)
            await snap(page, name)

        await page.goto(f"{web.url}/app/rewards")
        await look("rewards")
        await page.goto(f"{web.url}/app/rewards/{reward['id']}/redeem")
        await look("rewards-confirm")
        await page.get_by_role("button", name="Confirm and redeem").click()
        await page.wait_for_url(re.compile(r"/app/rewards/mine"))
        await look("rewards-mine")
        await page.goto(f"{web.url}/app/rewards/{uuid.uuid4()}/redeem")
        await look("rewards-refused")

        await page.goto(f"{web.url}/app/wallet")
        await page.get_by_label("To (name or player id)").fill(bob_name)
        await page.get_by_label("Heart tokens").fill("12")
        await page.get_by_label("Note (optional)").fill("Thanks for the beach clean-up")
        await page.get_by_role("button", name="Check before sending").click()
        await look("wallet-confirm")
        await page.get_by_role("button", name="Confirm and send").click()
        await page.wait_for_url(re.compile(r"/app/wallet\?sent="))
        await look("wallet")
        await page.goto(f"{web.url}/app/wallet/send?to={bob}&amount=999")
        await look("wallet-refused")

        await checkpointed(router, minted[-1].seq)
        await page.goto(f"{web.url}/app/wallet/entries/{minted[-1].seq}")
        await verify(page)
        assert set((await statuses(page)).values()) == {"pass"}
        await look("wallet-entry-verified")
        await clean(page)
    finally:
        await page.context.close()
