"""Social validation in Matrix rooms, across two real federated Synapse homeservers.

Nothing is mocked: the node, a worker (relay + verification), the gateway (its own process),
js-ipfs, Postgres x2, NATS and two Synapse servers federating over TLS on loopback. Witnesses
are plain matrix-nio clients, one of them on the other territory's homeserver.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from devstack import synapse
from federation.rooms import slug
from tests.conftest import Env, Node, Proc, eventually, rows
from tests.matrixfixtures import Federation, Gateway, MatrixUser, federation_fixture, gateway_fixture  # noqa: F401
from tests.photos import jpeg
from tests.test_proofs import submit
from tests.test_quests import make_quest, make_zone

pytestmark = pytest.mark.asyncio(loop_scope="session")

LAKE: dict[str, Any] = {"name": "Lake Shore", "lat": 65.0, "lng": 25.4, "radius_m": 2000}
AT = (65.0005, 25.4005)


def now_local() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def member(node: Node, *territories: str, home: str = "north") -> tuple[uuid.UUID, dict[str, str]]:
    user = uuid.uuid4()
    return user, node.auth(home=home, roles={t: ["player"] for t in territories}, user_id=user)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def quest(node: Node, env: Env, federation: Federation) -> dict[str, str]:
    """A zone and quest in north; every north proof goes to the community (verification policy)."""
    # The suite's few sample photos come back again and again: duplicates must not be rejected here.
    env.cli("verification", "policy", "north", "--always-community", "--reject-max", "0")
    zone = await make_zone(node, LAKE, territory="north")
    q = await make_quest(node, zone, territory="north", title="Shore clean-up", max_completions=100)
    return {"zone": zone, "quest": str(q["id"])}


PHOTOS = iter(["astronaut", "coffee", "rocket", "chelsea", "hubble_deep_field", "immunohistochemistry"] * 4)


async def new_proof(node: Node, quest: dict[str, str], scale: float = 1.0) -> tuple[str, uuid.UUID, dict[str, str]]:
    author, headers = member(node, "north")
    async with node.client("north", headers) as c:
        photo = jpeg(next(PHOTOS), taken_at=now_local(), scale=scale)
        accepted = await submit(c, quest["quest"], photo, at=AT)
    return accepted["proof_id"], author, headers


async def posted(env: Env, proof_id: str, timeout: float = 60) -> tuple[str, str, str]:
    """(room id, event id, room alias) once the gateway posted the proof."""

    async def check() -> Any:
        found = rows(
            env.dsn_a,
            "SELECT p.room_id, p.event_id, r.alias FROM territory_north.social_posts p "
            "JOIN territory_north.matrix_rooms r ON r.room_id = p.room_id WHERE p.proof_id = %s",
            proof_id,
        )
        return found[0] if found else None

    return tuple(await eventually(check, timeout=timeout, interval=0.2))  # type: ignore[return-value]


async def linked(node: Node, user: MatrixUser, headers: dict[str, str], room_id: str) -> None:
    """Link the Matrix user to the player with a one-time code posted in the zone room."""
    async with node.client("north", headers) as c:
        r = await c.post("/api/social/link-code")
        assert r.status_code == 201, r.text
        code = r.json()["code"]
        await user.say(room_id, f"!link {code}")

        async def done() -> bool:
            links = (await c.get("/api/social/links")).json()
            return any(link["mxid"] == user.user_id for link in links)

        await eventually(done, timeout=30)


def emitted(env: Env, proof_id: str, event_type: str) -> int:
    found = rows(
        env.dsn_a,
        "SELECT count(*) FROM territory_north.outbox WHERE type = %s AND envelope->'data'->>'proof_id' = %s",
        event_type,
        proof_id,
    )
    return int(found[0][0])  # type: ignore[call-overload]


async def status_of(node: Node, proof_id: str) -> str:
    async with node.client("north") as c:
        return str((await c.get(f"/api/proofs/{proof_id}")).json()["status"])


async def votes(node: Node, proof_id: str) -> dict[str, Any]:
    async with node.client("north") as c:
        r = await c.get(f"/api/proofs/{proof_id}/votes")
        assert r.status_code == 200, r.text
        return dict(r.json())


async def test_homeservers_federate(federation: Federation) -> None:
    a, b = MatrixUser(federation.north), MatrixUser(federation.south)
    try:
        room = await a.client.room_create(alias=f"fed{uuid.uuid4().hex[:6]}")
        room_id = str(room.room_id)
        await a.client.room_put_state(room_id, "m.room.join_rules", {"join_rule": "public"})
        alias = f"#{room_id and 'x'}"  # unused; join by alias below
        del alias
        canonical = (await a.client.room_get_state_event(room_id, "m.room.canonical_alias")).content["alias"]
        assert (await b.join(canonical)) == room_id
        sent = await a.say(room_id, "hello across federation")

        async def arrived() -> bool:
            return any(e.get("event_id") == sent for e in await b.events(room_id))

        await eventually(arrived, timeout=20)
    finally:
        await a.close()
        await b.close()


async def test_proof_is_validated_by_witnesses_on_both_homeservers(
    node: Node, env: Env, worker: Proc, gateway: Gateway, federation: Federation, quest: dict[str, str]
) -> None:
    proof_id, _author, _ = await new_proof(node, quest)
    room_id, event_id, alias = await posted(env, proof_id)
    assert alias.startswith(f"#oh_north_{slug(LAKE['name'])}_") and alias.endswith(f":{federation.north.name}")
    local = MatrixUser(federation.north)
    remote = MatrixUser(federation.south)
    try:
        assert await local.join(alias) == room_id
        assert await remote.join(alias) == room_id  # over federation
        # The post on A's homeserver: the image in the media store, quest, place, time, machine block.
        post = next(e for e in await local.events(room_id) if e["event_id"] == event_id)
        content = post["content"]
        assert content["msgtype"] == "m.image" and content["url"].startswith(f"mxc://{federation.north.name}/")
        block = content["org.oneheart.proof"]
        assert block["territory"] == "north" and block["proof_id"] == proof_id
        cid = rows(env.dsn_a, "SELECT cid FROM territory_north.evidence WHERE proof_id = %s", proof_id)[0][0]
        assert block["cid"] == cid and cid in content["body"] and "Shore clean-up" in content["body"]
        # ... and on B's homeserver too (history read over federation).
        assert any(e["event_id"] == event_id for e in await remote.events(room_id))

        _, local_headers = member(node, "north")
        _, remote_headers = member(node, "north", "south", home="south")
        await linked(node, local, local_headers, room_id)
        await linked(node, remote, remote_headers, room_id)

        await local.react(room_id, event_id, "👍")
        await remote.react(room_id, event_id, "👍️")

        async def validated() -> bool:
            return await status_of(node, proof_id) == "validated"

        await eventually(validated, timeout=30)
        tally_ = await votes(node, proof_id)
        assert tally_["witnesses"] == 2 and tally_["outcome"] == "validated"
        assert tally_["agree"] == 1.5  # the remote witness weighs 0.5 by default
        assert {v["homeserver"] for v in tally_["votes"]} == {federation.north.name, federation.south.name}

        async def outcome_message() -> Any:
            for e in await remote.events(room_id):
                c = e.get("content", {})
                if c.get("org.oneheart.proof", {}).get("outcome") == "validated":
                    return c
            return None

        message = await eventually(outcome_message, timeout=30)
        assert message["m.relates_to"]["m.in_reply_to"]["event_id"] == event_id
        assert "Validated" in message["body"]
    finally:
        await local.close()
        await remote.close()
    events = rows(
        env.dsn_a,
        "SELECT type FROM territory_north.outbox WHERE envelope->'data'->>'proof_id' = %s AND type LIKE 'proof.%%'",
        proof_id,
    )
    assert sorted(str(t) for (t,) in events) == ["proof.submitted", "proof.validated", "proof.verified"]


async def reacted(node: Node, proof_id: str, **want: Any) -> dict[str, Any]:
    async def check() -> Any:
        got = await votes(node, proof_id)
        return got if all(got[k] == v for k, v in want.items()) else None

    return dict(await eventually(check, timeout=30))


async def test_self_votes_changed_votes_unlinked_users_and_ties(
    node: Node, env: Env, worker: Proc, gateway: Gateway, federation: Federation, quest: dict[str, str]
) -> None:
    proof_id, _author, author_headers = await new_proof(node, quest)
    room_id, event_id, alias = await posted(env, proof_id)
    author, w1, w2, stranger = (MatrixUser(federation.north) for _ in range(4))
    try:
        for user in (author, w1, w2, stranger):
            await user.join(alias)
        await linked(node, author, author_headers, room_id)
        await linked(node, w1, member(node, "north")[1], room_id)
        await linked(node, w2, member(node, "north")[1], room_id)

        await author.react(room_id, event_id, "👍")  # the author's own vote: recorded, never counted
        await stranger.react(room_id, event_id, "👍")  # not linked: ignored
        await w1.react(room_id, event_id, "👍")
        await w1.react(room_id, event_id, "👎")  # changed: replaces the agree
        await w2.react(room_id, event_id, "✅")
        tie = await reacted(node, proof_id, witnesses=2, agree=1.0, disagree=1.0)
        assert tie["outcome"] is None
        assert sorted((v["value"], v["counts"]) for v in tie["votes"]) == [
            ("agree", False),
            ("agree", True),
            ("disagree", True),
        ]
        await asyncio.sleep(1)
        assert await status_of(node, proof_id) == "needs_community"  # a tie stays pending

        # Redacting a reaction withdraws that vote.
        w2_vote = rows(
            env.dsn_a,
            "SELECT event_id FROM territory_north.social_votes WHERE proof_id = %s AND mxid = %s",
            proof_id,
            w2.user_id,
        )[0][0]
        await w2.redact(room_id, str(w2_vote))
        await reacted(node, proof_id, witnesses=1, agree=0.0, disagree=1.0)

        # A moderator settles the dispute; once, and the room hears about it.
        moderator = node.auth(home="north", roles={"north": ["player", "moderator"]})
        async with node.client("north", moderator) as c:
            bad = await c.post(f"/api/proofs/{proof_id}/settle", json={"outcome": "maybe", "reason": "x"})
            assert bad.status_code == 400
            r = await c.post(f"/api/proofs/{proof_id}/settle", json={"outcome": "rejected", "reason": "blurry"})
            assert r.status_code == 200, r.text
            assert r.json()["outcome"] == "rejected" and r.json()["status"] == "invalidated"
            again = await c.post(f"/api/proofs/{proof_id}/settle", json={"outcome": "validated", "reason": "x"})
            assert again.status_code == 409
        async with node.client("north", member(node, "north")[1]) as c:
            r = await c.post(f"/api/proofs/{proof_id}/settle", json={"outcome": "validated", "reason": "x"})
            assert r.status_code == 403

        async def announced() -> Any:
            for e in await w1.events(room_id):
                block = e.get("content", {}).get("org.oneheart.proof", {})
                if block.get("proof_id") == proof_id and block.get("outcome") == "rejected":
                    return e["content"]["body"]
            return None

        assert "settled by a moderator: blurry" in await eventually(announced, timeout=30)
    finally:
        for user in (author, w1, w2, stranger):
            await user.close()
    assert emitted(env, proof_id, "proof.rejected") == 1


async def test_web_votes(node: Node, env: Env, worker: Proc, gateway: Gateway, quest: dict[str, str]) -> None:
    proof_id, _author, author_headers = await new_proof(node, quest)
    await posted(env, proof_id)
    voters = [member(node, "north")[1] for _ in range(4)]

    async def vote(headers: dict[str, str], value: str, territory: str = "north") -> httpx.Response:
        async with node.client(territory, headers) as c:
            return await c.post(f"/api/proofs/{proof_id}/votes", json={"value": value})

    assert (await vote(author_headers, "agree")).status_code == 403  # no self-votes
    outsider = member(node, "south", home="south")[1]
    assert (await vote(outsider, "agree")).status_code == 403  # no role in north
    assert (await vote(voters[0], "perhaps")).status_code == 400
    assert (await vote(voters[0], "agree")).json()["agree"] == 1.0
    changed = (await vote(voters[0], "disagree")).json()  # replaces the first vote
    assert (changed["witnesses"], changed["agree"], changed["disagree"]) == (1, 0.0, 1.0)
    await vote(voters[1], "agree")
    two_of_three = (await vote(voters[2], "agree")).json()
    assert two_of_three["outcome"] is None  # 2/3 is not MORE than 2/3
    done = (await vote(voters[3], "agree")).json()
    assert done["outcome"] == "validated" and done["status"] == "validated" and done["witnesses"] == 4
    assert (await vote(voters[1], "disagree")).status_code == 409  # decided
    assert emitted(env, proof_id, "proof.validated") == 1


async def test_gateway_killed_mid_vote(
    node: Node, env: Env, worker: Proc, gateway: Gateway, federation: Federation, quest: dict[str, str]
) -> None:
    """Votes cast while the gateway is dead reach it when it is back (the homeserver retries its
    transactions); a transaction delivered twice is applied once."""
    env.cli("social", "policy", "north", "--min-witnesses", "3")
    proof_id, _, _ = await new_proof(node, quest)
    room_id, event_id, alias = await posted(env, proof_id)
    ws = [MatrixUser(federation.north) for _ in range(3)]
    try:
        for w in ws:
            await w.join(alias)
            await linked(node, w, member(node, "north")[1], room_id)
        await ws[0].react(room_id, event_id, "👍")
        await reacted(node, proof_id, witnesses=1)

        gateway.kill()  # SIGKILL: no goodbye
        await ws[1].react(room_id, event_id, "👎")
        await ws[1].react(room_id, event_id, "👍")
        await ws[2].react(room_id, event_id, "👍")
        await asyncio.sleep(1)
        gateway.start()

        final = await reacted(node, proof_id, outcome="validated")
        assert (final["witnesses"], final["agree"], final["disagree"]) == (3, 3.0, 0.0)
        assert await status_of(node, proof_id) == "validated"

        # The homeserver sends a transaction again (as after a lost 200): applied once.
        txn_id = f"replay-{uuid.uuid4().hex}"
        fake = {
            "type": "m.reaction",
            "sender": ws[0].user_id,
            "room_id": room_id,
            "event_id": f"$replayed{uuid.uuid4().hex}",
            "origin_server_ts": 1000,  # older than the witness's vote: out of order, it changes nothing
            "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": "👎"}},
        }
        url = f"http://127.0.0.1:{federation.gateway_port}/territories/north/_matrix/app/v1/transactions/{txn_id}"
        async with httpx.AsyncClient(timeout=10) as c:
            for _ in range(2):
                r = await c.put(
                    url, json={"events": [fake]}, headers={"Authorization": f"Bearer {federation.north.cfg.hs_token}"}
                )
                assert r.status_code == 200
            forged = await c.put(url, json={"events": [fake]}, headers={"Authorization": "Bearer not-the-token"})
            assert forged.status_code == 403
        applied = rows(
            env.dsn_a, "SELECT count(*) FROM territory_north.matrix_txns WHERE txn_id LIKE %s", f"{txn_id}:%"
        )
        assert applied == [(1,)]
        after = await votes(node, proof_id)
        assert (after["witnesses"], after["agree"], after["disagree"]) == (3, 3.0, 0.0)
    finally:
        env.cli("social", "policy", "north", "--min-witnesses", "2")
        for w in ws:
            await w.close()
    assert emitted(env, proof_id, "proof.validated") == 1


async def test_homeserver_b_stopped_and_restarted_loses_nothing(
    node: Node, env: Env, worker: Proc, gateway: Gateway, federation: Federation, quest: dict[str, str]
) -> None:
    """While B's homeserver is down, A posts a proof in a room B's witness is in; when B is back
    the post reaches B, and the witness's vote from B counts."""
    first, _, _ = await new_proof(node, quest)
    room_id, _, alias = await posted(env, first)
    remote, local = MatrixUser(federation.south), MatrixUser(federation.north)
    try:
        await remote.join(alias)
        await local.join(alias)
        await linked(node, remote, member(node, "north", "south", home="south")[1], room_id)
        await linked(node, local, member(node, "north")[1], room_id)
        await remote.close()

        await asyncio.to_thread(synapse.stop_synapse, federation.south.hs)
        try:
            proof_id, _, _ = await new_proof(node, quest)
            _, event_id, _ = await posted(env, proof_id)
            await local.react(room_id, event_id, "👍")
            await reacted(node, proof_id, witnesses=1)
        finally:
            await asyncio.to_thread(synapse.start_synapse, federation.south.hs)

        remote = MatrixUser(federation.south, remote.user_id, token=remote.client.access_token)

        async def arrived() -> bool:
            return any(e["event_id"] == event_id for e in await remote.events(room_id))

        await eventually(arrived, timeout=60, interval=0.5)
        await remote.react(room_id, event_id, "👍")
        final = await reacted(node, proof_id, outcome="validated")
        assert final["witnesses"] == 2 and final["agree"] == 1.5
    finally:
        await remote.close()
        await local.close()


