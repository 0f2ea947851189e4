"""The alert store: one class over every aggregate (alerts, workers, residents, outbox, audit log).

Each aggregate lives in its own module (``alerts.py``, ``workers.py``, ``residents.py``, ``outbox.py``,
``audit_log.py``) on the shared engine and transaction helpers of ``session.py``; :class:`AlertStore` is what
callers hold. Every method is one transaction.
"""

from __future__ import annotations

from sqlalchemy import func, inspect, select

from alerts.store.alerts import Alerts
from alerts.store.outbox import Outbox
from alerts.store.residents import Residents
from alerts.store.session import SYSTEM
from alerts.store.tables import Base
from alerts.store.workers import Workers

__all__ = ["SYSTEM", "AlertStore"]


class AlertStore(Alerts, Workers, Residents, Outbox):
    """Repository over the alert and registry tables; every method is one transaction."""

    def counts(self) -> dict[str, int]:
        """Row counts per table (operator overview, backups and tests).

        A store not migrated to the newest schema (a backup of it, a restore of an older one) counts the tables it has.
        """
        existing = set(inspect(self.engine).get_table_names())
        with self._read() as s:
            return {
                t.name: int(s.execute(select(func.count()).select_from(t)).scalar_one())
                for t in Base.metadata.sorted_tables
                if t.name in existing
            }
