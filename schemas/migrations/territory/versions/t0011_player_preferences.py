"""Players choose their language and whether they appear on leaderboards.

Revision ID: t0011
"""

import sqlalchemy as sa
from alembic import op

revision = "t0011"
down_revision = "t0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("players", sa.Column("language", sa.Text))
    op.add_column("players", sa.Column("on_leaderboards", sa.Boolean, nullable=False, server_default=sa.true()))
    op.create_check_constraint("players_language", "players", "language ~ '^[a-z]{2,3}$'")
    # Leaderboards leave out the (few) players who opted out: found without a scan.
    op.create_index("players_off_leaderboards", "players", ["id"], postgresql_where=sa.text("NOT on_leaderboards"))


def downgrade() -> None:
    op.drop_index("players_off_leaderboards", "players")
    op.drop_constraint("players_language", "players")
    op.drop_column("players", "on_leaderboards")
    op.drop_column("players", "language")
