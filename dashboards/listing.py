"""Small pure helpers shared by the pages and the API: queue order, local months."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from alerts.views import AlertView
from detection.models import Severity

TZ = ZoneInfo("Asia/Shanghai")
_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


def queue_order(alerts: Iterable[AlertView]) -> list[AlertView]:
    """Most severe first; within a severity, the one waiting longest first."""
    return sorted(alerts, key=lambda a: (_RANK.get(a.severity, 9), a.raised_ms, a.id))


def month_window(month: str | None, now_ms: int) -> tuple[str, int, int]:
    """``(YYYY-MM, start_ms, end_ms)`` of a local (Asia/Shanghai) calendar month; the current one by default.

    >>> month_window("2026-02", 0)[0]
    '2026-02'
    """
    if month:
        year, mon = (int(x) for x in month.split("-"))
    else:
        local = dt.datetime.fromtimestamp(now_ms / 1000, tz=TZ)
        year, mon = local.year, local.month
    start = dt.datetime(year, mon, 1, tzinfo=TZ)
    end = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=TZ)
    return f"{year:04d}-{mon:02d}", int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def local_time(time_ms: int | None, fmt: str = "%m-%d %H:%M") -> str:
    """Local wall-clock text of an epoch-ms time ('' for None)."""
    if time_ms is None:
        return ""
    return dt.datetime.fromtimestamp(time_ms / 1000, tz=TZ).strftime(fmt)
