"""What the built-in provider's endpoints take and answer, and the records it keeps in Redis."""

from __future__ import annotations

import msgspec


class Discovery(msgspec.Struct):
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    response_types_supported: list[str]
    response_modes_supported: list[str]
    grant_types_supported: list[str]
    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]
    scopes_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    code_challenge_methods_supported: list[str]
    claims_supported: list[str]
    prompt_values_supported: list[str]
    authorization_response_iss_parameter_supported: bool
    request_parameter_supported: bool
    request_uri_parameter_supported: bool
    claims_parameter_supported: bool


class JWKS(msgspec.Struct):
    keys: list[dict[str, str]]


class TokenForm(msgspec.Struct):
    grant_type: str | None = None
    code: str | None = None
    redirect_uri: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    code_verifier: str | None = None


class TokenResponse(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    id_token: str
    scope: str


class UserInfo(msgspec.Struct, omit_defaults=True):
    sub: str
    preferred_username: str | None = None
    name: str | None = None
    email: str | None = None


class OAuthErrorBody(msgspec.Struct, omit_defaults=True):
    error: str
    error_description: str | None = None


# --- records in Redis ------------------------------------------------------------------------
class PendingLogin(msgspec.Struct):
    client_id: str
    client_name: str
    redirect_uri: str
    state: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    login_hint: str | None
    csrf: str
    browser: str  # digest of the browser cookie the login is bound to


class CodeGrant(msgspec.Struct):
    client_id: str
    redirect_uri: str
    account_id: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    auth_time: int


class AccessGrant(msgspec.Struct):
    account_id: str
    client_id: str
    scope: str
