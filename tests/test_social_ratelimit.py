"""The gateway's Matrix client respects a homeserver's rate limits (429 with retry_after_ms).

A Synapse of its own whose application-service registration is rate limited, with one room
creation per second allowed (the bot's messages are never limited by Synapse; rooms and media
are): the bot's calls wait the time the server asks for and then succeed; a client told to give
up reports how long to wait instead of hammering the server."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from devstack.system import free_port

from devstack import synapse
from federation import config
from federation.config import HomeserverConfig
from federation.matrix import Bot, RateLimited
from federation.registration import appservice_registration

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_rate_limits_are_respected(tmp_path: Path) -> None:
    hs = synapse.Homeserver(tmp_path / "hs", free_port(), free_port())
    cfg = HomeserverConfig(hs.server_name, hs.url, config.new_token(), config.new_token())
    registration = hs.folder / "appservice.json"
    registration.parent.mkdir(parents=True)
    doc = appservice_registration(
        territory="rl", server_name=hs.server_name, url=None, as_token=cfg.as_token, hs_token=cfg.hs_token
    )
    registration.write_text(json.dumps({**doc, "rate_limited": True}))
    limits = {**synapse.RELAXED_LIMITS, "rc_room_creation": {"per_second": 1, "burst_count": 1}}
    synapse.write_config(hs, synapse.ensure_tls(tmp_path / "ca"), appservices=[registration], limits=limits)
    await asyncio.to_thread(synapse.start_synapse, hs)
    patient, hasty = Bot(cfg, timeout=10, max_rate_limited=10), Bot(cfg, timeout=10, max_rate_limited=0)
    try:
        started = time.monotonic()
        rooms = [await patient.create_room(alias_localpart=f"oh_rl{i}", name="limits", topic="") for i in range(3)]
        assert len(set(rooms)) == 3
        assert time.monotonic() - started >= 1.5  # two of them waited for the server's retry_after_ms
        with pytest.raises(RateLimited) as refused:
            for i in range(3):
                await hasty.create_room(alias_localpart=f"oh_hasty{i}", name="limits", topic="")
        assert (refused.value.retry_after_ms or 0) > 0
    finally:
        await patient.close()
        await hasty.close()
        await asyncio.to_thread(synapse.stop_synapse, hs)
