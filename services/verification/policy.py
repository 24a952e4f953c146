"""A territory's verification policy (stored in its ``policies`` table under "verification")."""

from __future__ import annotations

from typing import Annotated

import msgspec

from services.verification.model import Thresholds

KEY = "verification"
Percent = Annotated[int, msgspec.Meta(ge=0, le=100)]


class VerificationPolicy(msgspec.Struct, forbid_unknown_fields=True):
    """``auto_approve_min``/``reject_max`` bound the integrity score (0-100) of the decisions;
    ``always_community`` sends every proof to the community, even ones that could be approved."""

    auto_approve_min: Percent = 80
    reject_max: Percent = 20
    always_community: bool = False

    def __post_init__(self) -> None:
        if self.reject_max >= self.auto_approve_min:
            raise ValueError("reject_max must be below auto_approve_min")

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(auto_approve_min=self.auto_approve_min, reject_max=self.reject_max)
