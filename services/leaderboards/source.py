"""What the leaderboards count, read from the ledger: the XP of every proof payout, with its zone.

A payout is a ``mint`` entry with ``ref_type = 'proof'`` crediting ``player:<uuid>``; its zone
is the zone of the proof's quest (none if the proof is unknown: it then counts territory-wide
only). The entry's ``created_at`` decides its day and week. Other XP movements (adjustments)
do not count on leaderboards.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from services.ledger.models import ledger_entries as E
from services.proofs.models import proofs
from services.quests.models import quests

_UUID = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
PLAYER = "player:"


@dataclass(frozen=True, slots=True)
class Gain:
    seq: int
    player_id: str
    xp: int
    at: datetime
    zone_id: uuid.UUID | None


# The cast only runs on text shaped like a UUID (CASE evaluates lazily), so any ref_id is safe.
_proof_id = sa.case((E.c.ref_id.op("~")(_UUID), sa.cast(E.c.ref_id, UUID(as_uuid=True))), else_=None)

GAINS = (
    sa.select(E.c.seq, E.c.credit, E.c.xp, E.c.created_at, quests.c.zone_id)
    .select_from(E.outerjoin(proofs, proofs.c.id == _proof_id).outerjoin(quests, quests.c.id == proofs.c.quest_id))
    .where(E.c.kind == "mint", E.c.ref_type == "proof", E.c.xp > 0, E.c.credit.startswith(PLAYER))
)


def gain(row: Any) -> Gain:
    return Gain(row.seq, row.credit.removeprefix(PLAYER), row.xp, row.created_at, row.zone_id)


def gains_between(after: int, upto: int | None, limit: int) -> sa.Select[Any]:
    """Gains with ``after < seq <= upto``, in ``seq`` order (keyset batches)."""
    query = GAINS.where(E.c.seq > after)
    if upto is not None:
        query = query.where(E.c.seq <= upto)
    return query.order_by(E.c.seq).limit(limit)


def gain_at(seq: int) -> sa.Select[Any]:
    return GAINS.where(E.c.seq == seq)
