"""Votes, outcomes and Matrix links, inside the territory's transaction.

Every vote (a reaction in a zone room, or ``POST /api/proofs/{id}/votes``) locks the proof's
row, replaces the voter's earlier vote, recounts, and when the quorum is reached writes the
outcome row, the proof's new status and ``proof.validated`` / ``proof.rejected`` in the same
transaction. The outcome's primary key makes that happen once, whatever is replayed.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity, require_role
from core.errors import Conflict, Forbidden
from core.routing import Territory
from services.players.service import ensure_player
from services.proofs import service as lifecycle
from services.proofs.models import proofs
from services.proofs.service import lock_proof
from services.social.dto import LinkCode, Vote, Votes, ZoneRoom
from services.social.models import (
    matrix_link_codes,
    matrix_links,
    matrix_rooms,
    social_outcomes,
    social_posts,
    social_votes,
)
from services.social.policy import KEY, SocialPolicy
from services.social.quorum import Ballot, Outcome, Tally, Value, tally
from territories.policy import read_policy

# Reaction keys that count as votes (emoji variation selectors are stripped before lookup).
REACTIONS: dict[str, Value] = {
    "👍": "agree",
    "✅": "agree",
    "✔": "agree",
    "+1": "agree",
    "👎": "disagree",
    "❌": "disagree",
    "✖": "disagree",
    "-1": "disagree",
}
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L


def vote_of(key: str) -> Value | None:
    """The vote a reaction key stands for, if any."""
    return REACTIONS.get(key.replace("\ufe0f", "").replace("\ufe0e", "").strip())


def server_of(mxid: str) -> str:
    """``@user:server`` -> ``server`` (which may carry a port)."""
    return mxid.split(":", 1)[1] if ":" in mxid else ""


@dataclass(frozen=True, slots=True)
class Counted:
    tally: Tally
    outcome: str | None  # decided now or before
    decided_now: bool


# --- proofs -------------------------------------------------------------------------------
async def outcome_of(conn: AsyncConnection, proof_id: uuid.UUID) -> str | None:
    return (
        await conn.execute(sa.select(social_outcomes.c.outcome).where(social_outcomes.c.proof_id == proof_id))
    ).scalar_one_or_none()


async def open_for_votes(conn: AsyncConnection, proof: Any) -> bool:
    """Witnesses may vote on a proof the community was asked about, or that was posted."""
    if proof.status == "needs_community":
        return True
    posted = await conn.execute(sa.select(social_posts.c.proof_id).where(social_posts.c.proof_id == proof.id))
    return proof.status == "auto_approved" and posted.first() is not None


async def ballots(conn: AsyncConnection, proof_id: uuid.UUID) -> list[Any]:
    return list(
        await conn.execute(
            sa.select(social_votes).where(social_votes.c.proof_id == proof_id).order_by(social_votes.c.updated_at)
        )
    )


async def count(conn: AsyncConnection, proof: Any, home: str | None, policy: SocialPolicy) -> Tally:
    rows = await ballots(conn, proof.id)
    return tally(
        (Ballot(r.voter_id, r.value, r.homeserver) for r in rows), author=proof.player_id, home=home, policy=policy
    )


async def conclude(
    conn: AsyncConnection,
    proof: Any,
    outcome: Outcome,
    *,
    witnesses: int,
    agreement: float,
    settled_by: uuid.UUID | None = None,
    reason: str | None = None,
) -> bool:
    """Record the outcome once (its row's primary key is the proof), then the proof's status,
    its assignment and the event (``services.proofs.service.community_decided``). False if it
    was already decided."""
    inserted = (
        await conn.execute(
            insert(social_outcomes)
            .values(
                proof_id=proof.id,
                outcome=outcome,
                witnesses=witnesses,
                agreement=agreement,
                settled_by=settled_by,
                reason=reason,
            )
            .on_conflict_do_nothing()
            .returning(social_outcomes.c.proof_id)
        )
    ).first()
    if inserted is None:
        return False
    await lifecycle.community_decided(conn, proof, outcome, witnesses=witnesses, agreement=agreement)
    return True


async def cast(
    conn: AsyncConnection,
    proof_id: uuid.UUID,
    voter_id: uuid.UUID,
    value: Value,
    *,
    home: str | None,
    source: Literal["matrix", "web"],
    mxid: str | None = None,
    event_id: str | None = None,
    at: datetime | None = None,
) -> Counted:
    """Record ``voter_id``'s vote (replacing theirs) and decide if the quorum is reached.

    ``at`` is when the vote was cast (a Matrix event's origin time): a vote older than the one
    stored (events can arrive out of order over federation) does not replace it."""
    proof = await lock_proof(conn, proof_id)
    decided = await outcome_of(conn, proof_id)
    policy = await read_policy(conn, KEY, SocialPolicy)
    if decided is None:
        homeserver = server_of(mxid) if mxid else None
        stamp = at or datetime.now(UTC)
        stmt = insert(social_votes).values(
            proof_id=proof_id,
            voter_id=voter_id,
            value=value,
            source=source,
            mxid=mxid,
            homeserver=homeserver,
            event_id=event_id,
            updated_at=stamp,
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[social_votes.c.proof_id, social_votes.c.voter_id],
                set_={
                    "value": stmt.excluded.value,
                    "source": stmt.excluded.source,
                    "mxid": stmt.excluded.mxid,
                    "homeserver": stmt.excluded.homeserver,
                    "event_id": stmt.excluded.event_id,
                    "updated_at": stmt.excluded.updated_at,
                },
                where=social_votes.c.updated_at <= stmt.excluded.updated_at,
            )
        )
    return await _recount(conn, proof, home, policy, decided)


async def _recount(
    conn: AsyncConnection, proof: Any, home: str | None, policy: SocialPolicy, decided: str | None
) -> Counted:
    result = await count(conn, proof, home, policy)
    if decided is not None or result.outcome is None:
        return Counted(result, decided, False)
    now = await conclude(conn, proof, result.outcome, witnesses=result.witnesses, agreement=result.agreement)
    return Counted(result, result.outcome, now)


async def withdraw(conn: AsyncConnection, event_id: str, home: str | None) -> Counted | None:
    """A redacted reaction withdraws the vote it cast (if it is still the voter's current one)."""
    row = (await conn.execute(sa.select(social_votes.c.proof_id).where(social_votes.c.event_id == event_id))).first()
    if row is None:
        return None
    proof = await lock_proof(conn, row.proof_id)
    decided = await outcome_of(conn, proof.id)
    if decided is None:
        await conn.execute(social_votes.delete().where(social_votes.c.event_id == event_id))
    policy = await read_policy(conn, KEY, SocialPolicy)
    return await _recount(conn, proof, home, policy, decided)


async def settle(
    conn: AsyncConnection, proof_id: uuid.UUID, outcome: Outcome, moderator: uuid.UUID, reason: str
) -> Tally:
    """A moderator decides a proof (a dispute, too few witnesses); 409 if already decided."""
    proof = await lock_proof(conn, proof_id)
    if proof.player_id == moderator:
        raise Forbidden("a moderator cannot settle their own proof")
    if not await open_for_votes(conn, proof) and await outcome_of(conn, proof_id) is None:
        raise Conflict(f"proof {proof_id} is not waiting for the community (status {proof.status})")
    policy = await read_policy(conn, KEY, SocialPolicy)
    result = await count(conn, proof, None, policy)
    total = result.agree + result.disagree
    share = (result.agree if outcome == "validated" else result.disagree) / total if total else 1.0
    if not await conclude(
        conn,
        proof,
        outcome,
        witnesses=result.witnesses,
        agreement=share,
        settled_by=moderator,
        reason=reason,
    ):
        raise Conflict(f"proof {proof_id} is already decided")
    return result


async def votes(conn: AsyncConnection, proof_id: uuid.UUID, home: str | None) -> Votes:
    """The votes on a proof and where its quorum stands."""
    row = (
        await conn.execute(sa.select(proofs.c.id, proofs.c.player_id, proofs.c.status).where(proofs.c.id == proof_id))
    ).one()
    policy = await read_policy(conn, KEY, SocialPolicy)
    result = await count(conn, row, home, policy)
    ballots_now = [
        Vote(
            voter_id=r.voter_id,
            value=r.value,
            source=r.source,
            homeserver=r.homeserver,
            counts=r.voter_id != row.player_id,
            updated_at=r.updated_at,
        )
        for r in await ballots(conn, proof_id)
    ]
    return Votes(
        proof_id=proof_id,
        status=row.status,
        witnesses=result.witnesses,
        agree=result.agree,
        disagree=result.disagree,
        outcome=await outcome_of(conn, proof_id),
        min_witnesses=policy.min_witnesses,
        agreement_needed=policy.agreement,
        votes=ballots_now,
    )


# --- links --------------------------------------------------------------------------------
def _digest(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def normalize_code(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


async def make_link_code(conn: AsyncConnection, player_id: uuid.UUID, ttl: int) -> tuple[str, datetime]:
    code = new_code()
    expires = datetime.now(UTC) + timedelta(seconds=ttl)
    await conn.execute(
        matrix_link_codes.insert().values(code_hash=_digest(code), player_id=player_id, expires_at=expires)
    )
    return code, expires


def bot_of(homeserver: str | None) -> str | None:
    """The territory's bot on its homeserver (the gateway's sender), or None without one."""
    return f"@oh_bot:{homeserver}" if homeserver else None


async def link_code(conn: AsyncConnection, identity: Identity, territory: Territory, ttl: int) -> LinkCode:
    """A one-time code (valid ``ttl`` seconds) that links a Matrix account to the caller's
    player in ``territory``, and the bot to send it to (players of the territory only)."""
    require_role(identity, "player", territory.code)
    await ensure_player(conn, identity.user_id)
    code, expires = await make_link_code(conn, identity.user_id, ttl)
    server = territory.matrix_homeserver
    bot = bot_of(server)
    how = (
        f"Send '!link {code}' to {bot} in a direct message, or post it in a zone room."
        if bot
        else "This territory has no Matrix homeserver yet."
    )
    return LinkCode(code, expires, server, bot, how)


async def zone_room(conn: AsyncConnection, zone_id: uuid.UUID) -> ZoneRoom | None:
    """The zone's Matrix room on the territory's homeserver, if the gateway made it yet (it
    does when the zone's first proof is posted)."""
    row = (
        await conn.execute(
            sa.select(matrix_rooms.c.room_id, matrix_rooms.c.alias).where(
                matrix_rooms.c.key == str(zone_id), matrix_rooms.c.kind == "zone"
            )
        )
    ).first()
    return ZoneRoom(zone_id, row.room_id, row.alias) if row else None


async def redeem_link_code(conn: AsyncConnection, code: str, mxid: str) -> uuid.UUID | None:
    """Link ``mxid`` to the player who asked for ``code``; None if the code is unknown, used
    or expired."""
    row = (
        await conn.execute(
            matrix_link_codes.update()
            .where(
                matrix_link_codes.c.code_hash == _digest(code),
                matrix_link_codes.c.used_at.is_(None),
                matrix_link_codes.c.expires_at > sa.func.now(),
            )
            .values(used_at=sa.func.now(), used_by=mxid)
            .returning(matrix_link_codes.c.player_id)
        )
    ).first()
    if row is None:
        return None
    await link(conn, mxid, row.player_id, "code")
    return uuid.UUID(str(row.player_id))


async def link(conn: AsyncConnection, mxid: str, player_id: uuid.UUID, via: str) -> None:
    stmt = insert(matrix_links).values(mxid=mxid, player_id=player_id, homeserver=server_of(mxid), via=via)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[matrix_links.c.mxid],
            set_={"player_id": stmt.excluded.player_id, "via": stmt.excluded.via, "linked_at": sa.func.now()},
        )
    )


async def player_of(conn: AsyncConnection, mxid: str) -> uuid.UUID | None:
    found = (
        await conn.execute(sa.select(matrix_links.c.player_id).where(matrix_links.c.mxid == mxid))
    ).scalar_one_or_none()
    return uuid.UUID(str(found)) if found is not None else None


async def links_of(conn: AsyncConnection, player_id: uuid.UUID) -> list[Any]:
    return list(
        await conn.execute(
            sa.select(matrix_links.c.mxid, matrix_links.c.via, matrix_links.c.linked_at)
            .where(matrix_links.c.player_id == player_id)
            .order_by(matrix_links.c.linked_at)
        )
    )
