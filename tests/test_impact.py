"""Impact end to end: approvals pay once, amounts follow the documented formula, levels, badges.

Everything runs for real: the node, a worker (relay, verification and impact consumers),
Postgres on two servers, NATS JetStream. Approved proofs are recorded in-process with the proofs
service (as the upload route does) and concluded the way the verification worker and the
community validation do: status change and event in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from devstack.postgres import database_dsn

from core.cid import cid_of
from core.events.bus import connect, ensure_stream
from core.events.envelope import new_event
from core.events.outbox import emit
from core.routing import Router
from services.impact import badges, rules
from services.impact.models import badge_definitions
from services.players.service import ensure_player
from services.proofs.models import proofs
from services.proofs.service import Place, Stored, open_assignment, submit
from services.quests.models import assignments
from services.quests.service import start_quest
from territories.policy import write_policy
from territories.registry import Registry
from tests.conftest import Env, Node, Proc, eventually, rows
from tests.test_quests import AMAGER, make_quest, make_zone

BEACH = (55.6600, 12.6400)


@pytest.fixture(scope="module")
def impact_worker(env: Env, router: Router, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    w = Proc(env, ["worker"], tmp_path_factory.mktemp("impact") / "worker.log").start()
    yield w
    w.kill(signal.SIGTERM)


async def new_territory(router: Router, server: str) -> str:
    code = f"imp_{uuid.uuid4().hex[:8]}"
    await Registry(router, "test").create_territory(code, f"Impact {code}", server)
    return code


def dsn(env: Env, server: str) -> str:
    return env.dsn_a if server == "a" else env.dsn_b


async def quest_in(node: Node, code: str, **over: Any) -> tuple[uuid.UUID, uuid.UUID]:
    zone = await make_zone(node, {**AMAGER, "name": "impact beach"}, territory=code)
    quest = await make_quest(node, zone, territory=code, difficulty=3, max_completions=100, **over)
    return uuid.UUID(str(quest["id"])), uuid.UUID(zone)


async def approved(
    router: Router,
    code: str,
    quest_id: uuid.UUID,
    player: uuid.UUID,
    *,
    captured: datetime | None = None,
    status: str = "auto_approved",
    validated: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Record a proof and conclude it like the verification worker (``auto_approved``: emits
    proof.verified) or the community (``validated``: emits proof.validated with ``validated``
    as extra fields), in one transaction. ``needs_community`` emits nothing further."""
    content = uuid.uuid4().bytes
    stored = Stored(
        cid_of(content),
        hashlib.sha256(content).hexdigest(),
        len(content),
        "video/mp4",
        "video",
        None,
        None,
        None,
        None,
        {},
    )
    async with router.transaction(await router.lookup(code)) as conn:
        await ensure_player(conn, player)
        await start_quest(conn, quest_id, player)
        assignment = await open_assignment(conn, quest_id, player)
        place = Place(*BEACH, 5.0, captured or datetime.now(UTC) - timedelta(minutes=5))
        accepted = await submit(conn, assignment, quest_id, player, place, stored)
        proof_id = accepted.proof_id
        await conn.execute(
            proofs.update().where(proofs.c.id == proof_id).values(status=status, score=90, verified_at=sa.func.now())
        )
        if status != "needs_community":
            await conn.execute(assignments.update().where(assignments.c.id == assignment.id).values(status="completed"))
        ids = {"proof_id": str(proof_id), "quest_id": str(quest_id), "player_id": str(player)}
        if status == "auto_approved":
            await emit(conn, "proof.verified", {**ids, "score": 90, "flags": [], "decision": "auto_approved"})
        elif status == "validated":
            await emit(conn, "proof.validated", {**ids, "witnesses": 3, **(validated or {})})
    return proof_id


async def paid(env: Env, server: str, code: str, proof_id: uuid.UUID, timeout: float = 30) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = rows(
            dsn(env, server),
            f"SELECT xp, tokens, multipliers, ledger_seq, source, validated_at FROM territory_{code}.payouts "
            "WHERE proof_id = %s",
            proof_id,
        )
        if not found:
            return None
        xp, tokens, multipliers, seq, source, validated_at = found[0]
        return {
            "xp": xp,
            "tokens": tokens,
            "m": multipliers,
            "seq": seq,
            "source": source,
            "validated_at": validated_at,
        }

    return dict(await eventually(check, timeout=timeout, interval=0.1))


