"""Ledger: append-only hash-chained entries, balances, signed checkpoints (services/ledger).

The guard functions are created in the territory's schema (the rendered script runs with
``search_path`` set to it) and name no tables, so the same SQL works in every schema. Its
text avoids ``%`` and ``:`` (Alembic's offline rendering would treat them as parameters).

Revision ID: t0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA

revision = "t0006"
down_revision = "t0005"
branch_labels = None
depends_on = None

_NOW = sa.func.now()
_ZERO = "decode('0000000000000000000000000000000000000000000000000000000000000000', 'hex')"


def upgrade() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("debit", sa.Text, nullable=False),
        sa.Column("credit", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("xp", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("ref_type", sa.Text),
        sa.Column("ref_id", sa.Text),
        sa.Column("memo", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", BYTEA, nullable=False),
        sa.Column("entry_hash", BYTEA, nullable=False),
        # Complete Merkle subtrees this entry finished: element L is the level-L node ending here.
        sa.Column("subtrees", ARRAY(BYTEA), nullable=False, server_default="{}"),
        sa.CheckConstraint("seq >= 1", name="ledger_entries_seq"),
        sa.CheckConstraint("kind IN ('mint', 'transfer', 'burn', 'adjust')", name="ledger_entries_kind"),
        sa.CheckConstraint("amount >= 0 AND xp >= 0 AND amount + xp > 0", name="ledger_entries_amounts"),
        sa.CheckConstraint("debit <> credit", name="ledger_entries_accounts"),
        sa.CheckConstraint("length(prev_hash) = 32 AND length(entry_hash) = 32", name="ledger_entries_hashes"),
    )
    op.create_index("ledger_entries_debit", "ledger_entries", ["debit", "seq"])
    op.create_index("ledger_entries_credit", "ledger_entries", ["credit", "seq"])
    op.create_index(
        "ledger_entries_ref", "ledger_entries", ["ref_type", "ref_id"], postgresql_where=sa.text("ref_type IS NOT NULL")
    )

    # The chain's head: one row, locked by every append, so sequence numbers are gapless and
    # each entry links to the one before. Per schema, so territories never wait for each other.
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Boolean, primary_key=True, server_default=sa.true()),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", BYTEA, nullable=False),
        sa.Column("frontier", ARRAY(BYTEA), nullable=False),
        sa.CheckConstraint("id", name="ledger_head_one_row"),
    )
    op.execute(f"INSERT INTO ledger_head (id, seq, hash, frontier) VALUES (true, 0, {_ZERO}, '{{}}')")

    op.create_table(
        "balances",
        sa.Column("account", sa.Text, primary_key=True),
        sa.Column("tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("xp", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_seq", sa.BigInteger, nullable=False, server_default="0"),
        # Only the issuing account goes below zero.
        sa.CheckConstraint("(tokens >= 0 AND xp >= 0) OR account = 'mint'", name="balances_not_negative"),
    )
    op.execute("INSERT INTO balances (account, tokens, xp) VALUES ('mint', 0, 0), ('burn', 0, 0)")

    op.create_table(
        "ledger_checkpoints",
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root", BYTEA, nullable=False),
        sa.Column("signature", BYTEA, nullable=False),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint("tree_size >= 1", name="ledger_checkpoints_size"),
    )

    op.execute(
        """
        CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION USING
                ERRCODE = 'restrict_violation',
                MESSAGE = TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME || ' is append-only; ' || TG_OP || ' refused',
                HINT = 'Correct a ledger with a new adjust entry; entries and checkpoints never change.';
        END
        $$
        """
    )
    for table in ("ledger_entries", "ledger_checkpoints"):
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
        )


def downgrade() -> None:
    for table in ("ledger_checkpoints", "balances", "ledger_head", "ledger_entries"):
        op.drop_table(table)
    op.execute("DROP FUNCTION ledger_refuse_change()")
