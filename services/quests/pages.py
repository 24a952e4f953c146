"""The player app's quest pages: quests near the player (a map and the same quests as a list,
nearest first), one quest with its start button and the player's history on it, and the
capture page that sends a proof (``/app/quests``...).

Every action is the JSON API's own service call: the list is :func:`list_quests` (the
``GET /api/quests`` search), start is :func:`start_quest`, and an upload runs
:func:`services.proofs.service.receive`, the body of ``POST /api/quests/{id}/proofs``, with the
same body limit. The capture page's JavaScript (``node/static/capture.js``) keeps a capture in
IndexedDB until the node answered, and sends it again with the same ``Idempotency-Key``.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, get_args

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, HeaderParameter, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity, require_role
from core.errors import InvalidInput, NotFound
from core.http import EVIDENCE_UPLOAD
from core.pages import page, redirect
from core.routing import Territory
from services.impact import service as impact
from services.proofs import service as proofs
from services.proofs.dto import ProofForm
from services.quests.dto import QuestType
from services.quests.service import categories, get_quest, history, list_quests, quest_filter, start_quest
from services.zones import service as zones

Db = NamedDependency[AsyncConnection]
QUEST_TYPES: tuple[str, ...] = get_args(QuestType)
PAGE_SIZE = 20
# Zones drawn on the map: a territory's whole set, within reason.
MAP_ZONES = 500
RADII_KM = (1, 5, 25, 100, 500)
DEFAULT_RADIUS_KM = 25
Text = Annotated[str | None, QueryParameter(max_length=40)]


def _number(name: str, value: str | None) -> float | None:
    """A number from a query parameter; an empty one (a form's blank field) is none."""
    if value is None or not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a number") from None
    if not math.isfinite(number):
        raise InvalidInput(f"{name} must be a finite number")
    return number


def _open_now(quest: Any, now: datetime) -> bool:
    return (quest.starts_at is None or quest.starts_at <= now) and (quest.ends_at is None or now < quest.ends_at)


class QuestPages(Controller):
    include_in_schema = False

    @get("/app/quests")
    async def quests(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        lat: Text = None,
        lng: Text = None,
        accuracy: Text = None,
        radius_km: Text = None,
        quest_type: Annotated[str | None, QueryParameter(name="type", max_length=20)] = None,
        category: Text = None,
        cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
    ) -> Response[Any]:
        """Open quests near the player's position (set by the page's script), else all of them."""
        point_lat, point_lng = _number("lat", lat), _number("lng", lng)
        radius = _number("radius_km", radius_km) or DEFAULT_RADIUS_KM
        chosen_type = quest_type or None
        if chosen_type is not None and chosen_type not in QUEST_TYPES:
            raise InvalidInput(f"type must be one of {', '.join(QUEST_TYPES)}")
        where = quest_filter(
            lat=point_lat, lng=point_lng, radius_km=radius, type=chosen_type, category=category or None
        )
        items, next_cursor = await list_quests(db, identity.user_id, where, limit=PAGE_SIZE, cursor=cursor or None)
        elsewhere: list[Any] = []
        if where.near is not None and not items and not cursor:
            # Nothing near: the territory's open quests all the same, so there is something to do.
            anywhere = quest_filter(type=chosen_type, category=category or None)
            elsewhere, _ = await list_quests(db, identity.user_id, anywhere, limit=PAGE_SIZE, cursor=None)
        zone_list, _ = await zones.list_zones(db, limit=MAP_ZONES, cursor=None)
        position = None
        if where.near is not None:
            position = {"lat": where.near[0], "lng": where.near[1], "accuracy": _number("accuracy", accuracy)}
        query = {
            "lat": lat or "",
            "lng": lng or "",
            "accuracy": accuracy or "",
            "radius_km": radius_km or "",
            "type": chosen_type or "",
            "category": category or "",
        }
        return page(
            request,
            "quests/list.html",
            quests=items,
            elsewhere=elsewhere,
            next_cursor=next_cursor,
            first_page=not cursor,
            zones={z.id: z for z in zone_list},
            map_zones=[
                {"id": str(z.id), "name": z.name, "lat": z.lat, "lng": z.lng, "radius_m": z.radius_m} for z in zone_list
            ],
            categories=await categories(db),
            quest_types=QUEST_TYPES,
            radii=RADII_KM,
            radius=radius,
            chosen_type=chosen_type or "",
            chosen_category=category or "",
            position=position,
            query=query,
            territory=territory,
        )

    @get("/app/quests/{quest_id:uuid}")
    async def quest(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        quest_id: Annotated[uuid.UUID, PathParameter()],
    ) -> Response[Any]:
        """One quest: what it asks, when it is open, how often it may be done, and the player's runs."""
        quest = await get_quest(db, quest_id, identity.user_id)
        zone = await zones.get_zone(db, quest.zone_id)
        runs, more = await history(db, identity.user_id, limit=50, cursor=None, quest_id=quest_id)
        now = datetime.now(UTC)
        return page(
            request,
            "quests/quest.html",
            quest=quest,
            zone=zone,
            runs=runs,
            more_runs=more is not None,
            open_now=_open_now(quest, now),
            now=now,
            territory=territory,
        )

    @post("/app/quests/{quest_id:uuid}/start")
    async def start(
        self,
        request: Request[Any, Any, Any],
        tx: NamedDependency[AsyncConnection],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        quest_id: Annotated[uuid.UUID, PathParameter()],
    ) -> Response[Any]:
        """Start the quest (POST /api/quests/{id}/start: the open assignment if it was started
        already), then on to the capture page."""
        require_role(identity, "player", territory.code)
        await start_quest(tx, quest_id, identity.user_id)
        return redirect(request, f"/app/quests/{quest_id}/capture")

    @get("/app/quests/{quest_id:uuid}/capture")
    async def capture(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        quest_id: Annotated[uuid.UUID, PathParameter()],
    ) -> Response[Any]:
        """Take or choose a photo or video, with where and when it was taken, and send it."""
        quest = await get_quest(db, quest_id, identity.user_id)
        zone = await zones.get_zone(db, quest.zone_id)
        settings = request.app.state.settings
        return page(
            request,
            "quests/capture.html",
            quest=quest,
            zone=zone,
            territory=territory,
            max_bytes=settings.evidence.evidence_max_bytes,
            max_mb=settings.evidence.evidence_max_bytes / (1024 * 1024),
            open_now=_open_now(quest, datetime.now(UTC)),
        )

    @post("/app/quests/{quest_id:uuid}/proofs", status_code=202, opt={"body_limit": EVIDENCE_UPLOAD})
    async def upload(
        self,
        request: Request[Any, Any, Any],
        tx: NamedDependency[AsyncConnection],
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        quest_id: Annotated[uuid.UUID, PathParameter()],
        data: Annotated[ProofForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        idempotency_key: Annotated[str, HeaderParameter(name="Idempotency-Key", max_length=255)],
    ) -> Response[Any]:
        """The capture page's upload: the API's checks and submit (services.proofs.service.receive),
        answered with the proof's live status."""
        state = request.app.state
        accepted = await proofs.receive(
            tx, state.evidence, state.settings, identity, territory.code, quest_id, data, idempotency_key
        )
        # Read in the upload's transaction: a replayed key shows the proof as it stands now.
        proof = await proofs.get_proof(tx, accepted.proof_id, identity, territory.code)
        paid = await impact.paid_for(tx, proof.id)
        return page(request, "quests/proof_status.html", status=202, proof=proof, paid=paid, quest_id=quest_id)

    @get("/app/quests/{quest_id:uuid}/proofs/{proof_id:uuid}")
    async def proof_status(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        quest_id: Annotated[uuid.UUID, PathParameter()],
        proof_id: Annotated[uuid.UUID, PathParameter()],
    ) -> Response[Any]:
        """A sent proof's status (checking, auto-approved, needs the community...) and what it
        paid: the fragment the capture page refreshes on every notification."""
        proof = await proofs.get_proof(db, proof_id, identity, territory.code)
        if proof.quest_id != quest_id:
            raise NotFound(f"proof {proof_id} does not exist in this territory")
        paid = await impact.paid_for(db, proof.id)
        return page(request, "quests/proof_status.html", proof=proof, paid=paid, quest_id=quest_id)
