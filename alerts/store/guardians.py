"""Guardians (监护人 / 子女) of a resident who agreed to be told about life-safety alerts (alert database)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from alerts.audit import Entity
from alerts.store.audit_log import By, add_audit
from alerts.store.errors import RecordNotFound
from alerts.store.tables import Base, Resident

if TYPE_CHECKING:
    from alerts.store.repository import AlertStore


class GuardianRow(Base):
    """A family member with apprise ``channels``; nothing is sent unless ``consent`` was recorded."""

    __tablename__ = "guardians"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    relation: Mapped[str] = mapped_column(String(32))
    phone: Mapped[str | None] = mapped_column(String(32))
    channels: Mapped[list[Any]] = mapped_column(default=list)
    lang: Mapped[str] = mapped_column(String(8), default="zh")
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_ms: Mapped[int | None]
    """When the consent was recorded (None: never given, or withdrawn)."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)


@dataclass(frozen=True, slots=True)
class Guardian:
    """A guardian as the notifier and the status page see them."""

    id: int
    resident_id: str
    name: str
    relation: str
    phone: str
    channels: tuple[str, ...]
    lang: str
    consent: bool
    consent_ms: int | None
    active: bool = True


def _guardian(r: GuardianRow) -> Guardian:
    return Guardian(
        r.id, r.resident_id, r.name, r.relation, r.phone or "", tuple(r.channels or ()), r.lang, r.consent,
        r.consent_ms, r.active,
    )  # fmt: skip


class GuardianStore:
    """Guardians in the alert store's database (table created by migration ``0004_handover_guardians``)."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store

    def add(
        self,
        *,
        resident_id: str,
        name: str,
        relation: str,
        phone: str,
        channels: Sequence[str],
        consent: bool,
        actor: str,
        now_ms: int,
        lang: str = "zh",
    ) -> Guardian:
        """Register a guardian (consent recorded now if given); audited as ``guardian.added``."""
        with self.store._tx() as s:
            if s.get(Resident, resident_id) is None:
                raise RecordNotFound("resident", resident_id)
            row = GuardianRow(
                resident_id=resident_id, name=name, relation=relation, phone=phone, channels=list(channels),
                lang=lang, consent=consent, consent_ms=now_ms if consent else None, active=True,
            )  # fmt: skip
            s.add(row)
            s.flush()
            add_audit(
                s, By(actor, "console", now_ms), "guardian.added", Entity.RESIDENT,
                resident_id, {"guardian": str(row.id), "consent": str(consent).lower()},
            )  # fmt: skip
            return _guardian(row)

    def set_consent(self, guardian_id: int, consent: bool, *, actor: str, now_ms: int) -> Guardian:
        """Record or withdraw consent; audited as ``guardian.consent``."""
        with self.store._tx() as s:
            row = s.get(GuardianRow, guardian_id)
            if row is None:
                raise RecordNotFound("guardian", str(guardian_id))
            row.consent = consent
            row.consent_ms = now_ms if consent else None
            add_audit(
                s, By(actor, "console", now_ms), "guardian.consent", Entity.RESIDENT,
                row.resident_id, {"guardian": str(guardian_id), "consent": str(consent).lower()},
            )  # fmt: skip
            return _guardian(row)

    def get(self, guardian_id: int) -> Guardian | None:
        """One guardian, or None."""
        with self.store.read_session() as s:
            row = s.get(GuardianRow, guardian_id)
            return _guardian(row) if row is not None else None

    def for_resident(self, resident_id: str) -> list[Guardian]:
        """Every guardian of a resident (with or without consent)."""
        with self.store.read_session() as s:
            rows = s.scalars(select(GuardianRow).where(GuardianRow.resident_id == resident_id).order_by(GuardianRow.id))
            return [_guardian(r) for r in rows]

    def to_notify(self, site: str) -> list[Guardian]:
        """Active guardians with recorded consent of the residents living at ``site``."""
        stmt = (
            select(GuardianRow)
            .join(Resident, Resident.id == GuardianRow.resident_id)
            .where(Resident.site_id == site, GuardianRow.consent.is_(True), GuardianRow.active.is_(True))
            .order_by(GuardianRow.id)
        )
        with self.store.read_session() as s:
            return [_guardian(r) for r in s.scalars(stmt)]
