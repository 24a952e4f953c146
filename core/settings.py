"""Node settings, read from the environment (prefix ``OH_``), ``.env`` and the stack file.

Settings are grouped per area (``settings.db.pool_size``, ``settings.events.relay_batch``...);
each group reads its own variables, and every variable keeps its documented name
(``OH_DB_POOL_SIZE``, ``OH_RELAY_BATCH``...): :func:`env_names` lists them all.

``oneheart stack up`` writes ``<data_dir>/stack.env`` with the addresses it started or found;
real environment variables always win over both files.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _data_dir() -> Path:
    return Path(os.environ.get("OH_DATA_DIR", ".data")).resolve()


_ENV_FILES = (".env", str(_data_dir() / "stack.env"))


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, env_file=_ENV_FILES, extra="ignore", populate_by_name=True)


def _env(name: str) -> Any:
    """A field whose variable does not follow its group's prefix."""
    return AliasChoices(name)


class HttpSettings(BaseSettings):
    model_config = _config("OH_HTTP_")
    host: str = "127.0.0.1"
    port: int = 8000
    # The node's public base URL: issuer of its tokens and of the built-in OIDC provider
    # (at <public_url>/oidc), and where identity providers send players back (/api/auth/callback).
    public_url: str = Field("http://127.0.0.1:8000", validation_alias=_env("OH_PUBLIC_URL"))
    request_max_body: int = Field(1_048_576, validation_alias=_env("OH_REQUEST_MAX_BODY"))
    page_size_default: int = Field(50, validation_alias=_env("OH_PAGE_SIZE_DEFAULT"))
    page_size_max: int = Field(200, validation_alias=_env("OH_PAGE_SIZE_MAX"))


class LogSettings(BaseSettings):
    model_config = _config("OH_LOG_")
    level: str = "INFO"
    as_json: bool = Field(True, validation_alias=_env("OH_LOG_JSON"))
    access_log: bool = Field(True, validation_alias=_env("OH_ACCESS_LOG"))


class RegistrySettings(BaseSettings):
    model_config = _config("OH_REGISTRY_")
    # The registry's own database (the `global` schema lives here).
    dsn: str = "postgresql://postgres@127.0.0.1:5432/oneheart"
    cache_ttl: float = 30.0
    migrate_concurrency: int = Field(8, validation_alias=_env("OH_MIGRATE_CONCURRENCY"))


class DatabaseSettings(BaseSettings):
    """Pools: one per database server."""

    model_config = _config("OH_DB_")
    # A fixed pool per server: overflow connections are closed on return, which under sustained
    # load means a new connection (and TLS attempt) per request. Requests beyond it queue.
    pool_size: int = 20
    max_overflow: int = 0
    connect_timeout: float = 3.0
    statement_timeout_ms: int = 15000
    # Set when a server sits behind a transaction-mode pooler (PgBouncer): no prepared statements.
    behind_pooler: bool = False
    # Prepared statements kept per connection; the SQL names the schema, so hot territories x queries.
    statement_cache: int = 500
    retry_after_seconds: int = Field(5, validation_alias=_env("OH_RETRY_AFTER_SECONDS"))


class RedisSettings(BaseSettings):
    model_config = _config("OH_REDIS_")
    url: str = "redis://127.0.0.1:6379/0"
    # Every key this node writes starts with it, so nodes sharing one Redis never mix their
    # state. Empty: "oh:<node id>" with the node's id kept in <data_dir>/node-id.
    key_prefix: str = ""


class EventSettings(BaseSettings):
    model_config = _config("OH_")
    nats_url: str = "nats://127.0.0.1:4222"
    stream_name: str = "OH"
    stream_duplicate_window: float = 120.0
    relay_batch: int = 200
    relay_sweep_interval: float = 10.0
    consumer_batch: int = 50
    consumer_ack_wait: float = 30.0
    consumer_max_backoff: float = 60.0


