"""Accounts and clients of the built-in OIDC provider (``global`` schema); their queries are
in ``services.idp.service``. The tables are created by migration ``g0002_identity``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from core.db import global_metadata

idp_accounts = sa.Table(
    "idp_accounts",
    global_metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("username", sa.Text, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

idp_clients = sa.Table(
    "idp_clients",
    global_metadata,
    sa.Column("client_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    # NULL for public clients (native and single-page apps), which must use PKCE.
    sa.Column("secret_hash", sa.Text),
    sa.Column("redirect_uris", ARRAY(sa.Text), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