def test_formula_by_hand() -> None:
    """The documented formula, with numbers worked out by hand (not by the code under test)."""
    p = rules.ImpactPolicy()
    zone = str(uuid.uuid4())
    assert [p.difficulty[str(d)] for d in range(1, 6)] == [1.0, 1.25, 1.5, 2.0, 2.5]
    # difficulty 3: 50 * 1.5 = 75 XP, 10 * 1.5 = 15 tokens
    assert (
        rules.award(p, rules.Facts(50, 10, 3, zone, 1, 1)).xp,
        rules.award(p, rules.Facts(50, 10, 3, zone, 1, 1)).tokens,
    ) == (75, 15)
    # streak of 2 days: 1.5 * 1.05 = 1.575 -> 78.75 -> 79 XP, 15.75 -> 16 tokens (half up)
    second = rules.award(p, rules.Facts(50, 10, 3, zone, 1, 2))
    assert (second.xp, second.tokens, second.multipliers["total"]) == (79, 16, 1.575)
    # caps: level 100 -> 1.5 (not 2.98), streak 30 -> 1.5, 3 h -> 1.2, 7 people -> 1 + 0.1 * 3 = 1.3
    m = rules.award(p, rules.Facts(10, 10, 5, zone, 100, 30, 180, 7)).multipliers
    assert (m["level"], m["streak"], m["duration"], m["beneficiaries"]) == (1.5, 1.5, 1.2, 1.3)
    assert m["total"] == 4.0  # 2.5 * 1.5 * 1.5 * 1.2 * 1.3 = 8.775, capped
    # a short action is not paid less: 30 minutes -> 1.0
    assert rules.award(p, rules.Facts(10, 10, 1, zone, 1, 1, 30)).multipliers["duration"] == 1.0
    # the level curve: round(100 * (n - 1) ** 1.5)
    assert [rules.xp_for_level(p, n) for n in (1, 2, 3, 4, 5, 10)] == [0, 100, 283, 520, 800, 2700]
    assert [rules.level_for(p, xp) for xp in (0, 99, 100, 282, 283, 10**12)] == [1, 1, 2, 2, 3, 100]
    today = datetime(2026, 5, 10).date()
    days = {today - timedelta(days=d) for d in (1, 2, 4)}
    assert rules.streak_days(today, days) == 3  # today, yesterday, the day before; not 4 days ago


