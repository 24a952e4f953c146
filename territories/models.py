"""Registry tables in the ``global`` schema (on the registry's own server)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from core.db import global_metadata as metadata

db_servers = sa.Table(
    "db_servers",
    metadata,
    sa.Column("alias", sa.Text, primary_key=True),
    # libpq URL without its password: the password lives in the node's secrets, never here.
    sa.Column("dsn", sa.Text, nullable=False),
    sa.Column("region", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="active"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("status in ('active', 'draining', 'offline')", name="db_servers_status"),
)

territories = sa.Table(
    "territories",
    metadata,
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="provisioning"),
    sa.Column("server_alias", sa.Text, sa.ForeignKey("global.db_servers.alias"), nullable=False),
    sa.Column("schema_name", sa.Text, nullable=False, unique=True),
    sa.Column("residency_region", sa.Text, nullable=False),
    sa.Column("matrix_homeserver", sa.Text),
    sa.Column("settings", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("status in ('provisioning', 'active', 'suspended')", name="territories_status"),
    sa.CheckConstraint("code ~ '^[a-z][a-z0-9_]{1,30}$'", name="territories_code"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
)