async def test_homeserver_a_down_delays_posting(
    node: Node, env: Env, worker: Proc, gateway: Gateway, federation: Federation, quest: dict[str, str]
) -> None:
    await asyncio.to_thread(synapse.stop_synapse, federation.north.hs)
    seen = len(gateway.log_text())
    try:
        proof_id, _, _ = await new_proof(node, quest)

        async def retried() -> bool:
            return "event handler failed; will retry" in gateway.log_text()[seen:]

        await eventually(retried, timeout=60)
        await asyncio.sleep(2)
        assert await status_of(node, proof_id) == "needs_community"
        assert rows(env.dsn_a, "SELECT count(*) FROM territory_north.social_posts WHERE proof_id = %s", proof_id) == [
            (0,)
        ]
    finally:
        await asyncio.to_thread(synapse.start_synapse, federation.north.hs)
    room_id, _, alias = await posted(env, proof_id, timeout=60)  # posted once the homeserver is back
    assert rows(env.dsn_a, "SELECT count(*) FROM territory_north.social_posts WHERE proof_id = %s", proof_id) == [(1,)]
    # The restarted homeserver numbers its transactions from 1 again (SQLite): still applied.
    witness = MatrixUser(federation.north)
    try:
        await witness.join(alias)
        await linked(node, witness, member(node, "north")[1], room_id)
    finally:
        await witness.close()


