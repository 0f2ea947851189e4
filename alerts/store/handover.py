"""Shift handover notes (交班记录): what one duty officer leaves for the next, kept in the alert database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from alerts.audit import Entity
from alerts.store.audit_log import By, add_audit
from alerts.store.tables import Base

if TYPE_CHECKING:
    from alerts.store.repository import AlertStore


class HandoverNoteRow(Base):
    """One handover note; ``scope`` is the hierarchy node of the officer who wrote it (who reads it next)."""

    __tablename__ = "handover_notes"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    time_ms: Mapped[int] = mapped_column(index=True)
    author_id: Mapped[str] = mapped_column(String(64))
    author_name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(64), index=True)
    text: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True, slots=True)
class HandoverNote:
    """A handover note as the console shows it."""

    id: int
    time_ms: int
    author_id: str
    author_name: str
    scope: str
    text: str


def _note(row: HandoverNoteRow) -> HandoverNote:
    return HandoverNote(row.id, row.time_ms, row.author_id, row.author_name, row.scope, row.text)


class HandoverStore:
    """Handover notes in the alert store's database (table created by migration ``0004_handover_guardians``)."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store

    def add(self, *, author_id: str, author_name: str, scope: str, text: str, now_ms: int) -> HandoverNote:
        """Save a note (audited as ``handover.noted``)."""
        with self.store._tx() as s:
            row = HandoverNoteRow(time_ms=now_ms, author_id=author_id, author_name=author_name, scope=scope, text=text)
            s.add(row)
            s.flush()
            add_audit(
                s,
                By(author_id, "console", now_ms),
                "handover.noted",
                Entity.WORKER,
                author_id,
                {"note": str(row.id)},
            )
            return _note(row)

    def recent(self, scopes: set[str] | None, *, since_ms: int, limit: int = 20) -> list[HandoverNote]:
        """Newest notes first, written since ``since_ms`` for one of ``scopes`` (None: every scope)."""
        stmt = select(HandoverNoteRow).where(HandoverNoteRow.time_ms >= since_ms)
        if scopes is not None:
            stmt = stmt.where(HandoverNoteRow.scope.in_(sorted(scopes)))
        stmt = stmt.order_by(HandoverNoteRow.time_ms.desc(), HandoverNoteRow.id.desc()).limit(limit)
        with self.store.read_session() as s:
            return [_note(r) for r in s.scalars(stmt)]
