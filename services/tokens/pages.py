"""The wallet (``/app/wallet``): the player's Heart tokens, their ledger entries (newest first,
each with what it was for), sending tokens with a confirmation step, and one entry with its
"Verify this entry" (the checks run in the browser: ``node/static/verify.js``; its data comes
from ``services/ledger/pages.py``).

Sending is two steps. ``GET /app/wallet/send`` names the recipient (a display name that only
one player has, or a player id), checks the rules and the balance and shows "Send 5 Heart
tokens to Bob?" with a fresh idempotency key; ``POST /app/wallet/send`` (Confirm) makes the
transfer through :func:`services.tokens.service.transfer_once`, the API's own path, so the same
key sent twice (a double click, a reload) sends once.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from core.auth import Identity
from core.errors import AppError, NotFound
from core.pages import page, redirect, refusals
from core.pagination import Cursor
from core.routing import Territory
from services.ledger import service as ledger
from services.ledger.canonical import PLAYER, Entry
from services.players import service as players
from services.rewards import service as rewards
from services.tokens import service
from services.tokens.dto import Transfer, TransferIn
from services.tokens.service import Refused

Db = NamedDependency[AsyncConnection]
Tx = NamedDependency[AsyncConnection]
PAGE_SIZE = 20
MAX_TOKENS = 10**15  # dto.Tokens' bound
# The wallet's send form carries a nonce; the confirmation's idempotency key is made from it, so
# the same confirmation (a double click, Back and Confirm again) is one transfer.
Nonce = Annotated[str | None, QueryParameter(pattern=r"^[A-Za-z0-9_-]{16,64}$")]


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


class BadAmount(Refused):
    code = "bad_amount"


class BadMemo(Refused):
    code = "bad_memo"


# Refusals the wallet explains in the reader's language (tokens/refused.html); any other error
# is the kit's error page.
REFUSALS = frozenset(
    {"bad_amount", "bad_memo", "transfer_too_large", "self_transfer", "unknown_player", "ambiguous_player"}
    | {"insufficient_funds", "idempotency_key_reused"}
)


refused_page = refusals("tokens/refused.html", REFUSALS)


def parse_amount(text: str) -> int:
    digits = text.strip()
    if not digits.isdigit() or not 1 <= int(digits) <= MAX_TOKENS:
        raise BadAmount(f"the amount must be a whole number of tokens from 1 to {MAX_TOKENS}", amount=text)
    return int(digits)


def transfer_in(to_player: uuid.UUID, amount: str, memo: str | None) -> TransferIn:
    """The API's TransferIn from the form's fields (the same limits as the JSON body)."""
    tokens = parse_amount(amount)
    text = (memo or "").strip() or None
    try:
        return msgspec.convert({"to_player": str(to_player), "amount": tokens, "memo": text}, TransferIn)
    except msgspec.ValidationError as exc:
        raise BadMemo(f"the note is not allowed: {exc}") from None


@dataclass(frozen=True)
class Line:
    """A ledger entry as the player reads it: what it was for, and which way it went for them."""

    entry: Entry
    what: str  # payout, contribution, minted, redeemed, burnt, sent, received, adjusted, moved
    sign: int  # +1 tokens came to the player, -1 left them, 0 neither (another account's entry)
    other: str | None  # the other player's display name (transfers)
    other_id: str | None  # the other account's player id
    title: str | None  # what a redemption bought
    signed: bool  # in the newest signed checkpoint, so it can be verified


def _player_id(account: str) -> uuid.UUID | None:
    if not account.startswith(PLAYER):
        return None
    try:
        return uuid.UUID(account[len(PLAYER) :])
    except ValueError:
        return None


def _what(e: Entry, sign: int) -> str:
    if e.kind == "mint":
        return {"proof": "payout", "contribution": "contribution"}.get(e.ref_type or "", "minted")
    if e.kind == "burn":
        return "redeemed" if e.ref_type == "redemption" else "burnt"
    if e.kind == "adjust":
        return "adjusted"
    return {1: "received", -1: "sent"}.get(sign, "moved")


def _redemption_id(e: Entry) -> uuid.UUID | None:
    if e.ref_type != "redemption" or not e.ref_id:
        return None
    try:
        return uuid.UUID(e.ref_id)
    except ValueError:
        return None


async def describe(conn: AsyncConnection, entries: list[Entry], me: str) -> list[Line]:
    """What each entry was for, from ``me``'s side (names and reward titles in two queries)."""
    others: dict[int, uuid.UUID | None] = {}
    for e in entries:
        other = e.debit if e.credit == me else e.credit if e.debit == me else None
        others[e.seq] = _player_id(other) if other else None
    names = await service.display_names(conn, {p for p in others.values() if p})
    titles = await rewards.redeemed_titles(conn, {r for e in entries if (r := _redemption_id(e))})
    newest = await ledger.get_checkpoint(conn)
    signed_upto = newest.tree_size if newest else 0
    lines = []
    for e in entries:
        sign = 1 if e.credit == me else -1 if e.debit == me else 0
        other_id = others[e.seq]
        bought = _redemption_id(e)
        lines.append(
            Line(
                entry=e,
                what=_what(e, sign),
                sign=sign,
                other=names.get(other_id) if other_id else None,
                other_id=str(other_id) if other_id else None,
                title=titles.get(bought) if bought else None,
                signed=e.seq <= signed_upto,
            )
        )
    return lines


