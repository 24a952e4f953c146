"""Domain services. ``ROUTES`` is what ``oneheart serve --only`` chooses from; ``CONSUMERS`` is
what ``oneheart worker`` runs."""

from __future__ import annotations

from typing import Any


def routes() -> dict[str, list[Any]]:
    from services.activity.controllers import ActivityController
    from services.auth.controllers import AuthController, JwksController
    from services.idp.controllers import OIDCController
    from services.ledger.controllers import LedgerController
    from services.players.controllers import PlayerController
    from services.proofs.controllers import ProofController
    from services.quests.controllers import QuestController
    from services.registry.controllers import RegistryController
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
    }


def consumers() -> list[Any]:
    from services.activity.consumers import CONSUMERS as activity
    from services.verification.consumers import CONSUMERS as verification

    return [*activity, *verification]