async def sso_login(node: Node, server: Any, username: str, password: str) -> dict[str, Any]:
    """Element's single sign-on, as a browser does it: the homeserver sends the person to the
    node's OIDC provider, they sign in there, and come back with a login token for Matrix."""
    from tests.test_idp import form_fields

    done = f"{node.url}/sso-done"
    async with httpx.AsyncClient(follow_redirects=False, timeout=30) as b:
        r = await b.get(
            f"{server.hs.url}/_matrix/client/v3/login/sso/redirect/oidc-oneheart", params={"redirectUrl": done}
        )
        assert r.status_code in (302, 303), r.text
        page = await b.get(r.headers["location"])  # the provider's sign-in page
        assert page.status_code == 200, page.text
        fields = form_fields(page.text)
        signed = await b.post(f"{node.url}/oidc/login", data={**fields, "username": username, "password": password})
        assert signed.status_code == 302, signed.text
        # Synapse marks its session cookie Secure; browsers keep such cookies for loopback
        # (a secure context) even over http, httpx does not: carry it over as a browser would.
        session = "; ".join(c.split(";", 1)[0] for c in r.headers.get_list("set-cookie"))
        back = await b.get(signed.headers["location"], headers={"Cookie": session})  # the homeserver's callback
        assert back.status_code in (302, 303), back.text
        location = back.headers["location"]
        assert location.startswith(done), location
        token = httpx.URL(location).params["loginToken"]
        login = await b.post(f"{server.hs.url}/_matrix/client/v3/login", json={"type": "m.login.token", "token": token})
        assert login.status_code == 200, login.text
        return dict(login.json())


