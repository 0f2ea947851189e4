"""Check-ins before a page (issue 19): prompts sent to homes, their answers and pages.

Revision ID: 0005_checkins
Revises: 0004_handover_guardians
Create Date: 2026-12-03 09:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_checkins"
down_revision: str | None = "0004_handover_guardians"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "checkins",
        sa.Column("id", _ID, nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("prompt_ms", sa.BigInteger(), nullable=False),
        sa.Column("what", sa.String(length=16), nullable=False),
        sa.Column("types", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkins")),
        sa.UniqueConstraint("site", "prompt_ms", "what", name="uq_checkins_site_prompt_ms_what"),
    )
    op.create_index(op.f("ix_checkins_site"), "checkins", ["site"], unique=False)
    op.create_index(op.f("ix_checkins_time_ms"), "checkins", ["time_ms"], unique=False)


def downgrade() -> None:
    """Revert."""
    op.drop_index(op.f("ix_checkins_time_ms"), table_name="checkins")
    op.drop_index(op.f("ix_checkins_site"), table_name="checkins")
    op.drop_table("checkins")
