"""What the gateway's parts share in one process: settings, the router, a bot per territory."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from core.evidence import EvidenceStore
from core.routing import Router, Territory
from core.settings import Settings
from federation import config
from federation.matrix import Bot


@dataclass
class Gateway:
    settings: Settings
    router: Router
    evidence: EvidenceStore
    _bots: dict[str, Bot] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def territory(self, code: str) -> Territory:
        return await self.router.lookup(code)

    async def bot(self, code: str) -> Bot | None:
        """The bot of the territory's homeserver; None when the territory has none (the
        registry names no homeserver, or this node holds no application-service tokens for it)."""
        territory = await self.router.lookup(code)
        if not territory.matrix_homeserver:
            return None
        bot = self._bots.get(code)
        if bot is not None and bot.config.server_name == territory.matrix_homeserver:
            return bot
        async with self._lock:
            cfg = config.load(self.settings, code)
            if cfg is None or cfg.server_name != territory.matrix_homeserver:
                return None
            if code in self._bots:
                await self._bots[code].close()
            bot = self._bots[code] = Bot(cfg, timeout=self.settings.matrix.request_timeout)
            return bot

    async def close(self) -> None:
        for bot in self._bots.values():
            await bot.close()
        self._bots.clear()
        await self.evidence.close()


_current: Gateway | None = None


def install(gateway: Gateway) -> None:
    global _current
    _current = gateway


def current() -> Gateway:
    if _current is None:
        raise RuntimeError("the Matrix gateway is not running in this process (oneheart gateway)")
    return _current
