"""Identity: people (issuer + subject), roles, refresh tokens, territory identity providers,
the node's app clients, and the built-in OIDC provider's accounts and clients.

Revision ID: g0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "g0002"
down_revision = "g0001"
branch_labels = None
depends_on = None

ROLES = "'player', 'moderator', 'operator', 'sponsor', 'government', 'global_admin'"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("home_territory", sa.Text, sa.ForeignKey("territories.code"), nullable=False),
        sa.Column("display_name", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_login_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("issuer", "subject", name="users_identity"),
    )
    op.create_table(
        "role_assignments",
        sa.Column("user_id", UUID(as_uuid=True), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        # A territory code, or '*' for roles that are not about one territory (global_admin, sponsor).
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("role", sa.Text, primary_key=True),
        sa.Column("granted_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(f"role IN ({ROLES})", name="role_assignments_role"),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("family_id", UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("refresh_tokens_family", "refresh_tokens", ["family_id"])
    op.create_table(
        "identity_providers",
        sa.Column("territory", sa.Text, sa.ForeignKey("territories.code", ondelete="CASCADE"), primary_key=True),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("client_id", sa.Text, nullable=False),
        # Name of the secret (OH_IDP_SECRET_<REF> or the secrets file), never the secret itself.
        sa.Column("client_secret_ref", sa.Text),
        sa.Column("scopes", ARRAY(sa.Text), nullable=False, server_default=sa.text("ARRAY['openid','profile']")),
    )
    op.create_table(
        "app_clients",
        sa.Column("client_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("redirect_uris", ARRAY(sa.Text), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "idp_accounts",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("username", sa.Text, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("display_name", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("username ~ '^[a-z0-9][a-z0-9._-]{1,63}$'", name="idp_accounts_username"),
    )
    op.create_table(
        "idp_clients",
        sa.Column("client_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        # NULL for public clients (mobile, single-page apps): they must use PKCE.
        sa.Column("secret_hash", sa.Text),
        sa.Column("redirect_uris", ARRAY(sa.Text), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    for table in (
        "idp_clients",
        "idp_accounts",
        "app_clients",
        "identity_providers",
        "refresh_tokens",
        "role_assignments",
        "users",
    ):
        op.drop_table(table)
