"""Notification outbox: the sender of a row in flight (``sending``), so its restart sends what it left unsent.

Revision ID: 0009_notification_sender
Revises: 0008_gateway_accounts
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_notification_sender"
down_revision: str | None = "0008_gateway_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("sender", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("sender")
