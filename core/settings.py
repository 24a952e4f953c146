"""Node settings, read from the environment (prefix ``OH_``), ``.env`` and the stack file.

``oneheart stack up`` writes ``<data_dir>/stack.env`` with the addresses it started or found;
real environment variables always win over both files.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _data_dir() -> Path:
    return Path(os.environ.get("OH_DATA_DIR", ".data")).resolve()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OH_",
        env_file=(".env", str(_data_dir() / "stack.env")),
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=_data_dir)

    # The registry's own database (the `global` schema lives here).
    registry_dsn: str = "postgresql://postgres@127.0.0.1:5432/oneheart"
    nats_url: str = "nats://127.0.0.1:4222"
    redis_url: str = "redis://127.0.0.1:6379/0"

    # Global admin token for the registry API until OIDC roles land. Unset: the API refuses all.
    admin_token: SecretStr | None = None

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    access_log: bool = True
    log_level: str = "INFO"
    log_json: bool = True

    # Database pools: one per database server.
    # A fixed pool per server: overflow connections are closed on return, which under sustained
    # load means a new connection (and TLS attempt) per request. Requests beyond it queue.
    db_pool_size: int = 20
    db_max_overflow: int = 0
    db_connect_timeout: float = 3.0
    db_statement_timeout_ms: int = 15000
    # Set when a server sits behind a transaction-mode pooler (PgBouncer): no prepared statements.
    db_behind_pooler: bool = False
    # Prepared statements kept per connection; the SQL names the schema, so hot territories x queries.
    db_statement_cache: int = 500
    retry_after_seconds: int = 5

    registry_cache_ttl: float = 30.0

    # Events.
    stream_name: str = "OH"
    stream_duplicate_window: float = 120.0
    relay_batch: int = 200
    relay_sweep_interval: float = 10.0
    consumer_batch: int = 50
    consumer_ack_wait: float = 30.0
    consumer_max_backoff: float = 60.0

    # Identity. The node's public base URL: issuer of its tokens and of the built-in OIDC provider
    # (at <public_url>/oidc), and where identity providers send players back (/api/auth/callback).
    public_url: str = "http://127.0.0.1:8000"
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    signing_key_rotate_days: int = 30
    login_ttl: int = 600
    auth_code_ttl: int = 60
    idp_session_ttl: int = 3600
    # Rate limits, "<count>/<seconds>" per route group and caller (user id, else client IP).
    rate_limit_login: str = "30/60"
    rate_limit_api: str = "600/60"

    # Evidence (IPFS). The node's RPC API (Kubo, or js-ipfs in development); never a public gateway.
    ipfs_url: str = "http://127.0.0.1:5001"
    # Seconds for one add, cat or pin; a CID the node lacks fails after this instead of hanging.
    ipfs_timeout: float = 10.0
    evidence_max_bytes: int = 25 * 1024 * 1024
    # Comma-separated MIME types accepted as evidence.
    evidence_types: str = "image/jpeg,image/png,image/webp,video/mp4,video/quicktime,video/webm"

    # Verification worker: failed runs of one proof before it goes to people instead.
    verification_max_attempts: int = 5
    # Proofs one worker verifies at once (IPFS reads and database round trips overlap the models).
    verification_concurrency: int = 2

    # Limits.
    page_size_default: int = 50
    page_size_max: int = 200
    request_max_body: int = 1_048_576
    migrate_concurrency: int = 8

    # Ledger.
    # Seconds between signed checkpoints of every territory's ledger (oneheart worker); 0: none.
    ledger_checkpoint_interval: float = 300.0

    # Notifications: a live stream (SSE) sends a heartbeat comment this often, and ends after
    # about an access token's life (the client reconnects with a fresh token and Last-Event-ID).
    notification_heartbeat_seconds: float = 15.0
    notification_stream_seconds: float = 900.0

    # Tokens, pools, rewards, leaderboards.
    # Most tokens one player may send another in one transfer.
    token_transfer_max: int = 1_000_000
    # Most tokens one sponsor contribution may add to a pool.
    pool_contribution_max: int = 1_000_000_000
    # Days a daily leaderboard, and weeks a weekly one, stay in Redis after its period ends.
    leaderboard_days_kept: int = 7
    leaderboard_weeks_kept: int = 5

    # Matrix gateway (`oneheart gateway`): where its application-service endpoint listens (each
    # territory's homeserver pushes to <gateway>/territories/<code>), the time one call to a
    # homeserver may take, and how long a link code (POST /api/social/link-code) stays valid.
    matrix_gateway_host: str = "127.0.0.1"
    matrix_gateway_port: int = 8009
    matrix_request_timeout: float = 10.0
    matrix_link_code_ttl: int = 900

    @field_validator("admin_token", mode="before")
    @classmethod
    def _blank_token_is_none(cls, value: object) -> object:
        # An empty OH_ADMIN_TOKEN= (as in a copied .env.example) must not become a valid token.
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str) and len(value) < 16:
            raise ValueError("OH_ADMIN_TOKEN must be at least 16 characters")
        return value

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
