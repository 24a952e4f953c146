"""Domain services. ``ROUTES`` is what ``oneheart serve --only`` chooses from; ``CONSUMERS`` is
what ``oneheart worker`` runs."""

from __future__ import annotations

from typing import Any


def routes() -> dict[str, list[Any]]:
    from services.activity.controllers import ActivityController
    from services.registry.controllers import RegistryController
    from services.zones.controllers import ZoneController

    return {"registry": [RegistryController], "zones": [ZoneController], "activity": [ActivityController]}


def consumers() -> list[Any]:
    from services.activity.consumers import CONSUMERS as activity

    return [*activity]
