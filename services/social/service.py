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
from services.notifications.service import hold, notify
from services.players.service import ensure_player
from services.proofs import service as lifecycle
from services.proofs.dto import Proof
from services.proofs.models import proofs
from services.proofs.service import get_proof, list_proofs, lock_proof, quest_places
from services.social.dto import Decided, LinkCode, ReviewItem, ReviewPage, Vote, Votes, ZoneRoom
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
    stored (events can arrive out of order over federation) does not replace it.

    The proof's author hears of each vote that counts (a notification of kind "vote" with the
    counts); the key is the voter's and the value's, so a changed vote is news again and a
    replayed one is not."""
    author = await author_of(conn, proof_id)
    if author is not None:
        await hold(conn, author)  # before the proof's row, in the order a payout locks them
    proof = await lock_proof(conn, proof_id)
    decided = await outcome_of(conn, proof_id)
    policy = await read_policy(conn, KEY, SocialPolicy)
    recorded = None
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
        recorded = (
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
                ).returning(social_votes.c.voter_id)
            )
        ).first()
    counted = await _recount(conn, proof, home, policy, decided)
    if recorded is not None and voter_id != proof.player_id:
        await _tell_author(conn, proof, voter_id, value, counted, policy)
    return counted


async def author_of(conn: AsyncConnection, proof_id: uuid.UUID) -> uuid.UUID | None:
    found = (await conn.execute(sa.select(proofs.c.player_id).where(proofs.c.id == proof_id))).scalar_one_or_none()
    return uuid.UUID(str(found)) if found is not None else None


async def _tell_author(
    conn: AsyncConnection, proof: Any, voter_id: uuid.UUID, value: Value, counted: Counted, policy: SocialPolicy
) -> None:
    t = counted.tally
    await notify(
        conn,
        proof.player_id,
        "vote",
        "A witness voted on your proof",
        "",
        {
            "proof_id": str(proof.id),
            "quest_id": str(proof.quest_id),
            "value": value,
            "witnesses": t.witnesses,
            "agree": t.agree,
            "disagree": t.disagree,
            "min_witnesses": policy.min_witnesses,
            "agreement_needed": policy.agreement,
            "outcome": counted.outcome,
        },
        key=f"vote:{proof.id}:{voter_id}:{value}",
    )


async def vote(
    conn: AsyncConnection, proof_id: uuid.UUID, identity: Identity, territory: Territory, value: Value
) -> Votes:
    """A witness's vote from the web (``POST /api/proofs/{id}/votes`` and the player app's review
    page): a player of the territory who may see the proof and is not its author, on a proof
    still open for votes; a second vote replaces the first. Where the quorum stands after it."""
    require_role(identity, "player", territory.code)
    proof = await get_proof(conn, proof_id, identity, territory.code)  # 404 for who may not see it
    if proof.player_id == identity.user_id:
        raise Forbidden("the author of a proof cannot vote on it")
    await hold(conn, proof.player_id)  # the lock cast takes first, taken before the proof's row
    locked = await lock_proof(conn, proof_id)
    if await outcome_of(conn, proof_id) is not None:
        raise Conflict(f"proof {proof_id} is already decided")
    if not await open_for_votes(conn, locked):
        raise Conflict(f"proof {proof_id} is not waiting for witnesses (status {locked.status})")
    await ensure_player(conn, identity.user_id)
    await cast(conn, proof_id, identity.user_id, value, home=territory.matrix_homeserver, source="web")
    return await votes(conn, proof_id, territory.matrix_homeserver)


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


async def decision_of(conn: AsyncConnection, proof_id: uuid.UUID) -> Decided | None:
    """How the community (or a moderator) decided a proof, and when; None while it is open."""
    row = (await conn.execute(sa.select(social_outcomes).where(social_outcomes.c.proof_id == proof_id))).first()
    if row is None:
        return None
    return Decided(
        outcome=row.outcome,
        witnesses=row.witnesses,
        agreement=row.agreement,
        settled=row.settled_by is not None,
        reason=row.reason,
        decided_at=row.decided_at,
    )


async def ballot_of(conn: AsyncConnection, proof_id: uuid.UUID, voter_id: uuid.UUID) -> Value | None:
    """The voter's current vote on the proof ("agree" / "disagree"), if any."""
    return (
        await conn.execute(
            sa.select(social_votes.c.value).where(
                social_votes.c.proof_id == proof_id, social_votes.c.voter_id == voter_id
            )
        )
    ).scalar_one_or_none()


def may_vote(identity: Identity, territory: str, proof: Proof) -> Literal["author", "no_role"] | None:
    """Why the caller may not vote on a proof waiting for witnesses ("author", "no_role"), or
    None when they may (what :func:`vote` checks before it locks anything)."""
    if proof.player_id == identity.user_id:
        return "author"
    if not identity.has("player", territory):
        return "no_role"
    return None


async def review_queue(
    conn: AsyncConnection, identity: Identity, territory: Territory, *, limit: int, cursor: str | None
) -> ReviewPage:
    """The territory's proofs waiting for witnesses (``needs_community``), newest first, each
    with its quest and zone, where its quorum stands and the caller's own vote."""
    items, next_cursor = await list_proofs(conn, player_id=None, status="needs_community", limit=limit, cursor=cursor)
    return ReviewPage(await _review_items(conn, identity, territory, items), next_cursor)


async def review_one(
    conn: AsyncConnection, proof_id: uuid.UUID, identity: Identity, territory: Territory
) -> ReviewItem:
    """One proof of the queue as :func:`review_queue` shows it; 404 for who may not see it, 409
    when it is not waiting for witnesses."""
    proof = await get_proof(conn, proof_id, identity, territory.code)
    if proof.status != "needs_community" or await outcome_of(conn, proof_id) is not None:
        raise Conflict(f"proof {proof_id} is not waiting for witnesses (status {proof.status})")
    (item,) = await _review_items(conn, identity, territory, [proof])
    return item


async def _review_items(
    conn: AsyncConnection, identity: Identity, territory: Territory, items: list[Proof]
) -> list[ReviewItem]:
    places = await quest_places(conn, {p.quest_id for p in items})
    policy = await read_policy(conn, KEY, SocialPolicy)
    mine = {
        r.proof_id: r.value
        for r in await conn.execute(
            sa.select(social_votes.c.proof_id, social_votes.c.value).where(
                social_votes.c.voter_id == identity.user_id, social_votes.c.proof_id.in_([p.id for p in items])
            )
        )
    }
    out = []
    for p in items:
        t = await count(conn, p, territory.matrix_homeserver, policy)
        out.append(
            ReviewItem(
                proof=p,
                quest=places[p.quest_id],
                witnesses=t.witnesses,
                agree=t.agree,
                disagree=t.disagree,
                min_witnesses=policy.min_witnesses,
                agreement_needed=policy.agreement,
                my_vote=mine.get(p.id),
                cannot_vote=may_vote(identity, territory.code, p),
            )
        )
    return out


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
