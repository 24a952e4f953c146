"""The quorum rule: a pure function of the ballots and the territory's policy.

The rule in words is in ``services/social/policy.py``; precisely:

- the author's ballots are dropped;
- each voter has one ballot (the store keeps only the latest);
- a ballot weighs 1, or ``remote_weight`` when the voter's Matrix account is on another
  homeserver than the territory's; ballots of weight 0 are not witnesses;
- decided when witnesses >= ``min_witnesses`` and one side has more than ``agreement`` of the
  total weight; otherwise (a tie, too few witnesses) the proof stays pending.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from services.social.policy import SocialPolicy

Value = Literal["agree", "disagree"]
Outcome = Literal["validated", "rejected"]


@dataclass(frozen=True, slots=True)
class Ballot:
    voter: uuid.UUID
    value: Value
    homeserver: str | None = None  # None: the web API, or the territory's own homeserver


@dataclass(frozen=True, slots=True)
class Tally:
    witnesses: int
    agree: float  # weights
    disagree: float
    outcome: Outcome | None

    @property
    def agreement(self) -> float:
        """Share of the weight on the winning side (or on "agree" while pending)."""
        total = self.agree + self.disagree
        if total == 0:
            return 0.0
        return (self.disagree if self.outcome == "rejected" else self.agree) / total


def weight(ballot: Ballot, home: str | None, policy: SocialPolicy) -> float:
    if ballot.homeserver is None or home is None or ballot.homeserver == home:
        return 1.0
    return policy.remote_weight


def tally(ballots: Iterable[Ballot], *, author: uuid.UUID, home: str | None, policy: SocialPolicy) -> Tally:
    latest: dict[uuid.UUID, Ballot] = {}
    for b in ballots:
        if b.voter != author:
            latest[b.voter] = b  # one ballot per voter: the last one given wins
    agree = disagree = 0.0
    witnesses = 0
    for b in latest.values():
        w = weight(b, home, policy)
        if w <= 0:
            continue
        witnesses += 1
        if b.value == "agree":
            agree += w
        else:
            disagree += w
    outcome: Outcome | None = None
    total = agree + disagree
    if witnesses >= policy.min_witnesses and total > 0:
        if agree / total > policy.agreement:
            outcome = "validated"
        elif disagree / total > policy.agreement:
            outcome = "rejected"
    return Tally(witnesses, agree, disagree, outcome)
