"""Shift handover notes and guardians (监护人) with recorded consent.

Revision ID: 0004_handover_guardians
Revises: 0001
Create Date: 2026-12-03 08:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_handover_guardians"
down_revision: str | None = "0002_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "handover_notes",
        sa.Column("id", _ID, nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("author_id", sa.String(length=64), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handover_notes")),
    )
    op.create_index(op.f("ix_handover_notes_time_ms"), "handover_notes", ["time_ms"], unique=False)
    op.create_index(op.f("ix_handover_notes_scope"), "handover_notes", ["scope"], unique=False)
    op.create_table(
        "guardians",
        sa.Column("id", _ID, nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("relation", sa.String(length=32), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.Column("consent_ms", sa.BigInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], name=op.f("fk_guardians_resident_id_residents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardians")),
    )
    op.create_index(op.f("ix_guardians_resident_id"), "guardians", ["resident_id"], unique=False)


def downgrade() -> None:
    """Revert."""
    op.drop_index(op.f("ix_guardians_resident_id"), table_name="guardians")
    op.drop_table("guardians")
    op.drop_index(op.f("ix_handover_notes_scope"), table_name="handover_notes")
    op.drop_index(op.f("ix_handover_notes_time_ms"), table_name="handover_notes")
    op.drop_table("handover_notes")
