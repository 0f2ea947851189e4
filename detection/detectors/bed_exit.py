"""Night bed exit without return: out of bed between 22:00 and 06:00 and not back within a personal limit.

The clock starts at the exit; movement elsewhere in the home restarts it (an elder up and about at 05:30 is
getting up, not lying on the bathroom floor), so the alert means "out of bed at night, not back, and still for
the limit". Once the night window is over and the elder has moved, the day has begun and inactivity takes over.
"""

from __future__ import annotations

from typing import ClassVar

from detection.baseline import Baseline, hhmm
from detection.detectors.base import MIN_MS, Context, Detector, fmt_min, fmt_min_zh
from detection.models import AlertType, Severity
from detection.presence import BED_ENTER, BED_EXIT
from detection.state import NEVER, HomeState
from gateway.models import DeviceKind, MessageType, Reading

KEY = "bed_exit"


def limit_source(b: Baseline) -> tuple[str, str]:
    """Where the limit comes from, in English and Chinese."""
    if b.personal and b.longest_night_exit_min is not None:
        return (
            f"personal limit from {b.n_days} nights (longest normal night exit {b.longest_night_exit_min:.0f} min,"
            " clipped to 30–45 min)",
            f"个人阈值，基于 {b.n_days} 晚数据"
            f"（以往最长夜间离床 {b.longest_night_exit_min:.0f} 分钟，限定在30–45分钟）",
        )
    return "population default (field practice 30–45 min)", "人群默认值（行业惯例30–45分钟）"


class BedExitDetector(Detector):
    """NIGHT_BED_EXIT at exit + limit if the elder has not returned to bed; the return clears it."""

    name: ClassVar[str] = "bed_exit"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset(
        {(DeviceKind.MATTRESS, MessageType.EVENT), (DeviceKind.MATTRESS, MessageType.TELEMETRY)}
    )
    only_on_flags: ClassVar[bool] = True
    timer_names: ClassVar[tuple[str, ...]] = ("bed_exit",)

    def score_one(self, ctx: Context, home: HomeState, now_ms: int) -> float:
        """Time out of bed over the personal limit (≥ 1: anomalous); 0 when no night exit is running."""
        if home.night_exit_ms == NEVER:
            return 0.0
        return (now_ms - home.night_exit_ms) / (home.baseline.bed_exit_limit_min * MIN_MS)

    def _is_getting_up(self, ctx: Context, home: HomeState, t: int) -> bool:
        b = home.baseline
        if b.wake_p50_min is None:
            return False
        m = ctx.local_min(t)
        return b.wake_p50_min - 30 <= m < ctx.config.day_boundary_min

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Start the clock on a night exit; stop it (and learn the duration) on the return."""
        if flags & BED_EXIT:
            if ctx.is_night(t) and not self._is_getting_up(ctx, home, t):
                home.night_exit_ms = t
                ctx.schedule(home, "bed_exit", t + int(home.baseline.bed_exit_limit_min * MIN_MS))
        elif flags & BED_ENTER and home.night_exit_ms != NEVER:
            start = home.night_exit_ms
            home.night_exit_ms = NEVER
            ctx.cancel(home, "bed_exit")
            dur_min = (t - start) / MIN_MS
            if KEY in home.open:
                ctx.clear(
                    home,
                    KEY,
                    AlertType.NIGHT_BED_EXIT,
                    t,
                    f"Back in bed after {fmt_min(dur_min)}.",
                    f"老人已回到床上，离床 {fmt_min_zh(dur_min)}。",
                )
            elif t - start >= self.config.bed_exit_min_s * 1000:
                day = home.day
                day.night_exits += 1
                if day.night_exit_max_min is None or dur_min > day.night_exit_max_min:
                    day.night_exit_max_min = round(dur_min, 1)

    def on_timer(self, ctx: Context, home: HomeState, name: str, due: int) -> None:
        """Alert if the exit is still running."""
        start = home.night_exit_ms
        if start == NEVER or home.in_bed:
            return
        limit = home.baseline.bed_exit_limit_min
        moved = home.last_inside_ms > start + self.config.bed_exit_moved_s * 1000
        if moved:
            if not ctx.is_night(due):
                home.night_exit_ms = NEVER  # up and about in the morning: the day has begun
                return
            real_due = home.last_inside_ms + int(limit * MIN_MS)
            if real_due > due:
                ctx.schedule(home, "bed_exit", real_due)  # still moving: alert only once it goes still
                return
        src, src_zh = limit_source(home.baseline)
        last = hhmm(ctx.local_min(home.last_inside_ms)) if home.last_inside_ms != NEVER else "none"
        ctx.emit(
            home,
            AlertType.NIGHT_BED_EXIT,
            Severity.WARNING,
            due,
            f"Out of bed since {hhmm(ctx.local_min(start))} at night and not back after {fmt_min(limit)}"
            f" ({src}); last movement in the home {last}" + ("" if moved else ", none since leaving bed") + ".",
            f"夜间 {hhmm(ctx.local_min(start))} 离床，{fmt_min_zh(limit)} 后仍未回床（{src_zh}）；"
            f"家中最后活动时间 {last}" + ("" if moved else "，离床后无任何活动") + "。",
            evidence={
                "exit_at": hhmm(ctx.local_min(start)),
                "limit_min": limit,
                "moved_since": moved,
                "personal": home.baseline.personal,
            },
            key=KEY,
        )
