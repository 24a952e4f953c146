"""The application-service endpoint: the homeserver pushes the events of the gateway's rooms.

``PUT /territories/<code>/_matrix/app/v1/transactions/<txnId>`` (the registration's ``url`` is
``<gateway>/territories/<code>``). A transaction is applied in ONE territory transaction
together with the insert of its key (id + digest of its event ids) into ``matrix_txns``: the
homeserver retries a transaction until it gets a 200, so a gateway killed at any point applies
every transaction exactly once when it comes back — no vote lost, none counted twice.

What a transaction can carry:

- ``m.reaction`` (an ``m.annotation`` on a posted proof) from a linked Matrix user: a vote
  (keys in ``services.social.service.REACTIONS``: 👍 ✅ agree, 👎 ❌ disagree); another
  reaction of the same witness replaces their vote;
- ``m.room.redaction`` of such a reaction: the vote is withdrawn;
- ``!link CODE`` in a zone room or a direct message to the bot: links the sender to the
  player who asked for the code (``POST /api/social/link-code``);
- an invite of the bot: it joins (direct messages);
- a Matrix user of the territory's own homeserver who signed in through single sign-on is
  linked to their player on first sight, through the SSO identity the homeserver recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
import structlog
from litestar import Litestar, Request, Response, get, post, put
from litestar.params import PathParameter
from sqlalchemy.dialects.postgresql import insert

from core.errors import AppError
from federation.context import Gateway, current
from federation.matrix import Bot, MatrixError
from services.auth.broker import link_person
from services.social import service
from services.social.models import matrix_txns, social_posts

log = structlog.get_logger(__name__)
LINK = re.compile(r"^\s*!link\s+([A-Za-z0-9-]{4,20})\s*$")
SSO_PROVIDER = "oidc-oneheart"
PREFIX = "/territories/{code:str}/_matrix/app/v1"


def _error(status: int, errcode: str, message: str) -> Response[dict[str, str]]:
    return Response({"errcode": errcode, "error": message}, status_code=status)


def _authorized(request: Request[Any, Any, Any], bot: Bot) -> bool:
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.query_params.get("access_token", "")
    return hmac.compare_digest(token.encode(), bot.config.hs_token.encode())


async def _sso_links(gateway: Gateway, code: str, bot: Bot, events: list[dict[str, Any]]) -> None:
    """Link local senders who signed in through SSO (once; before the votes are applied)."""
    cfg = bot.config
    local = {
        e.get("sender", "")
        for e in events
        if e.get("type") in ("m.reaction", "m.room.message")
        and service.server_of(e.get("sender", "")) == cfg.server_name
    } - {cfg.bot}
    if not local or not cfg.oidc_issuer:
        return
    async with gateway.router.read(await gateway.router.lookup(code)) as conn:
        linked = set(
            (
                await conn.execute(
                    sa.select(service.matrix_links.c.mxid).where(service.matrix_links.c.mxid.in_(sorted(local)))
                )
            ).scalars()
        )
    for mxid in sorted(local - linked):
        try:
            identities = await bot.sso_identities(mxid)
        except MatrixError as exc:
            log.warning("cannot read a user's SSO identity", mxid=mxid, error=str(exc))
            continue
        subject = next((i["external_id"] for i in identities if i.get("auth_provider") == SSO_PROVIDER), None)
        if subject is None:
            continue
        localpart = mxid[1:].split(":", 1)[0]
        user_id = await link_person(
            gateway.router, code, {"iss": cfg.oidc_issuer, "sub": subject, "preferred_username": localpart}
        )
        async with gateway.router.transaction(await gateway.router.lookup(code)) as conn:
            await service.link(conn, mxid, user_id, "sso")
        log.info("matrix user linked through single sign-on", territory=code, mxid=mxid)


async def _apply(conn: Any, code: str, bot: Bot, event: dict[str, Any], after: list[Any]) -> None:
    kind, sender, content = event.get("type"), event.get("sender", ""), event.get("content") or {}
    if sender == bot.user_id:
        return
    if kind == "m.reaction":
        relates = content.get("m.relates_to") or {}
        value = service.vote_of(str(relates.get("key", "")))
        if relates.get("rel_type") != "m.annotation" or value is None:
            return
        post_row = (
            await conn.execute(
                sa.select(social_posts.c.proof_id).where(social_posts.c.event_id == relates.get("event_id"))
            )
        ).first()
        if post_row is None:
            return
        voter = await service.player_of(conn, sender)
        if voter is None:
            log.info("reaction of an unlinked matrix user ignored", territory=code, mxid=sender)
            return
        at = datetime.fromtimestamp(int(event.get("origin_server_ts", 0)) / 1000, UTC)
        counted = await service.cast(
            conn,
            post_row.proof_id,
            voter,
            value,
            home=bot.config.server_name,
            source="matrix",
            mxid=sender,
            event_id=event.get("event_id"),
            at=at,
        )
        log.info(
            "vote",
            territory=code,
            proof_id=str(post_row.proof_id),
            mxid=sender,
            value=value,
            witnesses=counted.tally.witnesses,
            outcome=counted.outcome,
        )
    elif kind == "m.room.redaction":
        redacts = event.get("redacts") or content.get("redacts")
        if redacts:
            await service.withdraw(conn, str(redacts), bot.config.server_name)
    elif kind == "m.room.message":
        match = LINK.match(str(content.get("body", "")))
        if match:
            player = await service.redeem_link_code(conn, match.group(1), sender)
            reply = (
                f"{sender} is now linked to a OneHeart player: your reactions count as votes."
                if player is not None
                else "That link code is unknown, already used or expired. Ask the app for a new one."
            )
            after.append(("reply", event.get("room_id"), event.get("event_id"), reply))
    elif kind == "m.room.member" and event.get("state_key") == bot.user_id:
        if content.get("membership") == "invite":
            after.append(("join", event.get("room_id"), None, None))


async def _after(bot: Bot, actions: list[Any]) -> None:
    """Replies and joins once the transaction committed (best effort: they change no state)."""
    for action, room_id, event_id, text in actions:
        with contextlib.suppress(MatrixError):
            if action == "join":
                await bot.join(room_id)
            else:
                await bot.send(
                    room_id,
                    {"msgtype": "m.notice", "body": text, "m.relates_to": {"m.in_reply_to": {"event_id": event_id}}},
                    txn_id=f"oh-reply-{event_id}",
                )


def transaction_key(txn_id: str, events: list[dict[str, Any]]) -> str:
    """The transaction id with a digest of its event ids: a retried transaction has the same
    key, while a homeserver that restarts its numbering after a restart (Synapse on SQLite
    does) sends new events under an old id, which must not be mistaken for a retry."""
    digest = hashlib.sha256("\n".join(str(e.get("event_id", "")) for e in events).encode()).hexdigest()
    return f"{txn_id}:{digest[:32]}"


@put([f"{PREFIX}/transactions/{{txn_id:str}}", "/territories/{code:str}/transactions/{txn_id:str}"], status_code=200)
async def transaction(
    request: Request[Any, Any, Any],
    code: Annotated[str, PathParameter()],
    txn_id: Annotated[str, PathParameter()],
) -> Response[Any]:
    gateway = current()
    try:
        bot = await gateway.bot(code)
    except AppError:
        bot = None
    if bot is None:
        return _error(404, "M_NOT_FOUND", f"no homeserver is configured for territory {code!r}")
    if not _authorized(request, bot):
        return _error(403, "M_FORBIDDEN", "bad hs_token")
    body = await request.json()
    events = list(body.get("events") or [])
    await _sso_links(gateway, code, bot, events)
    after: list[Any] = []
    async with gateway.router.transaction(await gateway.router.lookup(code)) as conn:
        claimed = (
            await conn.execute(
                insert(matrix_txns)
                .values(txn_id=transaction_key(txn_id, events), events=len(events))
                .on_conflict_do_nothing()
                .returning(matrix_txns.c.txn_id)
            )
        ).first()
        if claimed is None:
            return Response({}, status_code=200)  # applied before; the homeserver did not hear us
        for event in events:
            await _apply(conn, code, bot, event, after)
    await _after(bot, after)
    return Response({}, status_code=200)


async def _nothing_on_demand(request: Request[Any, Any, Any], code: str) -> Response[Any]:
    # The gateway makes its users and rooms itself; it never creates them on a query.
    bot = await current().bot(code)
    if bot is None or not _authorized(request, bot):
        return _error(403, "M_FORBIDDEN", "bad hs_token")
    return _error(404, "M_NOT_FOUND", "not provided on demand")


@get(f"{PREFIX}/users/{{user_id:str}}")
async def query_user(
    request: Request[Any, Any, Any], code: Annotated[str, PathParameter()], user_id: Annotated[str, PathParameter()]
) -> Response[Any]:
    return await _nothing_on_demand(request, code)


@get(f"{PREFIX}/rooms/{{alias:str}}")
async def query_alias(
    request: Request[Any, Any, Any], code: Annotated[str, PathParameter()], alias: Annotated[str, PathParameter()]
) -> Response[Any]:
    return await _nothing_on_demand(request, code)


@post(f"{PREFIX}/ping", status_code=200)
async def ping(request: Request[Any, Any, Any], code: Annotated[str, PathParameter()]) -> Response[Any]:
    bot = await current().bot(code)
    if bot is None or not _authorized(request, bot):
        return _error(403, "M_FORBIDDEN", "bad hs_token")
    return Response({}, status_code=200)


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app() -> Litestar:
    return Litestar(
        route_handlers=[transaction, query_user, query_alias, ping, health], debug=False, openapi_config=None
    )
