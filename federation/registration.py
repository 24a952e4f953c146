"""The application-service registration a territory's homeserver needs for the gateway.

Production homeservers get it from ``oneheart matrix registration CODE --url GATEWAY``; the
development stack writes the same document for its own homeservers.
"""

from __future__ import annotations

from typing import Any

BOT_LOCALPART = "oh_bot"


def appservice_registration(
    *, territory: str, server_name: str, url: str | None, as_token: str, hs_token: str
) -> dict[str, Any]:
    """The gateway's application-service registration for one territory's homeserver.

    It owns the users ``@oh_*`` and the aliases ``#oh_*`` of that server (exclusively);
    ``url`` is where Synapse pushes transactions (None: nothing is pushed)."""
    escaped = server_name.replace(".", "\\.")
    return {
        "id": f"oneheart-{territory}",
        "url": url,
        "as_token": as_token,
        "hs_token": hs_token,
        "sender_localpart": BOT_LOCALPART,
        "namespaces": {
            "users": [{"regex": f"@oh_.*:{escaped}", "exclusive": True}],
            "aliases": [{"regex": f"#oh_.*:{escaped}", "exclusive": True}],
            "rooms": [],
        },
        "rate_limited": False,
        "receive_ephemeral": False,
    }
