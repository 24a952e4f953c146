"""People, roles, refresh tokens, territory identity providers and the node's app clients
(``global`` schema, migration g0002)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from core.db import global_metadata

ROLES = ("player", "moderator", "operator", "sponsor", "government", "global_admin")

users = sa.Table(
    "users",
    global_metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("issuer", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("home_territory", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("last_login_at", sa.DateTime(timezone=True)),
)

role_assignments = sa.Table(
    "role_assignments",
    global_metadata,
    sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("role", sa.Text, primary_key=True),
    sa.Column("granted_by", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    global_metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("family_id", UUID(as_uuid=True), nullable=False),
    sa.Column("user_id", UUID(as_uuid=True), nullable=False),
    sa.Column("client_id", sa.Text, nullable=False),
    sa.Column("token_hash", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("rotated_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

identity_providers = sa.Table(
    "identity_providers",
    global_metadata,
    sa.Column("territory", sa.Text, primary_key=True),
    sa.Column("issuer", sa.Text, nullable=False),
    sa.Column("client_id", sa.Text, nullable=False),
    sa.Column("client_secret_ref", sa.Text),
    sa.Column("scopes", ARRAY(sa.Text), nullable=False),
)

app_clients = sa.Table(
    "app_clients",
    global_metadata,
    sa.Column("client_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("redirect_uris", ARRAY(sa.Text), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)
