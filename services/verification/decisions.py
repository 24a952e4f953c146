"""Past community decisions, the training data for the review-score model.

A proof the community validated is a positive example, one it invalidated a negative one; the
features are those the worker stored when it scored the proof (``verifications.features``),
so a retrained model learns exactly what the worker will feed it.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from core.routing import Router
from services.proofs.models import proofs, verifications
from services.verification.signals import FEATURES

Row = tuple[list[float], int]
OUTCOMES = {"validated": 1, "invalidated": 0}

_DECIDED = (
    sa.select(verifications.c.features, proofs.c.status)
    .select_from(verifications.join(proofs, proofs.c.id == verifications.c.proof_id))
    .where(proofs.c.status.in_(tuple(OUTCOMES)))
)


async def community_decisions(router: Router, territories: Iterable[str]) -> list[Row]:
    """Every territory's decided proofs as ``(features, accepted)`` rows; rows whose feature
    vector has another length (scored by an older model) are skipped."""
    rows: list[Row] = []
    for code in territories:
        async with router.read(await router.lookup(code)) as conn:
            for features, status in await conn.execute(_DECIDED):
                if len(features) == len(FEATURES):
                    rows.append(([float(x) for x in features], OUTCOMES[status]))
    return rows
