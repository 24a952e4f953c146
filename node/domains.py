"""Which domains the node mounts: HTTP controllers by service name (``oneheart serve --only``
chooses from them) and the event consumers ``oneheart worker`` runs."""

from __future__ import annotations

from typing import Any


def routes() -> dict[str, list[Any]]:
    from services.activity.controllers import ActivityController
    from services.auth.controllers import AuthController, JwksController
    from services.idp.controllers import OIDCController
    from services.impact.controllers import ImpactController
    from services.leaderboards.controllers import LeaderboardController
    from services.ledger.controllers import LedgerController
    from services.notifications.controllers import NotificationController
    from services.players.controllers import PlayerController
    from services.proofs.controllers import ProofController
    from services.quests.controllers import QuestController
    from services.registry.controllers import RegistryController
    from services.rewards.controllers import RewardController
    from services.social.controllers import SocialController
    from services.tokens.controllers import PoolController, TokenController
    from services.zones.controllers import ZoneController

    return {
        "registry": [RegistryController],
        "zones": [ZoneController],
        "activity": [ActivityController],
        "auth": [AuthController, JwksController],
        "players": [PlayerController],
        "idp": [OIDCController],
        "ledger": [LedgerController],
        "quests": [QuestController],
        "proofs": [ProofController],
        "impact": [ImpactController],
        "notifications": [NotificationController],
        "tokens": [TokenController, PoolController],
        "rewards": [RewardController],
        "social": [SocialController],
        "leaderboards": [LeaderboardController],
        "web": pages(),
    }


def pages() -> list[Any]:
    """The player app's pages (``/app``): each domain's ``pages.py``, and the app's shell."""
    from node.shell import ShellPages
    from services.auth.pages import SignInPages
    from services.leaderboards.pages import LeaderboardPages
    from services.ledger.pages import LedgerPages
    from services.notifications.pages import NotificationPages
    from services.players.pages import PlayerPages
    from services.proofs.pages import ProofPages
    from services.quests.pages import QuestPages
    from services.rewards.pages import RewardPages
    from services.social.pages import ReviewPages
    from services.tokens.pages import TokenPages

    return [
        SignInPages,
        PlayerPages,
        QuestPages,
        ProofPages,
        ReviewPages,
        LeaderboardPages,
        NotificationPages,
        TokenPages,
        LedgerPages,
        RewardPages,
        ShellPages,
    ]


def consumers() -> list[Any]:
    from services.activity.consumers import CONSUMERS as activity
    from services.impact.consumers import CONSUMERS as impact
    from services.leaderboards.consumers import CONSUMERS as leaderboards
    from services.verification.consumers import CONSUMERS as verification

    return [*activity, *verification, *impact, *leaderboards]
