"""Posting proofs into zone rooms, and outcomes back under them (the gateway's consumers).

``social-post`` handles ``proof.verified``: a proof that needs the community (or any posted
proof when the territory's social policy says ``always``) is posted in its zone's room on the
territory's homeserver: a thumbnail of the evidence (read from IPFS, checked against its CID,
uploaded to the homeserver's media store), quest, place, time, and a machine-readable block
(``org.oneheart.proof`` in the event content, and the same JSON in the text). A homeserver
that is down or rate-limits makes the handler fail: the event is redelivered with backoff and
posted later, never lost; the send's transaction id makes a retried post the same event.

``social-outcome`` handles ``proof.validated`` / ``proof.rejected``: the outcome is posted as a
reply to the proof's post, once.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from core import media
from core.events.consumers import Consumer
from core.events.envelope import Event
from federation import rooms
from federation.context import current
from services.proofs.models import proofs
from services.proofs.service import with_evidence
from services.quests.models import quests
from services.social.models import social_outcomes, social_posts
from services.social.policy import KEY, SocialPolicy
from services.zones.models import zones
from territories.policy import policy_from, stored_policy

log = structlog.get_logger(__name__)
THUMBNAIL = 1024  # longest side, pixels
MACHINE_KEY = "org.oneheart.proof"

_READ = (
    with_evidence()
    .add_columns(
        quests.c.title,
        zones.c.id.label("zone_id"),
        zones.c.name.label("zone_name"),
        stored_policy(KEY).label("policy"),
    )
    .join(quests, quests.c.id == proofs.c.quest_id)
    .join(zones, zones.c.id == quests.c.zone_id)
    .with_for_update(of=proofs)
)


def thumbnail(data: bytes, mime: str) -> tuple[bytes, int, int]:
    """A JPEG no larger than THUMBNAIL pixels a side, upright (EXIF orientation), decoded with
    the same checked decoder as the upload (formats and pixel limits)."""
    image = media.decode(data, mime, side=THUMBNAIL)
    image.thumbnail((THUMBNAIL, THUMBNAIL))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue(), image.width, image.height


def machine_block(territory: str, row: Any) -> dict[str, Any]:
    return {
        "territory": territory,
        "proof_id": str(row.id),
        "cid": row.cid,
        "quest_id": str(row.quest_id),
        "zone_id": str(row.zone_id),
        # Matrix's canonical JSON has no floats: coordinates travel as decimal strings.
        "lat": f"{row.lat:.6f}",
        "lng": f"{row.lng:.6f}",
        "captured_at": row.captured_at.isoformat(),
    }


def caption(territory: str, row: Any) -> tuple[str, str, dict[str, Any]]:
    block = machine_block(territory, row)
    when = row.captured_at.strftime("%Y-%m-%d %H:%M UTC")
    place = f"{row.zone_name} ({row.lat:.5f}, {row.lng:.5f})"
    text = (
        f"Proof for “{row.title}” at {place}, {when}.\n"
        "Witnesses: react 👍 to agree or 👎 to disagree.\n"
        f"```json\n{json.dumps(block, indent=1)}\n```"
    )
    html = (
        f"<p>Proof for <b>{_esc(row.title)}</b> at {_esc(place)}, {when}.<br>"
        "Witnesses: react 👍 to agree or 👎 to disagree.</p>"
        f'<pre><code class="language-json">{_esc(json.dumps(block, indent=1))}</code></pre>'
    )
    return text, html, block


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


async def post_proof(conn: AsyncConnection, event: Event) -> None:
    gateway = current()
    decision = event.data["decision"]
    if decision == "rejected":
        return
    row = (await conn.execute(_READ.where(proofs.c.id == uuid.UUID(event.data["proof_id"])))).first()
    if row is None:
        return
    policy = policy_from(row.policy, SocialPolicy)
    if decision == "auto_approved" and policy.post != "always":
        return
    if row.status not in ("needs_community", "auto_approved"):
        return  # decided meanwhile (a moderator, or web votes): nothing to ask
    if (await conn.execute(sa.select(social_posts.c.event_id).where(social_posts.c.proof_id == row.id))).first():
        return
    bot = await gateway.bot(event.territory)
    if bot is None:
        return  # the territory has no homeserver: witnesses vote through the web API only
    territory = await gateway.territory(event.territory)
    room_id = await rooms.zone_room(conn, bot, territory, row.zone_id, row.zone_name)
    text, html, block = caption(event.territory, row)
    content: dict[str, Any] = {"body": text, "format": "org.matrix.custom.html", "formatted_body": html}
    content[MACHINE_KEY] = block
    if row.kind == "image":
        original = await gateway.evidence.get(row.cid, row.size_bytes)
        small, width, height = await asyncio.to_thread(thumbnail, original, row.mime)
        mxc = await bot.upload(small, "image/jpeg", f"proof-{row.id}.jpg")
        content.update(
            msgtype="m.image",
            filename=f"proof-{row.id}.jpg",
            url=mxc,
            info={"mimetype": "image/jpeg", "w": width, "h": height, "size": len(small)},
        )
    else:
        content["msgtype"] = "m.text"
    event_id = await bot.send(room_id, content, txn_id=f"oh-proof-{row.id}")
    await conn.execute(
        social_posts.insert().values(proof_id=row.id, zone_id=row.zone_id, room_id=room_id, event_id=event_id)
    )
    log.info("proof posted", territory=event.territory, proof_id=str(row.id), room_id=room_id, event_id=event_id)


def outcome_text(outcome: Any) -> tuple[str, str]:
    share = f"{outcome.agreement:.0%}"
    if outcome.settled_by is not None:
        how = "settled by a moderator" + (f": {outcome.reason}" if outcome.reason else "")
    else:
        how = f"{outcome.witnesses} witnesses, {share} agreement"
    if outcome.outcome == "validated":
        return f"✅ Validated ({how}).", f"✅ <b>Validated</b> ({_esc(how)})."
    return f"❌ Rejected ({how}).", f"❌ <b>Rejected</b> ({_esc(how)})."


async def announce_outcome(conn: AsyncConnection, event: Event) -> None:
    proof_id = uuid.UUID(event.data["proof_id"])
    post = (
        await conn.execute(sa.select(social_posts).where(social_posts.c.proof_id == proof_id).with_for_update())
    ).first()
    if post is None or post.outcome_event_id is not None:
        return
    outcome = (await conn.execute(sa.select(social_outcomes).where(social_outcomes.c.proof_id == proof_id))).first()
    if outcome is None:
        return
    bot = await current().bot(event.territory)
    if bot is None:
        return
    text, html = outcome_text(outcome)
    content = {
        "msgtype": "m.notice",
        "body": text,
        "format": "org.matrix.custom.html",
        "formatted_body": html,
        "m.relates_to": {"m.in_reply_to": {"event_id": post.event_id}},
        MACHINE_KEY: {
            "territory": event.territory,
            "proof_id": str(proof_id),
            "outcome": outcome.outcome,
            "witnesses": outcome.witnesses,
            "agreement_percent": round(outcome.agreement * 100),
        },
    }
    event_id = await bot.send(post.room_id, content, txn_id=f"oh-outcome-{proof_id}")
    await conn.execute(
        social_posts.update().where(social_posts.c.proof_id == proof_id).values(outcome_event_id=event_id)
    )
    log.info("outcome posted", territory=event.territory, proof_id=str(proof_id), outcome=outcome.outcome)


CONSUMERS = [
    Consumer("social-post", "oh.*.proof.verified", post_proof),
    Consumer("social-outcome-validated", "oh.*.proof.validated", announce_outcome),
    Consumer("social-outcome-rejected", "oh.*.proof.rejected", announce_outcome),
]
