"""The impact worker's consumers: pay each approved proof once (:func:`services.impact.service.pay`).

``proof.verified`` with decision ``auto_approved`` and ``proof.validated`` (the community) each
run in the territory's transaction with the consumer's inbox row, so a redelivered event does
nothing.
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from core.events.consumers import Consumer
from core.events.envelope import Event
from services.impact import badges
from services.impact.service import Approval, pay

log = structlog.get_logger(__name__)


async def _ready(conn: AsyncConnection) -> bool:
    """Whether the server's badge definitions are there (loaded once per server and process).
    Without them proofs are still paid; badges are caught up at the player's next payout."""
    try:
        await badges.ensure_catalogue(conn.engine)
    except Exception as exc:
        log.warning("badge definitions unavailable; paying without badges", error=f"{type(exc).__name__}: {exc}")
        return False
    return True


async def on_verified(conn: AsyncConnection, event: Event) -> None:
    if event.data["decision"] != "auto_approved":
        return
    ready = await _ready(conn)
    d = event.data
    ids = (uuid.UUID(d["proof_id"]), uuid.UUID(d["player_id"]), uuid.UUID(d["quest_id"]))
    await pay(conn, Approval(event.territory, *ids, "auto_approved"), with_badges=ready)


async def on_validated(conn: AsyncConnection, event: Event) -> None:
    ready = await _ready(conn)
    d = event.data
    ids = (uuid.UUID(d["proof_id"]), uuid.UUID(d["player_id"]), uuid.UUID(d["quest_id"]))
    extras = (d.get("duration_minutes"), d.get("beneficiaries"))
    await pay(conn, Approval(event.territory, *ids, "validated", *extras), with_badges=ready)


CONSUMERS = [
    Consumer("impact-verified", "oh.*.proof.verified", on_verified),
    Consumer("impact-validated", "oh.*.proof.validated", on_validated),
]
