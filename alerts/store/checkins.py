"""Check-ins before a page (issue 19): every prompt sent to a home, and its answer or page, kept for the console.

The detection core decides (``detection/detectors/checkin.py``); this table only records what it decided, so the
resident page can show a home's prompts and answers and the statistics can count them beside pages. One row per
step (``prompt``, ``answered``, ``paged``) of one prompt (``site`` + ``prompt_ms``): recording the same step twice
(a restart replays the readings after the snapshot) keeps one row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, mapped_column

from alerts.audit import AuditAction, Entity
from alerts.store.audit_log import By, add_audit
from alerts.store.tables import Base

if TYPE_CHECKING:
    from alerts.store.repository import AlertStore

STEPS = ("prompt", "answered", "paged")
"""What a row records: the prompt sent, the elder's answer ("elder fine"), or the page after help / no answer."""


class CheckInRow(Base):
    """One step of one check-in prompt."""

    __tablename__ = "checkins"
    __table_args__ = (UniqueConstraint("site", "prompt_ms", "what", name="uq_checkins_site_prompt_ms_what"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    time_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    prompt_ms: Mapped[int] = mapped_column(BigInteger)
    what: Mapped[str] = mapped_column(String(16))
    types: Mapped[str] = mapped_column(String(200))
    """Comma-separated alert types the prompt held (``inactivity,not_up``)."""
    detail: Mapped[str] = mapped_column(Text)
    """Prompt: the held alert's explanation; answered: the sign of activity; paged: ``help`` or ``none``."""


@dataclass(frozen=True, slots=True)
class CheckInStep:
    """One step of a check-in, as the console shows it (``prompt_id`` ties the steps of one prompt together)."""

    site: str
    time_ms: int
    prompt_ms: int
    what: str
    types: tuple[str, ...]
    detail: str

    @property
    def prompt_id(self) -> str:
        """The id sent in the downlink ``cmd: checkin`` (``{site}-{prompt_ms}``)."""
        return prompt_id(self.site, self.prompt_ms)


def prompt_id(site: str, prompt_ms: int) -> str:
    """The prompt's id on the wire and in the console.

    >>> prompt_id("h0001", 1767225600000)
    'h0001-1767225600000'
    """
    return f"{site}-{prompt_ms}"


def _step(row: CheckInRow) -> CheckInStep:
    types = tuple(t for t in row.types.split(",") if t)
    return CheckInStep(row.site, row.time_ms, row.prompt_ms, row.what, types, row.detail)


class CheckInStore:
    """Check-in steps in the alert store's database (table created by migration ``0005_checkins``)."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store

    def record(self, steps: Iterable[CheckInStep], *, now_ms: int) -> list[CheckInStep]:
        """Save new steps (one already recorded is skipped), each audited; returns the new ones, in order."""
        steps = list(steps)
        if not steps:
            return []
        added: list[CheckInStep] = []
        with self.store._tx() as s:
            for step in steps:
                exists = s.scalar(
                    select(CheckInRow.id).where(
                        CheckInRow.site == step.site,
                        CheckInRow.prompt_ms == step.prompt_ms,
                        CheckInRow.what == step.what,
                    )
                )
                if exists is not None:
                    continue
                s.add(
                    CheckInRow(
                        site=step.site,
                        time_ms=step.time_ms,
                        prompt_ms=step.prompt_ms,
                        what=step.what,
                        types=",".join(step.types)[:200],
                        detail=step.detail[:2000],
                    )
                )
                add_audit(
                    s,
                    By("system", "system", now_ms),
                    f"checkin.{step.what}",
                    Entity.SITE,
                    step.site,
                    {"prompt": step.prompt_id, "types": ",".join(step.types), "detail": step.detail[:200]},
                )
                added.append(step)
        return added

    def audit_command(self, step: CheckInStep, *, topic: str, error: str | None, now_ms: int) -> None:
        """Audit the downlink ``cmd: checkin`` sent (or failed) for a prompt."""
        with self.store._tx() as s:
            action = AuditAction.COMMAND_SENT if error is None else AuditAction.COMMAND_FAILED
            detail = {"topic": topic, "cmd": "checkin", "prompt": step.prompt_id}
            if error is not None:
                detail["error"] = error
            add_audit(s, By("system", "system", now_ms), action, Entity.SITE, step.site, detail)

    def for_site(self, site: str, *, limit: int = 50) -> list[CheckInStep]:
        """A home's check-in steps, newest first."""
        stmt = (
            select(CheckInRow)
            .where(CheckInRow.site == site)
            .order_by(CheckInRow.time_ms.desc(), CheckInRow.id.desc())
            .limit(limit)
        )
        with self.store.read_session() as s:
            return [_step(r) for r in s.scalars(stmt)]

    def counts(self, sites: Sequence[str] | None, *, since_ms: int, until_ms: int) -> dict[str, int]:
        """Steps per kind (``prompt``, ``answered``, ``paged``) in ``[since_ms, until_ms)`` of ``sites`` (None: all)."""
        stmt = (
            select(CheckInRow.what, func.count())
            .where(CheckInRow.time_ms >= since_ms, CheckInRow.time_ms < until_ms)
            .group_by(CheckInRow.what)
        )
        if sites is not None:
            stmt = stmt.where(CheckInRow.site.in_(sorted(set(sites))))
        with self.store.read_session() as s:
            found: Counter[str] = Counter({str(w): int(n) for w, n in s.execute(stmt).all()})
        return {w: found[w] for w in STEPS}
