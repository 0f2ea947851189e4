"""The alert store: one class over every aggregate (alerts, workers, residents, outbox, audit log).

Each aggregate lives in its own module (``alerts.py``, ``workers.py``, ``residents.py``, ``outbox.py``,
``audit_log.py``) on the shared engine and transaction helpers of ``session.py``; :class:`AlertStore` is what
callers hold. Every method is one transaction.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, inspect, select

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


class AlertStore(Alerts, Workers, Residents, Outbox):
    """Repository over the alert and registry tables; every method is one transaction."""

    def counts(self) -> dict[str, int]:
        """Row counts per table (operator overview, backups and tests).

        A store not migrated to the newest schema (a backup of it, a restore of an older one) counts the tables it has.
        """
        with self._read() as s:
            return table_counts(s.connection())