async def test_a_validated_proof_pays_out_once_even_when_delivered_three_times(
    env: Env, router: Router, node: Node, impact_worker: Proc
) -> None:
    code = await new_territory(router, "a")
    quest_id, _ = await quest_in(node, code)
    player = uuid.uuid4()
    # Proof A went to the community, which validated it: the same proof.validated envelope
    # arrives three times (distinct Nats-Msg-Id, so the stream's dedupe window keeps them all),
    # and twice more as new envelopes (a re-emitting validator).
    proof_a = await approved(router, code, quest_id, player, status="needs_community")
    async with router.transaction(await router.lookup(code)) as conn:
        await conn.execute(proofs.update().where(proofs.c.id == proof_a).values(status="validated"))
        await conn.execute(assignments.update().where(assignments.c.player_id == player).values(status="completed"))
    data = {"proof_id": str(proof_a), "quest_id": str(quest_id), "player_id": str(player), "witnesses": 4}
    event = new_event(code, "proof.validated", data)
    envelopes = [
        event,
        event,
        event,
        new_event(code, "proof.validated", data),
        new_event(code, "proof.validated", data),
    ]
    # Proof B was auto-approved (paid by proof.verified), and later validated by the community too.
    proof_b = await approved(router, code, quest_id, player)
    first_b = await paid(env, "a", code, proof_b)
    nc, js = await connect(env.settings, "test")
    try:
        await ensure_stream(js, env.settings)
        last = 0
        for e in envelopes:
            ack = await js.publish(
                e.subject, json.dumps(e.to_json()).encode(), headers={"Nats-Msg-Id": uuid.uuid4().hex}
            )
            last = ack.seq
        b_event = new_event(code, "proof.validated", {**data, "proof_id": str(proof_b)})
        ack = await js.publish(
            b_event.subject, json.dumps(b_event.to_json()).encode(), headers={"Nats-Msg-Id": str(b_event.id)}
        )
        last = max(last, ack.seq)
        assert (await js.stream_info(env.settings.events.stream_name)).state.last_seq >= last

        async def all_handled() -> bool:
            info = await js.consumer_info(env.settings.events.stream_name, "impact-validated")
            return info.ack_floor.stream_seq >= last and info.num_ack_pending == 0

        await eventually(all_handled, timeout=60)
    finally:
        await nc.drain()

    a = await paid(env, "a", code, proof_a)
    assert (a["xp"], a["tokens"], a["source"]) == (75, 15, "validated")
    b = await paid(env, "a", code, proof_b)
    assert (b["xp"], b["tokens"], b["seq"], b["source"]) == (
        first_b["xp"],
        first_b["tokens"],
        first_b["seq"],
        "auto_approved",
    )
    assert b["validated_at"] is not None  # validated later: counted, not paid again
    schema = f"territory_{code}"
    entries = rows(
        env.dsn_a,
        f"SELECT ref_id, count(*) FROM {schema}.ledger_entries WHERE ref_type = 'proof' GROUP BY ref_id ORDER BY 1",
    )
    assert sorted(entries) == sorted([(str(proof_a), 1), (str(proof_b), 1)])
    account = f"player:{player}"
    balance = rows(env.dsn_a, f"SELECT tokens, xp FROM {schema}.balances WHERE account = %s", account)
    assert balance == [(a["tokens"] + b["tokens"], a["xp"] + b["xp"])]
    # One balance change per proof: the player's account was touched by exactly two entries.
    touched = rows(env.dsn_a, f"SELECT count(*) FROM {schema}.ledger_entries WHERE credit = %s", account)
    assert touched == [(2,)]
    assert rows(env.dsn_a, f"SELECT xp, level FROM {schema}.players WHERE id = %s", player) == [(a["xp"] + b["xp"], 2)]
    # The inbox saw three distinct events for proof A (the triple delivery is one event id).
    inbox = rows(
        env.dsn_a,
        f"SELECT count(*) FROM {schema}.inbox WHERE consumer = 'impact-validated' AND event_id = ANY(%s)",
        [e.id for e in envelopes],
    )
    assert inbox == [(3,)]
    kinds = rows(
        env.dsn_a, f"SELECT kind, count(*) FROM {schema}.notifications WHERE player_id = %s GROUP BY kind", player
    )
    assert dict(kinds) == {"payout": 2, "validated": 2, "badge": 1, "level_up": 1}
    payouts_made = rows(
        env.dsn_a,
        f"SELECT count(*) FROM {schema}.outbox WHERE type = 'payout.made' AND envelope->'data'->>'player_id' = %s",
        str(player),
    )
    assert payouts_made == [(2,)]


