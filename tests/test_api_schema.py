"""Property-based run over the node's own OpenAPI document (schemathesis, real server).

Every generated request must get a documented status, content type, headers and a body that
match the document, and never a 5xx: once as a global admin (guarded routes are exercised),
once as a plain player (every 403 must be documented), and on real data where random input
cannot reach (a second start of a quest, a proof's evidence bytes).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks as oa

from tests.conftest import Node
from tests.photos import jpeg

# Mostly real territories so requests reach the database, some unknown ones for 404 paths.
TERRITORIES = ["dk", "sami", "ca", "dk", "sami", "zz_unknown"]
EXAMPLES = 40
# Every built-in response check but positive_data_acceptance: an opaque cursor is "any string"
# in the schema yet only cursors we issued decode, and that 400 is the right answer.
CHECKS = [
    not_a_server_error,
    oa.status_code_conformance,
    oa.content_type_conformance,
    oa.response_headers_conformance,
    oa.response_schema_conformance,
    oa.negative_data_rejection,
    oa.missing_required_header,
    oa.unsupported_method,
    oa.ignored_auth,
]


def _conforms(node: Node, caller: dict[str, str]) -> tuple[dict[str, int], dict[int, int]]:
    schema = schemathesis.openapi.from_url(f"{node.url}/docs/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    calls: dict[str, int] = {}
    statuses: dict[int, int] = {}

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            if case.headers and "X-Territory" in case.headers:
                case.headers["X-Territory"] = random.choice(TERRITORIES)
            response = case.call_and_validate(base_url=node.url, headers=caller, checks=CHECKS)
            assert response.status_code < 500, response.text
            calls[case.operation.label] = calls.get(case.operation.label, 0) + 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        check()
    return calls, statuses


def test_api_conforms_to_its_schema(node: Node) -> None:
    """As a global admin + operator (a staff token), so guarded routes are exercised too."""
    calls, statuses = _conforms(node, node.auth())
    total = sum(calls.values())
    print(f"schemathesis: {total} generated requests over {len(calls)} operations; statuses {sorted(statuses.items())}")
    assert total >= 200
    assert any(200 <= s < 300 for s in statuses), statuses


def test_api_conforms_to_its_schema_for_a_player(node: Node) -> None:
    """As a plain player of dk: the registry, staff-only lists and other territories answer
    403 or 404, and each of those answers is in the document."""
    player = node.auth(home="dk", roles={"dk": ["player"]})
    calls, statuses = _conforms(node, player)
    assert sum(calls.values()) >= 200
    assert statuses.get(403), statuses


async def test_real_answers_conform(node: Node) -> None:
    """What random input cannot reach: a quest started twice (201, then 200 with the open
    assignment) and the evidence bytes of a real proof (the sniffed media type)."""
    schema = schemathesis.openapi.from_url(f"{node.url}/docs/openapi.json")
    staff = node.auth()
    player_id = uuid.uuid4()
    player = {**node.auth(home="dk", roles={"dk": ["player"]}, user_id=player_id), "X-Territory": "dk"}
    async with node.client("dk") as c:
        zone = await c.post("/api/zones", json={"name": "schema beach", "lat": 55.66, "lng": 12.64, "radius_m": 800})
        assert zone.status_code == 201, zone.text
        body = {"title": "Schema clean-up", "type": "daily", "category": "beach_cleanup", "difficulty": 1}
        quest = await c.post(
            "/api/quests", json={**body, "zone_id": zone.json()["id"], "base_xp": 10, "base_tokens": 1}
        )
        assert quest.status_code == 201, quest.text
    quest_id = quest.json()["id"]
    start = schema["/api/quests/{quest_id}/start"]["POST"]
    statuses = []
    for _ in range(2):
        case = start.Case(path_parameters={"quest_id": quest_id}, headers=player)
        statuses.append(case.call_and_validate(base_url=node.url, checks=CHECKS).status_code)
    assert statuses == [201, 200]

    async with node.client("dk", headers=player) as c:
        uploaded = await c.post(
            f"/api/quests/{quest_id}/proofs",
            data={"lat": "55.66", "lng": "12.64", "accuracy_m": "5", "captured_at": datetime.now(UTC).isoformat()},
            files={"file": ("beach.jpg", jpeg("coffee"), "image/jpeg")},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert uploaded.status_code == 202, uploaded.text
    proof_id = uploaded.json()["proof_id"]
    evidence = schema["/api/proofs/{proof_id}/evidence"]["GET"]
    for caller in (player, {**staff, "X-Territory": "dk"}):
        case = evidence.Case(path_parameters={"proof_id": proof_id}, headers=caller)
        response = case.call_and_validate(base_url=node.url, checks=CHECKS)
        kind = response.headers["content-type"]
        assert response.status_code == 200 and str(kind[0] if isinstance(kind, list) else kind) == "image/jpeg"
