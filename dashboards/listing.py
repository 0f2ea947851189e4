"""Small pure helpers shared by the pages and the API: queue order, waiting times, local months."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from alerts.lifecycle import State
from alerts.views import AlertView
from detection.models import Severity

TZ = ZoneInfo("Asia/Shanghai")
_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


def queue_order(alerts: Iterable[AlertView]) -> list[AlertView]:
    """The one queue order of the console, the phone list and the API.

    Unacknowledged (open) alerts first; then life-safety, then by severity; then the one waiting longest first,
    so an old open SOS never sinks below newer ones; handled alerts after, in the same order.
    """
    return sorted(
        alerts,
        key=lambda a: (a.state is not State.OPEN, not a.life_safety, _RANK.get(a.severity, 9), a.raised_ms, a.id),
    )


def waited_ms(alert: AlertView) -> int | None:
    """How long the alert waited for someone to take it on; ``None`` while it is still open (its clock ticks).

    Until acknowledged, or until closed when it was closed without an acknowledgement.
    """
    if alert.state is State.OPEN:
        return None
    left_open = next((e.time_ms for e in alert.events if e.state != State.OPEN.value), None)
    end = alert.acked_ms or left_open or alert.resolved_ms or alert.raised_ms
    return max(0, end - alert.raised_ms)


def clock_text(ms: int) -> str:
    """``mm:ss`` or ``h:mm:ss``, as the ticking clocks of the pages show it (the templates' ``clock_text``).

    >>> clock_text(42_000), clock_text(3_725_000)
    ('00:42', '1:02:05')
    """
    s = max(0, ms // 1000)
    h, m, sec = s // 3600, s % 3600 // 60, s % 60
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


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


def future_month(month: str, now_ms: int) -> bool:
    """Whether the local calendar month ``YYYY-MM`` begins after ``now_ms``: nothing can have happened in it yet.

    >>> march = month_window("2026-03", 0)[1]
    >>> future_month("2026-04", march), future_month("2026-03", march), future_month("2026-02", march)
    (True, False, False)
    """
    return month_window(month, now_ms)[1] > now_ms


def local_time(time_ms: int | None, fmt: str = "%m-%d %H:%M") -> str:
    """Local wall-clock text of an epoch-ms time ('' for None)."""
    if time_ms is None:
        return ""
    return dt.datetime.fromtimestamp(time_ms / 1000, tz=TZ).strftime(fmt)
