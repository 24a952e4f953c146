"""The development stack's homeservers: one Synapse per demo territory, federating over TLS
on loopback, pushing to the gateway, signing players in through the node's OIDC provider."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from core.settings import Settings
from devstack import synapse
from devstack.system import free_port, port_open
from federation import config
from federation.config import HomeserverConfig
from federation.registration import appservice_registration


def ensure_demo_homeservers(settings: Settings, codes: list[str], ports: dict[str, int]) -> list[tuple[str, str]]:
    """Start (or reuse) one Synapse per territory in ``codes`` under ``<data_dir>/synapse``,
    federating over TLS with the stack's CA, pushing to the gateway, signing players in through
    the node's OIDC provider. ``ports`` (the stack's state) keeps each server's ports, and so its
    name, stable across runs. Returns ``(code, server_name)`` pairs; `oneheart matrix attach`
    then names them in the registry."""
    root = settings.data_dir / "synapse"
    tls = synapse.ensure_tls(root / "ca")
    public = settings.http.public_url.rstrip("/")
    gateway = f"http://{settings.matrix.gateway_host}:{settings.matrix.gateway_port}"
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
                appservice_registration(
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
    found: list[tuple[str, Any]] = []
    root = settings.data_dir / "synapse"
    for folder in sorted(root.glob("*/homeserver.yaml")):
        doc = json.loads(folder.read_text())
        fed, client = (listener["port"] for listener in doc["listeners"])
        found.append((folder.parent.name, synapse.Homeserver(folder.parent, fed, client)))
    return found