class AuthSettings(BaseSettings):
    model_config = _config("OH_")
    # Bootstrap token for the registry API until the first global admin exists. Unset: refused.
    admin_token: SecretStr | None = None
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    signing_key_rotate_days: int = 30
    login_ttl: int = 600
    auth_code_ttl: int = 60
    idp_session_ttl: int = 3600
    # Rate limits, "<count>/<seconds>". Failed password attempts (built-in provider) count per
    # account and client IP; starting a login, redeeming its code and refreshing (or logging
    # out) count per client IP (per user with a token), each on its own, so a class of 40
    # signing in at once behind one address is not refused; the API counts per user.
    rate_limit_password: str = "10/300"  # noqa: S105 (a limit, not a password)
    rate_limit_login: str = "100/60"
    rate_limit_token: str = "100/60"  # noqa: S105
    rate_limit_refresh: str = "100/60"
    rate_limit_api: str = "600/60"

    @field_validator("admin_token", mode="before")
    @classmethod
    def _blank_token_is_none(cls, value: object) -> object:
        # An empty OH_ADMIN_TOKEN= (as in a copied .env.example) must not become a valid token.
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str) and len(value) < 16:
            raise ValueError("OH_ADMIN_TOKEN must be at least 16 characters")
        return value


class EvidenceSettings(BaseSettings):
    model_config = _config("OH_")
    # The node's IPFS RPC API (Kubo, or js-ipfs in development); never a public gateway.
    ipfs_url: str = "http://127.0.0.1:5001"
    # Seconds for one add, cat or pin; a CID the node lacks fails after this instead of hanging.
    ipfs_timeout: float = 10.0
    evidence_max_bytes: int = 25 * 1024 * 1024
    # Comma-separated MIME types accepted as evidence.
    evidence_types: str = "image/jpeg,image/png,image/webp,video/mp4,video/quicktime,video/webm"


class VerificationSettings(BaseSettings):
    model_config = _config("OH_VERIFICATION_")
    # Failed runs of one proof before it goes to people instead.
    max_attempts: int = 5
    # Proofs one worker verifies at once (IPFS reads and database round trips overlap the models).
    concurrency: int = 2


class LedgerSettings(BaseSettings):
    model_config = _config("OH_LEDGER_")
    # Seconds between signed checkpoints of every territory's ledger (oneheart worker); 0: none.
    checkpoint_interval: float = 300.0


class NotificationSettings(BaseSettings):
    """A live stream (SSE) sends a heartbeat comment this often, and ends after about an
    access token's life (the client reconnects with a fresh token and Last-Event-ID)."""

    model_config = _config("OH_NOTIFICATION_")
    heartbeat_seconds: float = 15.0
    stream_seconds: float = 900.0


class EconomySettings(BaseSettings):
    """Tokens, pools, leaderboards."""

    model_config = _config("OH_")
    # Most tokens one player may send another in one transfer.
    token_transfer_max: int = 1_000_000
    # Most tokens one sponsor contribution may add to a pool.
    pool_contribution_max: int = 1_000_000_000
    # Days a daily leaderboard, and weeks a weekly one, stay in Redis after its period ends.
    leaderboard_days_kept: int = 7
    leaderboard_weeks_kept: int = 5


class MatrixSettings(BaseSettings):
    """The Matrix gateway (`oneheart gateway`): where its application-service endpoint listens
    (each territory's homeserver pushes to <gateway>/territories/<code>), the time one call to a
    homeserver may take, and how long a link code (POST /api/social/link-code) stays valid."""

    model_config = _config("OH_MATRIX_")
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8009
    request_timeout: float = 10.0
    link_code_ttl: int = 900


def _vendor_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "web" / "node_modules"


