"""Each territory's homeserver as the gateway sees it: names, URL and application-service tokens.

Kept in the node's secrets (``<data_dir>/secrets/matrix.json``, one entry per territory, or
``OH_MATRIX_<CODE>`` holding the same JSON), never in the registry: the registry only names
the homeserver (``territories.matrix_homeserver``, its server name).
"""

from __future__ import annotations

import secrets

import msgspec

from core.secrets import read_secret, store_secret
from core.settings import Settings

NAMESPACE = "matrix"


class HomeserverConfig(msgspec.Struct, forbid_unknown_fields=True):
    server_name: str  # e.g. "matrix.example.org" or "localhost:8481"
    url: str  # client-server API base, e.g. "https://matrix.example.org"
    as_token: str  # the gateway's token towards the homeserver
    hs_token: str  # the homeserver's token towards the gateway (transactions)
    # An admin's token: lets the gateway read which SSO identity a Matrix user signed in with.
    admin_token: str | None = None
    # Single sign-on: the provider the homeserver logs users in through (Synapse idp "oneheart").
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None

    @property
    def bot(self) -> str:
        return f"@oh_bot:{self.server_name}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def load(settings: Settings, territory: str) -> HomeserverConfig | None:
    raw = read_secret(settings, NAMESPACE, territory, "MATRIX")
    if not raw:
        return None
    return msgspec.json.decode(raw, type=HomeserverConfig)


def save(settings: Settings, territory: str, config: HomeserverConfig) -> None:
    store_secret(settings, NAMESPACE, territory, msgspec.json.encode(config).decode())