async def test_amounts_levels_badges_and_notifications(
    env: Env, router: Router, node: Node, impact_worker: Proc
) -> None:
    """On server b, so public.badge_definitions is loaded there too. A test badge (3 approved
    proofs of a category only this test uses, valid 30 days) stands in for "10 in category X"."""
    code = await new_territory(router, "b")
    category = f"imp-{uuid.uuid4().hex[:8]}"
    quest_id, zone_id = await quest_in(node, code, category=category)
    badge = f"test_{uuid.uuid4().hex[:8]}"
    await badges.ensure_catalogue(await router.engine("b"))
    async with (await router.engine("b")).begin() as conn:
        await conn.execute(
            badge_definitions.insert().values(
                code=badge,
                name="Test streaker",
                description="3 approved proofs of the test category.",
                rule={"kind": "count", "count": 3, "category": category},
                valid_days=30,
            )
        )
    try:
        player = uuid.uuid4()
        today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
        # 1: difficulty 3, level 1, streak 1 -> x1.5
        p1 = await approved(router, code, quest_id, player, captured=today - timedelta(days=2))
        assert (await paid(env, "b", code, p1))["xp"] == 75
        # 2: the next day, streak 2 -> x1.575: 79 XP, 16 tokens; 154 XP in all: level 2
        p2 = await approved(router, code, quest_id, player, captured=today - timedelta(days=1))
        second = await paid(env, "b", code, p2)
        assert (second["xp"], second["tokens"], second["m"]["streak"], second["m"]["total"]) == (79, 16, 1.05, 1.575)
        # 3: the zone counts double now; level 2 (x1.02), streak 3 (x1.10):
        #    2 * 1.5 * 1.02 * 1.1 = 3.366 -> 168.3 -> 168 XP, 33.66 -> 34 tokens; 322 XP: level 3
        async with router.transaction(await router.lookup(code)) as conn:
            await write_policy(conn, rules.KEY, rules.ImpactPolicy, {"zones": {str(zone_id): 2.0}})
        p3 = await approved(router, code, quest_id, player, captured=today)
        third = await paid(env, "b", code, p3)
        assert (third["xp"], third["tokens"], third["m"]["total"]) == (168, 34, 3.366)
        # 4: validated by the community, who confirmed 3 hours and 7 people helped:
        #    2 * 1.5 * 1.04 * 1.1 * 1.2 * 1.3 = 5.35 -> capped at 4.0: 200 XP, 40 tokens; 522 XP: level 4
        p4 = await approved(
            router,
            code,
            quest_id,
            player,
            captured=today,
            status="validated",
            validated={"duration_minutes": 180, "beneficiaries": 7},
        )
        fourth = await paid(env, "b", code, p4)
        assert (fourth["xp"], fourth["tokens"], fourth["source"]) == (200, 40, "validated")
        assert fourth["m"]["duration"] == 1.2 and fourth["m"]["beneficiaries"] == 1.3 and fourth["m"]["total"] == 4.0
    finally:
        async with (await router.engine("b")).begin() as conn:
            await conn.execute(badge_definitions.delete().where(badge_definitions.c.code == badge))

    schema = f"territory_{code}"
    total_xp, total_tokens = 75 + 79 + 168 + 200, 15 + 16 + 34 + 40
    assert rows(env.dsn_b, f"SELECT tokens, xp FROM {schema}.balances WHERE account = %s", f"player:{player}") == [
        (total_tokens, total_xp)
    ]
    assert rows(env.dsn_b, f"SELECT xp, level FROM {schema}.players WHERE id = %s", player) == [(total_xp, 4)]
    held = rows(
        env.dsn_b,
        f"SELECT badge, proof_id, expires_at - awarded_at FROM {schema}.player_badges WHERE player_id = %s ORDER BY id",
        player,
    )
    assert held == [("first_heart", p1, None), (badge, p3, timedelta(days=30))]
    notes = rows(
        env.dsn_b, f"SELECT kind, title, data FROM {schema}.notifications WHERE player_id = %s ORDER BY id", player
    )
    assert [n[0] for n in notes] == [
        "payout",
        "badge",  # p1, first_heart
        "payout",
        "level_up",  # p2, level 2
        "payout",
        "level_up",
        "badge",  # p3, level 3, the test badge
        "payout",
        "validated",
        "level_up",  # p4: 522 XP, level 4 (520)
    ]
    assert notes[0][1] == "+75 XP, +15 Heart tokens" and notes[3][2]["level"] == 2 and notes[6][2]["badge"] == badge
    events = rows(
        env.dsn_b,
        f"SELECT type, envelope->'data' FROM {schema}.outbox WHERE type IN "
        "('payout.made', 'player.leveled_up', 'badge.awarded') ORDER BY created_at, type",
    )
    made = [d for t, d in events if t == "payout.made"]
    assert [(d["xp"], d["tokens"]) for d in made] == [(75, 15), (79, 16), (168, 34), (200, 40)]
    assert made[0] == {
        "proof_id": str(p1),
        "player_id": str(player),
        "quest_id": str(quest_id),
        "zone_id": str(zone_id),
        "category": category,
        "xp": 75,
        "tokens": 15,
        "seq": made[0]["seq"],
        "source": "auto_approved",
    }
    assert [d["level"] for t, d in events if t == "player.leveled_up"] == [2, 3, 4]
    assert [d["badge"] for t, d in events if t == "badge.awarded"] == ["first_heart", badge]

    # The same through the API.
    headers = node.auth(home=code, roles={code: ["player"]}, user_id=player)
    async with node.client(code, headers) as c:
        me = (await c.get("/api/impact/me")).json()
        assert (me["level"], me["xp"], me["tokens"], me["next_level_xp"]) == (4, total_xp, total_tokens, 800)
        # Newest first; the test badge's definition is gone since, the award stays.
        assert [(b["code"], b["name"]) for b in me["badges"]] == [(badge, None), ("first_heart", "First heart")]
        levels = (await c.get("/api/impact/levels", params={"up_to": 5})).json()
        assert [(lv["level"], lv["xp"]) for lv in levels["levels"]] == [(1, 0), (2, 100), (3, 283), (4, 520), (5, 800)]
        policy = (await c.get("/api/impact/policy")).json()
        assert policy["policy"]["zones"] == {str(zone_id): 2.0} and policy["policy"]["difficulty"]["3"] == 1.5
        assert "round_half_up" in policy["formula"]
        catalogue = {b["code"]: b for b in (await c.get("/api/impact/badges")).json()}
        assert catalogue["beach_guardian"]["rule"] == {
            "kind": "count",
            "count": 10,
            "status": "validated",
            "category": "beach_cleanup",
            "within_days": None,
        }


