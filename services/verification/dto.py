from __future__ import annotations

from datetime import datetime

import msgspec

Number = float | int | None


class FlagNote(msgspec.Struct):
    """One flag of a verification, ready to be said in words: which sentence (``says``) and
    the numbers it needs. The words are the page's (translated there); this is only data."""

    flag: str  # the flag's code (services.verification.signals.FLAGS, or "verification_failed")
    says: str  # which sentence: the flag's code, or a variant of it ("duplicate_same", "clock_ahead"...)
    weight: str  # "hard" (evidence against the proof), "review" (people look), "quality"
    numbers: dict[str, Number]


class Verification(msgspec.Struct):
    """What the verification worker decided about one proof, flag by flag."""

    score: int | None  # integrity score 0-100 (None when the checks kept failing)
    decision: str  # "auto_approved", "needs_community", "rejected"
    flags: list[str]
    notes: list[FlagNote]
    model: str | None
    verified_at: datetime | None
