"""Away notices (外出报备): a worker records that an elder is away (at family, in hospital) until a planned return.

While a notice is active (``starts_ms <= now < ends_ms`` and not ended) the backend holds the home's behavioural
alerts (never life-safety ones); a worker, or the backend itself (``by_id="system"``) when the home shows the elder
back, ends a notice early. One table, created by migration ``0006_away_notices``; every write is audited.

A new notice that overlaps an active or planned notice of the same home is refused, not merged or replaced: the
worker who registers it may not know of the other (registered by a colleague, with its own reason and return), and
silently replacing it would lose that record. The console shows the notice in force with its "back home" button,
so the worker ends it first and registers anew, and both steps are in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from sqlalchemy import BigInteger, Integer, String, and_, select, update
from sqlalchemy.orm import Mapped, mapped_column

from alerts.audit import Entity
from alerts.privacy import mask_numbers_in_text
from alerts.store.audit_log import By, add_audit
from alerts.store.errors import AwayNoticeError
from alerts.store.tables import Base, Site

if TYPE_CHECKING:
    from alerts.store.repository import AlertStore

__all__ = ["MAX_AHEAD_MS", "MAX_BACK_MS", "MAX_REASON", "AwayNotice", "AwayNoticeError", "AwayStore"]

_DAY_MS: Final = 86_400_000
MAX_AHEAD_MS: Final = 90 * _DAY_MS
"""The planned return is at most 90 days from now (a longer stay is a registry change, not a notice)."""
MAX_BACK_MS: Final = _DAY_MS
"""A notice may start up to one day in the past (the worker learns of yesterday's departure today)."""
MAX_REASON: Final = 200
SYSTEM_ACTOR: Final = "system"


class AwayNoticeRow(Base):
    """One away notice of one home."""

    __tablename__ = "away_notices"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    starts_ms: Mapped[int] = mapped_column(BigInteger)
    ends_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    reason: Mapped[str] = mapped_column(String(MAX_REASON))
    created_by: Mapped[str] = mapped_column(String(64))
    created_by_name: Mapped[str] = mapped_column(String(200))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    ended_ms: Mapped[int | None] = mapped_column(BigInteger)
    ended_by: Mapped[str | None] = mapped_column(String(64))
    ended_by_name: Mapped[str] = mapped_column(String(200), default="")
    ended_reason: Mapped[str] = mapped_column(String(MAX_REASON), default="")


@dataclass(frozen=True, slots=True)
class AwayNotice:
    """An away notice as the backend and the console read it."""

    id: int
    site: str
    starts_ms: int
    ends_ms: int
    """Planned return."""
    reason: str
    created_by: str
    """Account id of who registered it."""
    created_ms: int
    ended_ms: int | None
    """Set when ended early (by a worker, or by the system when the home shows the elder back)."""
    ended_by: str | None
    """Account id, or ``"system"``."""
    ended_reason: str
    created_by_name: str = ""
    ended_by_name: str = ""

    def active_at(self, now_ms: int) -> bool:
        """True while the notice holds the home's behavioural alerts.

        >>> n = AwayNotice(1, "h1", 10, 20, "r", "W01", 5, None, None, "")
        >>> n.active_at(9), n.active_at(10), n.active_at(20)
        (False, True, False)
        """
        return self.ended_ms is None and self.starts_ms <= now_ms < self.ends_ms


def _notice(row: AwayNoticeRow) -> AwayNotice:
    return AwayNotice(
        id=row.id,
        site=row.site,
        starts_ms=row.starts_ms,
        ends_ms=row.ends_ms,
        reason=row.reason,
        created_by=row.created_by,
        created_ms=row.created_ms,
        ended_ms=row.ended_ms,
        ended_by=row.ended_by,
        ended_reason=row.ended_reason or "",
        created_by_name=row.created_by_name,
        ended_by_name=row.ended_by_name or "",
    )


def _channel(by_id: str) -> str:
    return "system" if by_id == SYSTEM_ACTOR else "console"


class AwayStore:
    """Away notices in the alert store's database; reads are scope-free (callers check the home is in scope)."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store

    def register(
        self,
        *,
        site: str,
        starts_ms: int,
        ends_ms: int,
        reason: str,
        by_id: str,
        by_name: str,
        now_ms: int,
        channel: str | None = None,
    ) -> AwayNotice:
        """Record an away notice (audited as ``away.registered``); :class:`AwayNoticeError` if refused."""
        reason = reason.strip()
        self._check(site, starts_ms, ends_ms, reason, now_ms)
        with self.store._tx() as s:
            # Locks the home's row on PostgreSQL, so two workers registering at once see each other's notice
            # (on SQLite every write transaction already holds the database's write lock).
            if s.scalar(select(Site.id).where(Site.id == site).with_for_update()) is None:
                raise AwayNoticeError("unknown_site", "未登记的住户 / no such home in the registry", site=site)
            other = s.scalar(
                select(AwayNoticeRow.id)
                .where(
                    AwayNoticeRow.site == site,
                    AwayNoticeRow.ended_ms.is_(None),
                    AwayNoticeRow.ends_ms > max(now_ms, starts_ms),
                    AwayNoticeRow.starts_ms < ends_ms,
                )
                .order_by(AwayNoticeRow.starts_ms)
                .limit(1)
            )
            if other is not None:
                raise AwayNoticeError(
                    "overlap",
                    f"与外出报备 #{other} 时间重叠，请先结束它 / overlaps away notice #{other}: end it first",
                    site=site,
                    other=other,
                )
            row = AwayNoticeRow(
                site=site,
                starts_ms=starts_ms,
                ends_ms=ends_ms,
                reason=reason,
                created_by=by_id[:64],
                created_by_name=by_name[:200],
                created_ms=now_ms,
                ended_ms=None,
                ended_by=None,
                ended_by_name="",
                ended_reason="",
            )
            s.add(row)
            s.flush()
            detail = {
                "notice": row.id, "starts_ms": starts_ms, "ends_ms": ends_ms, "reason": mask_numbers_in_text(reason),
            }  # fmt: skip
            add_audit(s, By(by_id, channel or _channel(by_id), now_ms), "away.registered", Entity.SITE, site, detail)
            return _notice(row)

    @staticmethod
    def _check(site: str, starts_ms: int, ends_ms: int, reason: str, now_ms: int) -> None:
        def refuse(code: str, message: str) -> AwayNoticeError:
            return AwayNoticeError(code, message, site=site)

        if ends_ms <= starts_ms:
            raise refuse("ends_before_starts", "返回时间须晚于外出时间 / the return must be after the start")
        if starts_ms < now_ms - MAX_BACK_MS:
            raise refuse("starts_past", "外出时间最多可提前 1 天 / the start may be at most 1 day in the past")
        if ends_ms <= now_ms:
            raise refuse("ends_past", "返回时间已过 / the return is already past")
        if ends_ms > now_ms + MAX_AHEAD_MS:
            raise refuse("too_long", "返回时间须在 90 天内 / the return must be within 90 days")
        if not reason or len(reason) > MAX_REASON:
            raise refuse(
                "reason", f"请填写原因（最多 {MAX_REASON} 字）/ give a reason (at most {MAX_REASON} characters)"
            )

    def end(
        self,
        notice_id: int,
        *,
        by_id: str,
        by_name: str,
        reason: str,
        now_ms: int,
        channel: str | None = None,
    ) -> AwayNotice | None:
        """End a notice now (audited as ``away.ended``); None if unknown, already ended or past its planned return.

        A notice not yet started is ended too (cancelled). ``by_id="system"``: the backend saw the elder back.
        Two enders at once (the backend and a worker): one conditional update wins, the other gets None.
        """
        reason = reason.strip()[:MAX_REASON]
        with self.store._tx() as s:
            done = s.execute(
                update(AwayNoticeRow)
                .where(
                    AwayNoticeRow.id == notice_id,
                    AwayNoticeRow.ended_ms.is_(None),
                    AwayNoticeRow.ends_ms > now_ms,
                )
                .values(ended_ms=now_ms, ended_by=by_id[:64], ended_by_name=by_name[:200], ended_reason=reason)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = s.get_one(AwayNoticeRow, notice_id, populate_existing=True)
            detail = {"notice": row.id, "ends_ms": row.ends_ms, "reason": mask_numbers_in_text(reason)}
            add_audit(s, By(by_id, channel or _channel(by_id), now_ms), "away.ended", Entity.SITE, row.site, detail)
            return _notice(row)

    def active(self, now_ms: int) -> list[AwayNotice]:
        """Notices in force at ``now_ms`` (started, not ended, before the planned return), every home; one query."""
        stmt = select(AwayNoticeRow).where(
            and_(
                AwayNoticeRow.ended_ms.is_(None),
                AwayNoticeRow.ends_ms > now_ms,
                AwayNoticeRow.starts_ms <= now_ms,
            )
        )
        with self.store.read_session() as s:
            return [_notice(r) for r in s.scalars(stmt.order_by(AwayNoticeRow.site, AwayNoticeRow.id))]

    def of_site(self, site: str, *, limit: int = 10) -> list[AwayNotice]:
        """A home's notices, newest first (by when they were registered)."""
        stmt = (
            select(AwayNoticeRow)
            .where(AwayNoticeRow.site == site)
            .order_by(AwayNoticeRow.created_ms.desc(), AwayNoticeRow.id.desc())
            .limit(limit)
        )
        with self.store.read_session() as s:
            return [_notice(r) for r in s.scalars(stmt)]

    def get(self, notice_id: int) -> AwayNotice | None:
        """One notice by id (the caller checks its home is in scope)."""
        with self.store.read_session() as s:
            row = s.get(AwayNoticeRow, notice_id)
            return _notice(row) if row is not None else None
