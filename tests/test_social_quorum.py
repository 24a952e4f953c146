"""The quorum rule as a pure function (no services)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from services.social.policy import SocialPolicy
from services.social.quorum import Ballot, tally
from services.social.service import vote_of


def test_quorum_rule() -> None:
    policy = SocialPolicy()  # 2 witnesses, > 2/3, remote weight 0.5
    author, a, b, c = (uuid.uuid4() for _ in range(4))
    home = "hs-a"

    def run(*ballots: Ballot, **over: Any) -> Any:
        return tally(ballots, author=author, home=home, policy=msgspec.structs.replace(policy, **over))

    assert run(Ballot(a, "agree")).outcome is None  # one witness
    assert run(Ballot(a, "agree"), Ballot(author, "agree")).outcome is None  # the author does not count
    assert run(Ballot(a, "agree"), Ballot(b, "agree")).outcome == "validated"
    assert run(Ballot(a, "agree"), Ballot(b, "disagree")).outcome is None  # tie
    assert run(Ballot(a, "agree"), Ballot(b, "disagree"), Ballot(c, "disagree")).outcome is None  # exactly 2/3
    assert run(Ballot(a, "agree"), Ballot(a, "disagree"), Ballot(b, "disagree")).outcome == "rejected"  # last wins
    # A remote witness weighs 0.5: 1 agree vs 0.5 disagree is exactly 2/3 (pending); 0 leaves them out.
    mixed = (Ballot(a, "agree", home), Ballot(b, "disagree", "hs-b"))
    assert run(*mixed).outcome is None and run(*mixed).agree == 1.0 and run(*mixed).disagree == 0.5
    assert run(*mixed, remote_weight=0.4).outcome == "validated"
    assert run(*mixed, remote_weight=0.0).witnesses == 1


def test_reaction_keys() -> None:
    assert vote_of("👍") == vote_of("👍️") == vote_of("✅") == vote_of("+1") == "agree"
    assert vote_of("👎") == vote_of("❌") == vote_of("-1") == "disagree"
    assert vote_of("🎉") is None and vote_of("") is None


def test_policy_is_checked() -> None:
    for bad in ({"min_witnesses": 0}, {"agreement": 0.4}, {"agreement": 1.0}, {"remote_weight": 2}, {"post": "x"}):
        try:
            msgspec.convert({**msgspec.to_builtins(SocialPolicy()), **bad}, SocialPolicy)
        except msgspec.ValidationError:
            continue
        raise AssertionError(f"accepted {bad}")
