"""Zones: named circles (centre + radius) that quests and rooms belong to.

Revision ID: t0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "t0002"
down_revision = "t0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "zones",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lng", sa.Float, nullable=False),
        sa.Column("radius_m", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("lat BETWEEN -90 AND 90", name="zones_lat"),
        sa.CheckConstraint("lng BETWEEN -180 AND 180", name="zones_lng"),
        sa.CheckConstraint("radius_m > 0 AND radius_m <= 100000", name="zones_radius"),
        sa.CheckConstraint("length(name) BETWEEN 1 AND 120", name="zones_name"),
    )
    op.create_index("zones_created", "zones", ["created_at", "id"])


def downgrade() -> None:
    op.drop_table("zones")
