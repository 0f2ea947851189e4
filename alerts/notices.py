"""Away notices (外出报备) between the store and the detection engines, both ways.

The store is the truth: a worker registers a notice on the console (``alerts.store.away``), and every few seconds the
live backend (or each partition worker) hands the active ones to its engine
(:meth:`detection.engine.Engine.set_away_notices`), which then holds the home's behavioural pages while the home is
empty. When a home shows the elder back (more than a visit), the engine says so
(:meth:`~detection.engine.Engine.ended_notices`) and the notice is ended in the store as the system, audited, so the
console stops showing the elder as away.

Store calls block (SQLAlchemy), engine calls must stay on the event loop: :class:`NoticeSync` does the first in a
thread and the second on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from alerts.store.away import AwayStore
    from detection.engine import Engine

_LOG = logging.getLogger(__name__)

SYSTEM: Final = "system"
"""``by_id`` of a notice ended because the home showed the elder back."""


def _hhmm(t_ms: int, tz_offset_s: int) -> str:
    return time.strftime("%m-%d %H:%M", time.gmtime(t_ms / 1000 + tz_offset_s))


def back_reason(back_ms: int, *, tz_offset_s: int) -> str:
    """The reason recorded when the system ends a notice (both languages: the audit log is read in either).

    >>> back_reason(1_772_470_860_000, tz_offset_s=8 * 3600)
    '家中有人活动超过一次探访的时长，视为老人已回家（03-03 01:01）/ the home shows the elder back since 03-03 01:01'
    """
    at = _hhmm(back_ms, tz_offset_s)
    return f"家中有人活动超过一次探访的时长，视为老人已回家（{at}）/ the home shows the elder back since {at}"


class NoticeSync:
    """Keeps engines' away notices in step with the store (one per backend or partition worker)."""

    def __init__(self, store: AwayStore, *, clock: Callable[[], int]) -> None:
        self.store = store
        self.clock = clock
        self._held: dict[tuple[str, int], int] = {}

    async def sync(self, engines: Iterable[Engine]) -> int:
        """Hand the store's active notices to ``engines``; end in the store those a home showed over.

        Logs each home's newly held behavioural alerts (for the operator; the site id only). Returns how many notices
        were ended.
        """
        now = self.clock()
        active = await asyncio.to_thread(self.store.active, now)
        by_site = {n.site: (n.id, n.starts_ms, n.ends_ms) for n in active}
        ended: list[tuple[int, int, int]] = []
        held: dict[tuple[str, int], int] = {}
        for engine in engines:
            engine.set_away_notices(by_site)
            tz = engine.config.tz_offset_s
            ended += [(nid, back, tz) for _, nid, back in engine.ended_notices()]
            for site, nid, count in engine.held_by_notices():
                held[(site, nid)] = count
                if (site, nid) not in self._held:  # the home's engine has it now (a home is known once it reported)
                    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(by_site[site][2] / 1000))
                    _LOG.info("away notice %d of %s in force until %s", nid, site, until)
                if count > self._held.get((site, nid), 0):
                    _LOG.info("away notice %d of %s: %d behavioural alert(s) held so far", nid, site, count)
        self._held = held
        count_ended = 0
        for nid, back, tz in ended:
            reason = back_reason(back, tz_offset_s=tz)
            done = await asyncio.to_thread(self.store.end, nid, by_id=SYSTEM, by_name=SYSTEM, reason=reason, now_ms=now)
            if done is not None:
                _LOG.info("away notice %d of %s ended: the home shows the elder back", nid, done.site)
                count_ended += 1
        return count_ended
