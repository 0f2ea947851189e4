"""Away notices (外出报备, issue 19): an elder away until a planned return holds the home's behavioural alerts.

Revision ID: 0006_away_notices
Revises: 0005_checkins
Create Date: 2026-12-04 15:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_away_notices"
down_revision: str | None = "0005_checkins"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "away_notices",
        sa.Column("id", _ID, nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("starts_ms", sa.BigInteger(), nullable=False),
        sa.Column("ends_ms", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_by_name", sa.String(length=200), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("ended_ms", sa.BigInteger(), nullable=True),
        sa.Column("ended_by", sa.String(length=64), nullable=True),
        sa.Column("ended_by_name", sa.String(length=200), nullable=False),
        sa.Column("ended_reason", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_away_notices")),
    )
    op.create_index(op.f("ix_away_notices_site"), "away_notices", ["site"], unique=False)
    op.create_index(op.f("ix_away_notices_ends_ms"), "away_notices", ["ends_ms"], unique=False)


def downgrade() -> None:
    """Revert."""
    op.drop_index(op.f("ix_away_notices_ends_ms"), table_name="away_notices")
    op.drop_index(op.f("ix_away_notices_site"), table_name="away_notices")
    op.drop_table("away_notices")