class WebSettings(BaseSettings):
    """The player web app (``/app``): sessions, front-end libraries, the map."""

    model_config = _config("OH_WEB_")
    # Where `npm ci` put the front-end libraries (web/package-lock.json); the image sets it.
    vendor_dir: Path = Field(default_factory=_vendor_dir)
    # A signed-in browser: idle time before the session ends, and its longest life (then the
    # player signs in again). The session's cookie is Secure when public_url is https.
    session_idle: int = 12 * 3600
    session_max_age: int = 30 * 24 * 3600
    # Map tiles: an OpenStreetMap-style URL template ({z}/{x}/{y}); empty draws zones and
    # quests on a plain background and reaches no tile server (development, CI, offline).
    tile_url: str = ""
    tile_attribution: str = "© OpenStreetMap contributors"
    # The language when neither the profile nor Accept-Language names one of the catalogs.
    default_language: str = "en"
    # The time zone pages show times in (IANA name, e.g. Europe/Copenhagen).
    time_zone: str = "UTC"

    @field_validator("vendor_dir", mode="before")
    @classmethod
    def _blank_is_default(cls, value: object) -> object:
        # An empty OH_WEB_VENDOR_DIR= (as in a copied .env.example) means the repository's.
        return _vendor_dir() if value is None or (isinstance(value, str) and not value.strip()) else value


class Settings(BaseModel):
    data_dir: Path = Field(default_factory=_data_dir)
    http: HttpSettings = Field(default_factory=HttpSettings)  # type: ignore[arg-type]  # pydantic-settings' __init__ confuses the stub
    log: LogSettings = Field(default_factory=LogSettings)  # type: ignore[arg-type]  # pydantic-settings' __init__ confuses the stub
    registry: RegistrySettings = Field(default_factory=RegistrySettings)  # type: ignore[arg-type]  # pydantic-settings' __init__ confuses the stub
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)  # type: ignore[arg-type]  # pydantic-settings' __init__ confuses the stub
    redis: RedisSettings = Field(default_factory=RedisSettings)  # type: ignore[arg-type]  # pydantic-settings' __init__ confuses the stub
    events: EventSettings = Field(default_factory=EventSettings)  # type: ignore[arg-type]  # pydantic-settings' __init__ confuses the stub
    auth: AuthSettings = Field(default_factory=AuthSettings)  # type: ignore[arg-type]  # pydantic-settings' __init__ confuses the stub
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)  # type: ignore[arg-type]  # pydantic-settings' __init__ confuses the stub
    verification: VerificationSettings = Field(default_factory=VerificationSettings)  # type: ignore[arg-type]  # pydantic-settings' __init__ confuses the stub
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)  # type: ignore[arg-type]  # pydantic-settings' __init__ confuses the stub
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)  # type: ignore[arg-type]  # pydantic-settings' __init__ confuses the stub
    economy: EconomySettings = Field(default_factory=EconomySettings)  # type: ignore[arg-type]  # pydantic-settings' __init__ confuses the stub
    matrix: MatrixSettings = Field(default_factory=MatrixSettings)  # type: ignore[arg-type]  # pydantic-settings' __init__ confuses the stub
    web: WebSettings = Field(default_factory=WebSettings)  # type: ignore[arg-type]  # pydantic-settings' __init__ confuses the stub

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    def replace(self, **groups: dict[str, Any]) -> Settings:
        """A copy with some fields of some groups changed: ``replace(http={"port": 1})``."""
        update: dict[str, Any] = {}
        for name, changes in groups.items():
            current = getattr(self, name)
            update[name] = current.model_copy(update=changes) if isinstance(current, BaseModel) else changes
        return self.model_copy(update=update)


def groups() -> dict[str, type[BaseSettings]]:
    return {
        name: field.annotation  # type: ignore[misc]
        for name, field in Settings.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings)
    }


def env_names() -> dict[str, str]:
    """Every ``OH_*`` variable the node reads -> ``group.field``."""
    out = {"OH_DATA_DIR": "data_dir"}
    for group, cls in groups().items():
        prefix = cls.model_config.get("env_prefix", "")
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            env = alias.choices[0] if isinstance(alias, AliasChoices) else f"{prefix}{name}".upper()
            out[str(env).upper()] = f"{group}.{name}"
    return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