async def test_an_unknown_or_rejected_proof_is_not_paid(
    env: Env, router: Router, node: Node, impact_worker: Proc
) -> None:
    code = await new_territory(router, "a")
    quest_id, _ = await quest_in(node, code)
    player = uuid.uuid4()
    rejected = await approved(router, code, quest_id, player, status="rejected")
    ghost = uuid.uuid4()
    async with router.transaction(await router.lookup(code)) as conn:
        ids = {"quest_id": str(quest_id), "player_id": str(player)}
        await emit(conn, "proof.validated", {**ids, "proof_id": str(rejected)})
        await emit(conn, "proof.validated", {**ids, "proof_id": str(ghost)})
    schema = f"territory_{code}"

    async def handled() -> bool:
        sql = f"SELECT count(*) FROM {schema}.inbox WHERE consumer = 'impact-validated'"
        return rows(env.dsn_a, sql) == [(2,)]

    await eventually(handled)
    fine = await approved(router, code, quest_id, player)
    await paid(env, "a", code, fine)
    assert rows(env.dsn_a, f"SELECT proof_id FROM {schema}.payouts") == [(fine,)]
    assert rows(env.dsn_a, f"SELECT count(*) FROM {schema}.ledger_entries") == [(1,)]


async def test_cli_sets_the_policy_and_loads_badges(env: Env, router: Router) -> None:
    code = await new_territory(router, "b")
    shown = json.loads(env.cli("impact", "policy", code).stdout)
    assert shown["difficulty"] == {"1": 1.0, "2": 1.25, "3": 1.5, "4": 2.0, "5": 2.5} and shown["total_cap"] == 4.0
    zone = str(uuid.uuid4())
    changed = json.loads(env.cli("impact", "policy", code, "--set", json.dumps({"zones": {zone: 1.5}})).stdout)
    assert changed["zones"] == {zone: 1.5} and changed["streak_cap"] == 1.5
    for bad in ({"difficulty": {"1": 1.0}}, {"zones": {"nope": 1.0}}, {"total_cap": 0.5}, {"unknown": 1}):
        refused = env.cli("impact", "policy", code, "--set", json.dumps(bad), check=False)
        assert refused.returncode == 1 and "invalid impact policy" in refused.stderr, (bad, refused.stderr)
    assert json.loads(env.cli("impact", "policy", code).stdout)["zones"] == {zone: 1.5}
    # Servers a and b by name: other tests register servers whose role may not load it (b-app).
    synced = env.cli("impact", "sync-badges", "--server", "a", "--server", "b").stdout
    assert "server a:" in synced and "server b:" in synced


