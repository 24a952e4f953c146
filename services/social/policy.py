"""A territory's social-validation policy (its ``policies`` table, key "social").

In the spirit of iNaturalist's "research grade": a proof is decided once at least
``min_witnesses`` distinct linked witnesses voted and more than ``agreement`` of the weighted
votes say the same. The author's own votes never count; a witness has one vote (a changed vote
replaces the old one). Witnesses whose Matrix account lives on another territory's homeserver
count with ``remote_weight`` (0 leaves them out entirely). Moderators can settle any proof.
``post``: ``needs_community`` posts the proofs the verification worker sent to people;
``always`` posts auto-approved proofs too (witnesses can still reject them).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

KEY = "social"


class SocialPolicy(msgspec.Struct, forbid_unknown_fields=True):
    min_witnesses: Annotated[int, msgspec.Meta(ge=1, le=100)] = 2
    agreement: Annotated[float, msgspec.Meta(ge=0.5, lt=1.0)] = 2 / 3
    remote_weight: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.5
    post: Literal["needs_community", "always"] = "needs_community"
