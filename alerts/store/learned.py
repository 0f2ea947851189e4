"""What the detection core learned about each home, saved for a console that runs without an engine.

The resident page shows what the core learned about a home, what is off and why (issue 19). A console in the same
process as the backend reads ``Engine.learned`` directly; the shipped systemd layout runs ``--role console`` as a
process of its own, which has no engine. The backend therefore saves each home's ``Engine.learned`` here (one row
per home, replaced when it changes, see :class:`alerts.learned.LearnedPublisher`) and such a console reads it,
with the time it was saved. One table, created by migration ``0007_learned_profiles``. The limits describe the
resident's routine (usually up by, usually home by), so they are personal data: an access request exports them
and the erasure of a home's last resident deletes them (:mod:`alerts.store.subject_requests`); reading them is
audited with the resident page that shows them. Writes are the backend's own and not audited.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from alerts.store.tables import Base

if TYPE_CHECKING:
    from alerts.store.repository import AlertStore

SAVED_KEY = "saved_ms"
"""The key :meth:`LearnedStore.load` adds: when the backend saved what it shows (epoch ms)."""


class LearnedRow(Base):
    """One home's ``Engine.learned`` as JSON."""

    __tablename__ = "learned_profiles"
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    saved_ms: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[str] = mapped_column(Text)


class LearnedStore:
    """Saved ``Engine.learned`` per home in the alert store's database."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store

    def save(self, rows: Iterable[tuple[str, dict[str, object]]], *, now_ms: int) -> int:
        """Insert or replace each ``(site, learned)`` in one transaction; returns how many were written."""
        n = 0
        with self.store._tx() as s:
            for site, learned in rows:
                body = json.dumps(learned, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
                row = s.get(LearnedRow, site)
                if row is None:
                    s.add(LearnedRow(site=site, saved_ms=now_ms, body=body))
                else:
                    row.saved_ms, row.body = now_ms, body
                n += 1
        return n

    def load(self, site: str) -> dict[str, object]:
        """A home's saved ``learned`` with :data:`SAVED_KEY` added; empty when the backend has not saved it yet."""
        with self.store.read_session() as s:
            row = s.execute(select(LearnedRow.saved_ms, LearnedRow.body).where(LearnedRow.site == site)).first()
        if row is None:
            return {}
        learned: dict[str, object] = json.loads(row.body)
        learned[SAVED_KEY] = int(row.saved_ms)
        return learned