def _limited_server(env: Env, database: str) -> tuple[str, str]:
    """A role with no rights beyond connecting to ``database`` on server b (which it makes),
    registered as a server of its own; returns (alias, role)."""
    tag = uuid.uuid4().hex[:8]
    role, alias = f"oh_nocreate_{tag}", f"limited_{tag}"
    rows(env.dsn_b, f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{tag}'; SELECT 1")
    port = env.dsn_b.split(":")[-1].split("/")[0]
    env.cli("server", "add", alias, f"postgresql://{role}:pw-{tag}@127.0.0.1:{port}/{database}", "--region", "eu-west")
    return alias, role


async def test_sync_badges_without_create_on_public_names_the_grant(env: Env, router: Router) -> None:
    """PostgreSQL 15 grants no CREATE on schema public to ordinary roles: the command says which
    grant is missing, in one line, and exits 1 after loading the servers that can."""
    database = f"nocreate_{uuid.uuid4().hex[:8]}"
    rows(env.dsn_b, f"CREATE DATABASE {database}")
    alias, role = _limited_server(env, database)
    refused = env.cli("impact", "sync-badges", "--server", "a", "--server", alias, check=False)
    assert refused.returncode == 1, refused.stderr
    assert "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error server {alias}: "), refused.stderr
    assert f"GRANT CREATE ON SCHEMA public TO {role}" in lines[0]
    assert "server a:" in refused.stdout  # the others are still loaded
    everywhere = env.cli("impact", "sync-badges", check=False)  # every server: this one fails
    assert everywhere.returncode == 1 and "Traceback" not in everywhere.stderr

    db_dsn = database_dsn(env.dsn_b, database)
    rows(db_dsn, f"GRANT CREATE ON SCHEMA public TO {role}; SELECT 1")
    loaded = env.cli("impact", "sync-badges", "--server", alias)
    assert f"server {alias}: {len(badges.catalogue())} definitions added or changed" in loaded.stdout
    assert rows(db_dsn, "SELECT tableowner FROM pg_tables WHERE tablename = 'badge_definitions'") == [(role,)]

    # The table exists now (owned by that role): another role without rights on it is told so.
    other, other_role = _limited_server(env, database)
    refused = env.cli("impact", "sync-badges", "--server", other, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"GRANT SELECT, INSERT, UPDATE ON public.badge_definitions TO {other_role}" in refused.stderr
    assert "unknown database server 'nope'" in env.cli("impact", "sync-badges", "--server", "nope", check=False).stderr


async def test_declared_measures_count_once_witnesses_validate(
    env: Env, router: Router, node: Node, impact_worker: Proc
) -> None:
    """A proof carries what the player declared (3 hours, 7 people helped) from the upload to
    the payout: a moderator's (or the community's) validation pays the duration and
    beneficiaries multipliers; an automatic approval of the same claim does not. Paid proofs
    show when they were paid."""
    from services.proofs import service as lifecycle
    from services.social import service as social

    code = await new_territory(router, "a")
    quest_id, _ = await quest_in(node, code)  # difficulty 3: x1.5
    territory = await router.lookup(code)

    async def declared(player: uuid.UUID, decision: str) -> uuid.UUID:
        content = uuid.uuid4().bytes
        stored = Stored(cid_of(content), hashlib.sha256(content).hexdigest(), len(content), "video/mp4", "video",
                        None, None, None, None, {})  # fmt: skip
        async with router.transaction(territory) as conn:
            await ensure_player(conn, player)
            await start_quest(conn, quest_id, player)
            assignment = await open_assignment(conn, quest_id, player)
            place = Place(*BEACH, 5.0, datetime.now(UTC) - timedelta(minutes=5))
            accepted = await lifecycle.submit(
                conn, assignment, quest_id, player, place, stored, lifecycle.Measures(180, 7)
            )
            row = await lifecycle.lock_proof(conn, accepted.proof_id)
            await lifecycle.verified(conn, row, decision, 50 if decision == "needs_community" else 95, [])  # type: ignore[arg-type]
        return accepted.proof_id

    witnessed = await declared(uuid.uuid4(), "needs_community")
    async with router.transaction(territory) as conn:
        await social.settle(conn, witnessed, "validated", uuid.uuid4(), "saw the class being taught")
    by_people = await paid(env, "a", code, witnessed)
    assert (by_people["m"]["duration"], by_people["m"]["beneficiaries"], by_people["source"]) == (1.2, 1.3, "validated")
    assert by_people["xp"] == round(50 * 1.5 * 1.2 * 1.3)

    automatic = await declared(uuid.uuid4(), "auto_approved")
    by_machine = await paid(env, "a", code, automatic)
    assert (by_machine["m"]["duration"], by_machine["m"]["beneficiaries"]) == (1.0, 1.0)

    for proof_id in (witnessed, automatic):
        shown = rows(env.dsn_a, f"SELECT paid_at, duration_minutes, beneficiaries FROM territory_{code}.proofs "
                     "WHERE id = %s", proof_id)  # fmt: skip
        assert shown[0][0] is not None and shown[0][1:] == (180, 7)
