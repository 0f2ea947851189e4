"""The alert store: one class over every aggregate (alerts, workers, residents, outbox, audit log).

Each aggregate lives in its own module (``alerts.py``, ``workers.py``, ``residents.py``, ``outbox.py``,
``audit_log.py``) on the shared engine and transaction helpers of ``session.py``; :class:`AlertStore` is what
callers hold. Every method is one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection, create_engine, func, inspect, select

from alerts.store import migrate as migrations
from alerts.store.alerts import Alerts
from alerts.store.outbox import Outbox
from alerts.store.residents import Residents
from alerts.store.session import SYSTEM
from alerts.store.tables import Base
from alerts.store.workers import Workers

__all__ = ["SYSTEM", "AlertStore"]


def table_counts(conn: Connection) -> dict[str, int]:
    """Row counts of every store table the database behind ``conn`` has, read in ``conn``'s transaction."""
    existing = set(inspect(conn).get_table_names())
    return {
        t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
        for t in Base.metadata.sorted_tables
        if t.name in existing
    }


def sqlite_copy_counts(copy: Path) -> tuple[dict[str, int], str | None]:
    """A SQLite copy's row counts and schema revision (None: never migrated), read without writing to it."""
    engine = create_engine(f"sqlite:///file:{copy}?mode=ro&immutable=1&uri=true")
    try:
        with engine.connect() as conn:
            return table_counts(conn), migrations.current_revision(conn)
    finally:
        engine.dispose()


class AlertStore(Alerts, Workers, Residents, Outbox):
    """Repository over the alert and registry tables; every method is one transaction."""

    def counts(self) -> dict[str, int]:
        """Row counts per table (operator overview, backups and tests).

        A store not migrated to the newest schema (a backup of it, a restore of an older one) counts the tables it has.
        """
        with self._read() as s:
            return table_counts(s.connection())

    def counted_snapshot(self, use: Callable[[str], None]) -> tuple[dict[str, int], str | None]:
        """Row counts and schema revision of one PostgreSQL snapshot, which ``use`` gets to read too.

        A repeatable-read transaction counts the rows and exports its snapshot (``pg_export_snapshot()``); ``use``
        runs while it stays open (``pg_dump --snapshot``), so what it reads is exactly what was counted.
        """
        with self.engine.connect() as plain:
            conn = plain.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
                counts, schema = table_counts(conn), migrations.current_revision(conn)
                use(snapshot)
        return counts, schema
