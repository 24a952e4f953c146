"""The badge definitions shipped with the node (reference data, checked in here).

They are loaded into ``public.badge_definitions`` of every database server (on first use by the
worker or the API, or ``oneheart impact badges sync``). Loading adds and updates, never
deletes: retire a badge with ``"active": False``. Rules (``services.impact.badges``):

- ``{"kind": "count", "count": N, "status": S, "category": C, "within_days": D}``: N proofs of
  the player paid out, where S is ``approved`` (any; default), ``validated`` (by the community)
  or ``auto_approved``; only quests of category C when given; only proofs done in the last D
  days when given.
- ``{"kind": "level", "level": L}``: the player reached level L.
- ``{"kind": "streak", "days": D}``: approved proofs on D consecutive days.

``valid_days`` makes a badge expire that many days after it was awarded; it can then be earned
again.
"""

from __future__ import annotations

from typing import Any

BADGES: list[dict[str, Any]] = [
    {
        "code": "first_heart",
        "name": "First heart",
        "description": "Your first approved good action.",
        "rule": {"kind": "count", "count": 1},
    },
    {
        "code": "beach_guardian",
        "name": "Beach guardian",
        "description": "10 beach clean-ups validated by your community.",
        "rule": {"kind": "count", "count": 10, "status": "validated", "category": "beach_cleanup"},
    },
    {
        "code": "tree_planter",
        "name": "Tree planter",
        "description": "10 approved tree plantings.",
        "rule": {"kind": "count", "count": 10, "category": "trees"},
    },
    {
        "code": "teacher",
        "name": "Teacher",
        "description": "10 approved courses taught.",
        "rule": {"kind": "count", "count": 10, "category": "teaching"},
    },
    {
        "code": "week_of_heart",
        "name": "A week of heart",
        "description": "Approved good actions on 7 days in a row.",
        "rule": {"kind": "streak", "days": 7},
    },
    {
        "code": "rising_heart",
        "name": "Rising heart",
        "description": "Reached level 5.",
        "rule": {"kind": "level", "level": 5},
    },
    {
        "code": "monthly_regular",
        "name": "Monthly regular",
        "description": "5 approved good actions within 30 days; held for 30 days.",
        "rule": {"kind": "count", "count": 5, "within_days": 30},
        "valid_days": 30,
    },
]