class TokenPages(Controller):
    include_in_schema = False
    exception_handlers = {AppError: refused_page}

    @get("/app/wallet")
    async def wallet(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        cursor: Cursor = None,
        sent: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
        again: Annotated[bool, QueryParameter()] = False,
    ) -> Response[Any]:
        """Balance, the send form, and the player's ledger entries, newest first."""
        me = await players.me(db, identity)
        account = ledger.player_account(identity.user_id)
        balance = await service.balance(db, account)
        entries, next_cursor = await ledger.list_entries(
            db, account=account, newest_first=True, limit=PAGE_SIZE, cursor=cursor
        )
        done = None
        if sent is not None:
            found, _ = await ledger.list_entries(db, account=account, from_seq=sent, to_seq=sent, limit=1)
            if found and found[0].debit == account and found[0].kind == "transfer":
                done = (await describe(db, found, account))[0]
        return page(
            request,
            "tokens/wallet.html",
            me=me,
            territory=territory,
            balance=balance,
            lines=await describe(db, entries, account),
            next_cursor=next_cursor,
            first_page=cursor is None,
            sent=done,
            again=again,
            nonce=new_nonce(),
        )

    @get("/app/wallet/send")
    async def review(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        identity: NamedDependency[Identity],
        to: Annotated[str, QueryParameter(max_length=200)] = "",
        amount: Annotated[str, QueryParameter(max_length=40)] = "",
        memo: Annotated[str | None, QueryParameter(max_length=400)] = None,
        nonce: Nonce = None,
    ) -> Response[Any]:
        """The confirmation step: who, how much, the balance after; nothing is sent yet."""
        recipient = await service.find_recipient(db, to)
        data = transfer_in(recipient.id, amount, memo)
        most = request.app.state.settings.economy.token_transfer_max
        balance = await service.preview_transfer(db, identity.user_id, data, most=most)
        return page(
            request,
            "tokens/confirm.html",
            recipient=recipient,
            data=data,
            balance=balance,
            key=f"web-{nonce or new_nonce()}",
        )

    @post("/app/wallet/send")
    async def send(
        self,
        request: Request[Any, Any, Any],
        tx: Tx,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        """Confirm: the transfer, once per key (the API's transfer_once)."""
        try:
            to_player = uuid.UUID(data.get("to_player", ""))
        except ValueError:
            raise service.UnknownPlayer("this form names no player", name=data.get("to_player", "")) from None
        transfer = transfer_in(to_player, data.get("amount", ""), data.get("memo"))
        key = data.get("key") or None
        most = request.app.state.settings.economy.token_transfer_max
        answer = await service.transfer_once(tx, identity, territory.code, transfer, key, most=most)
        made = service.transfer_of(answer)
        replayed = not isinstance(answer.content, Transfer)  # the key's first answer, sent before
        return redirect(request, f"/app/wallet?sent={made.seq}" + ("&again=1" if replayed else ""))

    @get("/app/wallet/entries/{seq:int}")
    async def entry(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        territory: NamedDependency[Territory],
        identity: NamedDependency[Identity],
        seq: Annotated[int, PathParameter(ge=1, le=2**62)],
    ) -> Response[Any]:
        """One ledger entry, what it was for, and "Verify this entry"."""
        found, _ = await ledger.list_entries(db, from_seq=seq, to_seq=seq, limit=1)
        if not found:
            raise NotFound(f"no ledger entry {seq}")
        account = ledger.player_account(identity.user_id)
        (line,) = await describe(db, found, account)
        newest = await ledger.get_checkpoint(db)
        return page(request, "tokens/entry.html", line=line, territory=territory, newest=newest)
