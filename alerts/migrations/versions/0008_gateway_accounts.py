"""Gateway accounts: revoked home gateways and their key generations (``eldercare broker revoke``).

Revision ID: 0008_gateway_accounts
Revises: 0007_learned_profiles
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_gateway_accounts"
down_revision: str | None = "0007_learned_profiles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "gateway_accounts",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("changed_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_gateway_accounts")),
    )


def downgrade() -> None:
    """Revert."""
    op.drop_table("gateway_accounts")
