"""Learned profiles (issue 19): each home's ``Engine.learned``, saved by the backend for a console without an engine.

Revision ID: 0007_learned_profiles
Revises: 0006_away_notices
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_learned_profiles"
down_revision: str | None = "0006_away_notices"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "learned_profiles",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("saved_ms", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_learned_profiles")),
    )


def downgrade() -> None:
    """Revert."""
    op.drop_table("learned_profiles")
