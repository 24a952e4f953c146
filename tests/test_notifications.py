"""Notifications: stored per player, listed, marked read, streamed live over Server-Sent Events.

Real node, worker, Postgres and NATS. Notifications come from real payouts (tests/test_impact.py
shows how approved proofs are made).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from devstack.system import free_port

from core.routing import Router
from tests.conftest import Env, Node, Proc, start_node
from tests.test_impact import approved, new_territory, paid, quest_in


async def next_event(lines: AsyncIterator[str], timeout: float = 30) -> dict[str, Any]:
    """The next SSE event (comment lines are returned as {"comment": [...]} events too)."""
    event: dict[str, Any] = {}

    async def read() -> dict[str, Any]:
        async for line in lines:
            if line == "":
                if event:
                    return event
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "":
                event.setdefault("comment", []).append(value)
            else:
                event[field] = value
        raise AssertionError("stream ended")

    return await asyncio.wait_for(read(), timeout)


async def next_notification(lines: AsyncIterator[str], timeout: float = 30) -> dict[str, Any]:
    while True:
        event = await next_event(lines, timeout)
        if event.get("event") == "notification":
            return {"id": int(event["id"]), **json.loads(event["data"])}


def as_player(node: Node, code: str, user: uuid.UUID) -> dict[str, str]:
    return node.auth(home=code, roles={code: ["player"]}, user_id=user)


async def test_stream_pushes_notifications_live_to_their_player_only(
    env: Env, router: Router, node: Node, worker: Proc
) -> None:
    code = await new_territory(router, "a")
    quest_id, _ = await quest_in(node, code)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    async with (
        node.client(code, as_player(node, code, alice)) as a,
        node.client(code, as_player(node, code, bob)) as b,
        a.stream("GET", "/api/notifications/stream") as alice_stream,
        b.stream("GET", "/api/notifications/stream") as bob_stream,
    ):
        assert alice_stream.status_code == 200
        assert alice_stream.headers["content-type"].startswith("text/event-stream")
        alice_lines, bob_lines = alice_stream.aiter_lines(), bob_stream.aiter_lines()
        for lines in (alice_lines, bob_lines):
            assert (await next_event(lines))["comment"] == ["connected"]
        started = time.perf_counter()
        proof = await approved(router, code, quest_id, alice)
        first = await next_notification(alice_lines)
        latency = time.perf_counter() - started
        assert first["kind"] == "payout" and first["data"]["proof_id"] == str(proof)
        assert first["title"] == "+75 XP, +15 Heart tokens" and first["read_at"] is None
        assert (await next_notification(alice_lines))["kind"] == "badge"  # first_heart
        # Bob's stream got nothing of Alice's: his first notification is his own payout.
        bobs = await approved(router, code, quest_id, bob)
        theirs = await next_notification(bob_lines)
        assert theirs["kind"] == "payout" and theirs["data"]["proof_id"] == str(bobs)
    print(f"approval committed -> payout notification on the stream: {latency * 1000:.0f} ms")

    # Reconnecting with Last-Event-ID replays what came after it, in order.
    async with (
        node.client(code, as_player(node, code, alice)) as a,
        a.stream("GET", "/api/notifications/stream", headers={"Last-Event-ID": "0"}) as again,
    ):
        lines = again.aiter_lines()
        replayed = [await next_notification(lines), await next_notification(lines)]
        assert [n["kind"] for n in replayed] == ["payout", "badge"] and replayed[0]["id"] == first["id"]
        assert replayed[0]["id"] < replayed[1]["id"]
        bad = await a.get("/api/notifications/stream", headers={"Last-Event-ID": "not-a-number"})
        assert bad.status_code == 400


async def test_stream_without_nats_heartbeats_reads_and_ends(
    env: Env, router: Router, node: Node, worker: Proc, tmp_path: Path
) -> None:
    """An API node that cannot reach NATS still delivers, at the next heartbeat; streams end."""
    deaf = start_node(
        env,
        tmp_path / "node.log",
        OH_NATS_URL=f"nats://127.0.0.1:{free_port()}",
        OH_NOTIFICATION_HEARTBEAT_SECONDS="0.5",
        OH_NOTIFICATION_STREAM_SECONDS="6",
    )
    try:
        code = await new_territory(router, "b")
        quest_id, _ = await quest_in(node, code)
        player = uuid.uuid4()
        async with (
            deaf.client(code, as_player(deaf, code, player)) as c,
            c.stream("GET", "/api/notifications/stream") as stream,
        ):
            lines = stream.aiter_lines()
            assert (await next_event(lines))["comment"] == ["connected"]
            assert (await next_event(lines, timeout=3))["comment"] == ["heartbeat"]
            proof = await approved(router, code, quest_id, player)
            got = await next_notification(lines, timeout=20)
            assert got["kind"] == "payout" and got["data"]["proof_id"] == str(proof)
            comments: list[str] = []
            while "stream ends" not in " ".join(comments):
                comments += (await next_event(lines, timeout=10)).get("comment", [])
    finally:
        deaf.proc.kill(signal.SIGTERM)


async def test_list_mark_read_and_privacy(env: Env, router: Router, node: Node, worker: Proc) -> None:
    code = await new_territory(router, "a")
    quest_id, _ = await quest_in(node, code)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    for _ in range(2):
        await paid(env, "a", code, await approved(router, code, quest_id, alice))
    async with node.client(code, as_player(node, code, alice)) as a, node.client(code, as_player(node, code, bob)) as b:
        page = (await a.get("/api/notifications")).json()
        kinds = [n["kind"] for n in page["items"]]
        assert kinds == ["level_up", "payout", "badge", "payout"]  # newest first; 75 + 75 XP: level 2
        assert page["unread"] == 4 and page["next_cursor"] is None
        ids = [n["id"] for n in page["items"]]
        # Bob sees none of them and cannot touch them; staff see only their own too.
        assert (await b.get("/api/notifications")).json() == {"items": [], "next_cursor": None, "unread": 0}
        assert (await b.post(f"/api/notifications/{ids[0]}/read")).status_code == 404
        async with node.client(code) as staff:
            assert (await staff.get("/api/notifications")).json()["items"] == []
        # Mark one read: kept as first read.
        marked = await a.post(f"/api/notifications/{ids[1]}/read")
        assert marked.status_code == 200 and marked.json()["read_at"] is not None
        again = await a.post(f"/api/notifications/{ids[1]}/read")
        assert again.json()["read_at"] == marked.json()["read_at"]
        unread = (await a.get("/api/notifications", params={"unread": "true"})).json()
        assert [n["id"] for n in unread["items"]] == [ids[0], ids[2], ids[3]] and unread["unread"] == 3
        # Pages of one.
        seen, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            got = (await a.get("/api/notifications", params=params)).json()
            seen += [n["id"] for n in got["items"]]
            cursor = got["next_cursor"]
            if cursor is None:
                break
        assert seen == ids
        assert (await a.post("/api/notifications/read-all")).json() == {"marked": 3}
        assert (await a.get("/api/notifications")).json()["unread"] == 0
        assert (await a.post("/api/notifications/read-all")).json() == {"marked": 0}
        for bad in ("/api/notifications/0/read", "/api/notifications/99999999999999999999/read"):
            assert (await a.post(bad)).status_code in (400, 404)
        assert (await a.get("/api/notifications", params={"cursor": "!!"})).status_code == 400
    async with httpx.AsyncClient(base_url=node.url) as anonymous:
        assert (await anonymous.get("/api/notifications", headers={"X-Territory": code})).status_code == 401
