"""Attach a territory to its homeserver: the registry names it, the node keeps its tokens, and
the node's OIDC provider knows the homeserver as a client (single sign-on)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import sqlalchemy as sa

from core.errors import Conflict, NotFound
from core.settings import Settings
from federation import config
from federation.config import HomeserverConfig
from services.idp import models as idp
from services.idp.passwords import hash_client_secret
from territories import models
from territories.codes import GLOBAL, check_code
from territories.routing import Router


async def set_homeserver(router: Router, code: str, server_name: str | None, *, actor: str) -> None:
    """Name the territory's homeserver in the registry (audited)."""
    check_code(code)
    t = models.territories
    async with router.transaction(GLOBAL) as conn:
        row = (
            await conn.execute(
                t.update()
                .where(t.c.code == code)
                .values(matrix_homeserver=server_name, updated_at=sa.func.now())
                .returning(t.c.code)
            )
        ).first()
        if row is None:
            raise NotFound(f"unknown territory {code!r}")
        await conn.execute(
            models.audit_log.insert().values(
                actor=actor, action="territory.homeserver", target=code, details={"homeserver": server_name}
            )
        )
    router.invalidate(code)


def oidc_redirect_uri(hs_url: str) -> str:
    return f"{hs_url.rstrip('/')}/_synapse/client/oidc/callback"


async def register_sso_client(router: Router, cfg: HomeserverConfig) -> bool:
    """Register the homeserver with the node's OIDC provider (idempotent); False if there is
    nothing to register (no client in the config)."""
    if not cfg.oidc_client_id or not cfg.oidc_client_secret:
        return False
    try:
        await idp.add_client(
            router,
            cfg.oidc_client_id,
            f"Matrix homeserver {cfg.server_name}",
            hash_client_secret(cfg.oidc_client_secret),
            [oidc_redirect_uri(cfg.url)],
        )
    except Conflict:
        pass
    return True


async def attach(router: Router, settings: Settings, code: str, *, actor: str) -> HomeserverConfig:
    """Attach ``code`` to the homeserver whose config the node holds (``oneheart stack up``
    writes it for the demo territories)."""
    cfg = config.load(settings, code)
    if cfg is None:
        raise NotFound(f"no homeserver config for {code!r} in the node's secrets (matrix.json)")
    await set_homeserver(router, code, cfg.server_name, actor=actor)
    await register_sso_client(router, cfg)
    return cfg


# --- the local stack's demo homeservers ---------------------------------------------------------
def ensure_demo_homeservers(settings: Settings, codes: list[str], ports: dict[str, int]) -> list[tuple[str, str]]:
    """Start (or reuse) one Synapse per territory in ``codes`` under ``<data_dir>/synapse``,
    federating over TLS with the stack's CA, pushing to the gateway, signing players in through
    the node's OIDC provider. ``ports`` (the stack's state) keeps each server's ports, and so its
    name, stable across runs. Returns ``(code, server_name)`` pairs; `oneheart matrix attach`
    then names them in the registry."""
    from core.stack import synapse
    from core.stack.system import free_port, port_open

    root = settings.data_dir / "synapse"
    tls = synapse.ensure_tls(root / "ca")
    public = settings.public_url.rstrip("/")
    gateway = f"http://{settings.matrix_gateway_host}:{settings.matrix_gateway_port}"
    started: list[tuple[str, str]] = []
    for code in codes:
        keys = (f"synapse_{code}_federation", f"synapse_{code}_client")
        for key in keys:
            if key not in ports:
                wanted = 8480 + len(ports) + 1
                ports[key] = wanted if not port_open("127.0.0.1", wanted) else free_port()
        hs = synapse.Homeserver(root / code, ports[keys[0]], ports[keys[1]])
        cfg = config.load(settings, code)
        if cfg is None or cfg.server_name != hs.server_name:
            cfg = HomeserverConfig(
                server_name=hs.server_name,
                url=hs.url,
                as_token=config.new_token(),
                hs_token=config.new_token(),
                oidc_issuer=f"{public}/oidc",
                oidc_client_id=f"synapse-{code}",
                oidc_client_secret=config.new_token(),
            )
        registration = hs.folder / "appservice.json"
        registration.parent.mkdir(parents=True, exist_ok=True)
        registration.write_text(
            json.dumps(
                synapse.appservice_registration(
                    territory=code,
                    server_name=cfg.server_name,
                    url=f"{gateway}/territories/{code}",
                    as_token=cfg.as_token,
                    hs_token=cfg.hs_token,
                )
            )
        )
        registration.chmod(0o600)
        oidc = None
        if cfg.oidc_issuer and cfg.oidc_client_id and cfg.oidc_client_secret:
            oidc = synapse.oidc_provider(
                issuer=cfg.oidc_issuer, client_id=cfg.oidc_client_id, client_secret=cfg.oidc_client_secret
            )
        synapse.write_config(
            hs,
            tls,
            appservices=[registration],
            oidc=oidc,
            sso_client_whitelist=[f"{public}/"],
            limits=synapse.RELAXED_LIMITS,
        )
        synapse.start_synapse(hs)
        if cfg.admin_token is None:
            admin = synapse.register_user(hs, synapse.ADMIN_USER, config.new_token(), admin=True)
            cfg = msgspec.structs.replace(cfg, admin_token=admin["access_token"])
        config.save(settings, code, cfg)
        started.append((code, hs.server_name))
    return started


def demo_homeservers(settings: Settings) -> list[tuple[str, Any]]:
    """The stack's homeserver folders, as ``(code, Homeserver)``, from their written configs."""
    from core.stack import synapse

    found: list[tuple[str, Any]] = []
    root = settings.data_dir / "synapse"
    for folder in sorted(root.glob("*/homeserver.yaml")):
        doc = json.loads(folder.read_text())
        fed, client = (listener["port"] for listener in doc["listeners"])
        found.append((folder.parent.name, synapse.Homeserver(folder.parent, fed, client)))
    return found
