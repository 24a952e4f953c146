"""Outbox -> JetStream -> consumers: exactly once across restarts, failures retried."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from core.events.bus import connect, ensure_stream
from core.events.consumers import Consumer, run_consumer
from core.events.envelope import Event, known_types, validate, validator
from core.routing import Router
from services.zones.dto import ZoneIn
from services.zones.service import create_zone
from tests.conftest import Env, Proc, eventually, rows

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "events"


async def make_zones(router: Router, territory: str, mark: str, n: int) -> None:
    for i in range(n):
        async with router.transaction(await router.lookup(territory)) as conn:
            await create_zone(conn, ZoneIn(name=f"{mark}-{i}", lat=1.0, lng=2.0, radius_m=10.0))


def activity_count(dsn: str, territory: str, mark: str) -> int:
    sql = f"SELECT count(*), count(DISTINCT event_id) FROM territory_{territory}.activity WHERE data->>'name' LIKE %s"
    total, distinct = rows(dsn, sql, f"{mark}-%")[0]
    assert total == distinct
    return int(total)  # type: ignore[arg-type]


async def test_exactly_once_across_relay_and_consumer_restarts(env: Env, router: Router, tmp_path: Path) -> None:
    mark = f"eo-{uuid.uuid4().hex[:8]}"
    relay = Proc(env, ["worker", "--no-consumers"], tmp_path / "relay.log").start()
    consumer = Proc(env, ["worker", "--no-relay"], tmp_path / "consumer.log").start()
    try:
        await make_zones(router, "dk", mark + "a", 20)
        await make_zones(router, "sami", mark + "a", 20)

        async def some_handled() -> bool:
            return activity_count(env.dsn_a, "dk", mark + "a") > 0

        await eventually(some_handled)
        relay.kill(signal.SIGKILL)
        consumer.kill(signal.SIGKILL)
        # Written while nothing runs: must wait in the outbox, then flow once both restart.
        await make_zones(router, "dk", mark + "b", 15)
        await make_zones(router, "sami", mark + "b", 15)
        relay.start()
        consumer.start()
        writing = asyncio.create_task(make_zones(router, "dk", mark + "c", 30))
        await asyncio.sleep(0.3)
        consumer.kill(signal.SIGKILL)  # mid-stream: some handled, some acked or not
        consumer.start()
        await asyncio.sleep(0.3)
        relay.kill(signal.SIGKILL)
        relay.start()
        await writing

        async def all_handled() -> bool:
            return (
                activity_count(env.dsn_a, "dk", mark + "a") == 20
                and activity_count(env.dsn_b, "sami", mark + "a") == 20
                and activity_count(env.dsn_a, "dk", mark + "b") == 15
                and activity_count(env.dsn_b, "sami", mark + "b") == 15
                and activity_count(env.dsn_a, "dk", mark + "c") == 30
            )

        await eventually(all_handled, timeout=60)
        await asyncio.sleep(2)  # any late redelivery would show up as a second row now
        assert await all_handled()
        assert rows(env.dsn_a, "SELECT count(*) FROM territory_dk.outbox WHERE published_at IS NULL") == [(0,)]
        assert rows(env.dsn_b, "SELECT count(*) FROM territory_sami.outbox WHERE published_at IS NULL") == [(0,)]
    finally:
        relay.kill(signal.SIGTERM)
        consumer.kill(signal.SIGTERM)


async def test_failing_handler_is_retried_not_lost(env: Env, router: Router, worker: Proc) -> None:
    mark = f"flaky-{uuid.uuid4().hex[:8]}"
    attempts: dict[uuid.UUID, int] = {}
    handled: list[uuid.UUID] = []

    async def flaky(conn, event: Event) -> None:  # type: ignore[no-untyped-def]
        if not event.data["name"].startswith(mark):
            return
        attempts[event.id] = attempts.get(event.id, 0) + 1
        if attempts[event.id] < 3:
            raise RuntimeError("downstream hiccup")
        handled.append(event.id)

    settings = env.settings.replace(events={"consumer_max_backoff": 0.2})
    nc, js = await connect(settings, "test")
    await ensure_stream(js, settings)
    name = f"test-flaky-{uuid.uuid4().hex[:6]}"
    task = asyncio.create_task(run_consumer(router, js, Consumer(name, "oh.sami.zone.created", flaky), settings))
    try:
        await make_zones(router, "sami", mark, 5)

        async def done() -> bool:
            return len(handled) == 5

        await eventually(done, timeout=30)
        assert all(n == 3 for n in attempts.values())
        assert len(set(handled)) == 5
        # The failed attempts rolled back: only the successful ones are in the inbox.
        inbox = rows(env.dsn_b, "SELECT count(*) FROM territory_sami.inbox WHERE consumer = %s", name)
        assert inbox[0][0] >= 5
    finally:
        task.cancel()
        await nc.drain()


def test_event_schemas_are_valid_json_schema() -> None:
    files = sorted(SCHEMAS.glob("*.json"))
    assert {f.stem for f in files} >= {"envelope", "zone.created", "territory.created"}
    for f in files:
        Draft202012Validator.check_schema(json.loads(f.read_text()))
    with pytest.raises(Exception, match="radius_m"):
        validate("zone.created", {"zone_id": str(uuid.uuid4()), "name": "x", "lat": 1, "lng": 1, "radius_m": -1})
    with pytest.raises(KeyError):
        validator("no.such_event")


async def test_every_published_event_matches_its_schema(env: Env, router: Router, worker: Proc) -> None:
    await make_zones(router, "dk", f"schema-{uuid.uuid4().hex[:6]}", 3)
    nc, js = await connect(env.settings, "test")
    try:
        await ensure_stream(js, env.settings)

        async def published() -> bool:
            return rows(env.dsn_a, "SELECT count(*) FROM territory_dk.outbox WHERE published_at IS NULL") == [(0,)]

        await eventually(published)
        info = await js.stream_info(env.settings.events.stream_name)
        assert info.state.messages > 0
        types = set()
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(env.settings.events.stream_name, seq)
            event = Event.parse(msg.data)  # validates the envelope
            validate(event.type, event.data)
            assert msg.subject == f"oh.{event.territory}.{event.type}"
            assert msg.headers and msg.headers.get("Nats-Msg-Id") == str(event.id)
            types.add(event.type)
        assert types <= set(known_types())
        assert {"zone.created", "territory.created", "server.added"} <= types
    finally:
        await nc.drain()
