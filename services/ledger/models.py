"""Ledger tables (created by territory migration t0006)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA

from core.db import territory_metadata

ledger_entries = sa.Table(
    "ledger_entries",
    territory_metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("debit", sa.Text, nullable=False),
    sa.Column("credit", sa.Text, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("xp", sa.BigInteger, nullable=False),
    sa.Column("ref_type", sa.Text),
    sa.Column("ref_id", sa.Text),
    sa.Column("memo", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("prev_hash", BYTEA, nullable=False),
    sa.Column("entry_hash", BYTEA, nullable=False),
    sa.Column("subtrees", ARRAY(BYTEA), nullable=False),
)

ledger_head = sa.Table(
    "ledger_head",
    territory_metadata,
    sa.Column("id", sa.Boolean, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", BYTEA, nullable=False),
    sa.Column("frontier", ARRAY(BYTEA), nullable=False),
)

balances = sa.Table(
    "balances",
    territory_metadata,
    sa.Column("account", sa.Text, primary_key=True),
    sa.Column("tokens", sa.BigInteger, nullable=False),
    sa.Column("xp", sa.BigInteger, nullable=False),
    sa.Column("updated_seq", sa.BigInteger, nullable=False),
)

ledger_checkpoints = sa.Table(
    "ledger_checkpoints",
    territory_metadata,
    sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root", BYTEA, nullable=False),
    sa.Column("signature", BYTEA, nullable=False),
    sa.Column("key_id", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