async def test_single_sign_on_links_the_matrix_user(
    node: Node, env: Env, worker: Proc, gateway: Gateway, federation: Federation, quest: dict[str, str]
) -> None:
    """A player signs in to Element through the node's OIDC provider: same account, and their
    reactions count without a link code."""
    username, password = f"sso{uuid.uuid4().hex[:6]}", "correct horse battery staple 42"
    env.cli("user", "add", username, "--display-name", "Sso Witness", "--password-stdin", stdin=password + "\n")
    login = await sso_login(node, federation.north, username, password)
    assert login["user_id"] == f"@{username}:{federation.north.name}"
    witness = MatrixUser(federation.north, login["user_id"], token=login["access_token"])
    helper = MatrixUser(federation.north)
    try:
        proof_id, _, _ = await new_proof(node, quest)
        room_id, event_id, alias = await posted(env, proof_id)
        await witness.join(alias)
        await helper.join(alias)
        await linked(node, helper, member(node, "north")[1], room_id)
        await witness.react(room_id, event_id, "👍")
        await helper.react(room_id, event_id, "👍")
        final = await reacted(node, proof_id, outcome="validated")
        assert final["witnesses"] == 2
    finally:
        await witness.close()
        await helper.close()
    (account,) = rows(env.dsn_a, "SELECT id::text FROM global.idp_accounts WHERE username = %s", username)[0]
    (user_id,) = rows(
        env.dsn_a, "SELECT id FROM global.users WHERE issuer = %s AND subject = %s", f"{node.url}/oidc", account
    )[0]
    assert rows(
        env.dsn_a, "SELECT player_id, via FROM territory_north.matrix_links WHERE mxid = %s", login["user_id"]
    ) == [(user_id, "sso")]
    assert user_id in {uuid.UUID(v["voter_id"]) for v in final["votes"]}
