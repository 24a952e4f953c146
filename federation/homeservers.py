"""Attach a territory to its homeserver: the registry names it, the node keeps its tokens, and
the node's OIDC provider knows the homeserver as a client (single sign-on)."""

from __future__ import annotations

from core.errors import Conflict, NotFound
from core.routing import Router
from core.settings import Settings
from federation import config
from federation.config import HomeserverConfig
from services.idp import service as idp
from services.idp.passwords import hash_client_secret
from territories.registry import Registry


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
    await Registry(router, actor).set_homeserver(code, cfg.server_name)
    await register_sso_client(router, cfg)
    return cfg
