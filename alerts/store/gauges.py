"""Cheap aggregate reads of the store for the Prometheus endpoint (alert counts, notification failures)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from alerts.store.tables import AlertRow, NotificationRow


def alert_counts(engine: Engine) -> dict[tuple[str, str], int]:
    """Number of alerts by ``(type, state)``."""
    with Session(engine) as s:
        rows = s.execute(select(AlertRow.type, AlertRow.state, func.count()).group_by(AlertRow.type, AlertRow.state))
        return {(t, st): int(n) for t, st, n in rows}


def notification_counts(engine: Engine) -> dict[str, int]:
    """Number of notifications by delivery status (``failed`` are the ones that never got through)."""
    with Session(engine) as s:
        rows = s.execute(select(NotificationRow.status, func.count()).group_by(NotificationRow.status))
        return {status: int(n) for status, n in rows}


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer ``SELECT 1``."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def other_sessions(engine: Engine) -> list[str]:
    """Other clients connected to this PostgreSQL database, as ``application_name@address`` (empty on SQLite).

    ``eldercare restore`` refuses to run while any is connected: a ``pg_restore --clean`` under a running console
    or backend drops their tables and sessions mid-request.
    """
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT coalesce(nullif(application_name, ''), 'unnamed'), coalesce(host(client_addr), 'local')"
                " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend'"
            )
        )
        return [f"{name}@{addr}" for name, addr in rows]
