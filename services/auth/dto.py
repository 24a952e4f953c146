"""What the login broker's endpoints take and answer."""

from __future__ import annotations

from typing import Annotated

import msgspec


class TokenPair(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str


class CodeGrant(msgspec.Struct):
    grant_type: str
    code: str
    client_id: str
    redirect_uri: str
    code_verifier: str = ""


class RefreshIn(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=10, max_length=200)]
