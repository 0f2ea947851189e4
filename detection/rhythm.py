"""Does a recording's clock match the time zone it is replayed in? The homes' own rhythm says.

Every time-of-day rule (night, "usually up by", blocks of the day) reads local time from ``tz_offset_s``. A
recording stamped in another zone (made abroad and converted with its local wall time, or in UTC) replayed at the
default UTC+8 sleeps at noon as far as the engine can tell, and every rule fires at the wrong hour: a not-up page
every morning, a night-door page every afternoon outing. People sleep at night, so the quietest six hours of a
home's events say where its night is. ``eldercare replay`` reports a home whose quietest hours are centred
implausibly far from the night (``MISALIGNED_H`` or more from 03:30) and the offset that would put them there.
This is a warning, never an automatic correction: measured on the real homes, the quietest six hours of a
resident who works (or spends every day at a day-care centre) are the hours away, not the night.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

HOURS: Final = 24
WINDOW_H: Final = 6
"""Hours in the sleep window searched for."""
QUIET_SHARE: Final = 0.25
"""The quietest window counts as a night only if it holds at most this share of an average six hours' events."""
MIN_EVENTS: Final = 20.0
AWAY_SHARE: Final = 0.3
"""A window in which the home is usually empty (this share of its hours or more) is not searched for the night."""
_HOUR_MS: Final = 3_600_000
SLEEP_CENTER_H: Final = 3.5
"""Where a night's sleep is centred, local hour (sleep midpoints of older adults: about 02:30-04:30)."""
MISALIGNED_H: Final = 5.0
"""Early and late sleepers (centres 22:30-08:30) are not reported; only a gross misalignment is."""


def _wrap(h: float) -> float:
    """Hours into [-12, 12)."""
    return (h + 12.0) % HOURS - 12.0


def sleep_center_h(hours: Sequence[float], away: Sequence[float] | None = None) -> float | None:
    """Centre (hour of the day, in the frame the counts were taken in) of the quietest six hours, or None.

    None when there is too little activity, or no window quiet enough to be a night's sleep.

    >>> counts = [0.0] * 24
    >>> for h in range(8, 23):
    ...     counts[h] = 10.0
    >>> sleep_center_h(counts)  # quiet 23:00-08:00
    3.5
    >>> sleep_center_h([5.0] * 24) is None  # no night
    True
    """
    total = float(sum(hours))
    if total < MIN_EVENTS:
        return None
    sums = [sum(hours[(i + k) % HOURS] for k in range(WINDOW_H)) for i in range(HOURS)]
    if away is not None:
        # Hours the resident is usually out (the last event before the silence was the entrance door) are
        # no night: a resident at work or at a day-care centre is quietest while away.
        out = [sum(away[(i + k) % HOURS] for k in range(WINDOW_H)) / WINDOW_H for i in range(HOURS)]
        sums = [x if o < AWAY_SHARE else math.inf for x, o in zip(sums, out, strict=True)]
    low = min(sums)
    if math.isinf(low):
        return None
    if low > QUIET_SHARE * total * WINDOW_H / HOURS:
        return None
    # Several windows equally quiet (a night longer than six hours): their circular mean start.
    ties = [i for i in range(HOURS) if sums[i] <= low + 1e-9]
    angle = math.atan2(
        sum(math.sin(2 * math.pi * i / HOURS) for i in ties), sum(math.cos(2 * math.pi * i / HOURS) for i in ties)
    )
    start = angle * HOURS / (2 * math.pi)
    return round((start + WINDOW_H / 2) % HOURS, 2)


def suggested_offset_h(hours: Sequence[float], offset_h: float, away: Sequence[float] | None = None) -> float | None:
    """The UTC offset that would centre this home's quietest hours at night, or None if ``offset_h`` looks right.

    ``hours`` are event counts by local hour as replayed at ``offset_h``.

    >>> utc_home = [0.0] * 24
    >>> for h in [*range(16, 24), *range(0, 8)]:  # awake 08:00-24:00 in UTC, replayed at UTC+8
    ...     utc_home[h] = 10.0
    >>> sleep_center_h(utc_home)  # asleep 00:00-08:00: noon as replayed
    12.0
    >>> suggested_offset_h(utc_home, 8.0)
    0.0
    >>> late = [10.0] * 24
    >>> for h in range(2, 10):  # a late sleeper, 02:00-10:00: left alone
    ...     late[h] = 0.0
    >>> suggested_offset_h(late, 8.0) is None
    True
    """
    center = sleep_center_h(hours, away)
    if center is None:
        return None
    d = _wrap(SLEEP_CENTER_H - center)
    if abs(d) < MISALIGNED_H:
        return None
    return float(_wrap(offset_h + round(d)))


class RhythmTally:
    """Per home, while a recording is replayed: events by local hour, and how often each hour is spent away.

    An interval of an hour or more that begins with the entrance door and ends with the next event is counted as
    away, spread over the hours it covers.
    """

    __slots__ = ("_away", "_first", "_last", "_last_door", "hours")

    def __init__(self) -> None:
        self.hours: dict[str, list[float]] = {}
        self._away: dict[str, list[float]] = {}
        self._first: dict[str, int] = {}
        self._last: dict[str, int] = {}
        self._last_door: dict[str, bool] = {}

    def add(self, site: str, local_ms: int, entrance_door: bool) -> None:
        """One device event of ``site`` at local time ``local_ms`` (epoch ms shifted by the replay's offset)."""
        h = self.hours.get(site)
        if h is None:
            h = self.hours[site] = [0.0] * HOURS
            self._away[site] = [0.0] * HOURS
            self._first[site] = local_ms
        else:
            last = self._last[site]
            if self._last_door[site] and local_ms - last >= _HOUR_MS:
                away = self._away[site]
                t = last
                end = min(local_ms, last + HOURS * _HOUR_MS)
                while t < end:
                    nxt = min(end, (t // _HOUR_MS + 1) * _HOUR_MS)
                    away[t // _HOUR_MS % HOURS] += (nxt - t) / _HOUR_MS
                    t = nxt
        h[local_ms // _HOUR_MS % HOURS] += 1.0
        self._last[site] = local_ms
        self._last_door[site] = entrance_door

    def away_share(self, site: str) -> list[float]:
        """Per local hour: the share of the recorded days this home spent that hour away."""
        days = max(1.0, (self._last[site] - self._first[site]) / (HOURS * _HOUR_MS))
        return [x / days for x in self._away[site]]

    def suggestions(self, offset_h: float) -> dict[str, float]:
        """Homes whose night looks misplaced at ``offset_h``, with the UTC offset that would fit them."""
        out = {}
        for site, hours in self.hours.items():
            s = suggested_offset_h(hours, offset_h, self.away_share(site))
            if s is not None:
                out[site] = s
        return out
