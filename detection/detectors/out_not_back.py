"""Out and not back by the usual time: the door closed, nobody inside, and the outing lasts longer than usual."""

from __future__ import annotations

from typing import ClassVar

from detection.baseline import hhmm
from detection.detectors.base import MIN_MS, Context, Detector, fmt_min, fmt_min_zh
from detection.detectors.night_door import KEY as NIGHT_DOOR_KEY  # open from the night-door alert until a return
from detection.models import AlertType, Severity
from detection.presence import DOOR_CLOSE, DOOR_OPEN, RETURNED
from detection.state import NEVER, HomeState
from gateway.models import DeviceKind, MessageType, Reading

KEY = "out_not_back"
AWAY = "away"
OUT = "out"
SETTLE_MS = 30_000


class OutNotBackDetector(Detector):
    """Confirms the elder went out (door closed, no motion after); OUT_NOT_BACK past the personal limit."""

    name: ClassVar[str] = "out_not_back"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset(
        (k, t)
        for k in (DeviceKind.DOOR, DeviceKind.MOTION, DeviceKind.MATTRESS, DeviceKind.CALL_BUTTON)
        for t in (MessageType.EVENT, MessageType.TELEMETRY)
    )
    only_on_flags: ClassVar[bool] = True
    timer_names: ClassVar[tuple[str, ...]] = (AWAY, OUT)

    def score_one(self, ctx: Context, home: HomeState, now_ms: int) -> float:
        """Time out over the limit (≥ 1: anomalous); 0 when at home."""
        if not home.away:
            return 0.0
        return (now_ms - home.away_since_ms) / (home.baseline.out_limit_min * MIN_MS)

    def confirm_ms(self, home: HomeState) -> int:
        """Silence inside after the door that means "went out": longer in a home with contacts only."""
        c = self.config
        return (c.away_confirm_sparse_s if home.sparse else c.away_confirm_s) * 1000

    def latest_min(self, home: HomeState) -> float:
        """Local minute by which the elder is usually home: 23:00, later if the home's own returns say so."""
        b = home.baseline.back_by_min
        c = self.config
        if b is None:
            return float(c.out_latest_min)
        learned = (b + 30 + c.day_boundary_min) % 1440
        if learned < c.day_boundary_min:
            return float(c.out_latest_min)  # after midnight: the night rule decides
        return max(float(c.out_latest_min), learned)

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Door closed: check for departure later; return: clear."""
        if flags & (DOOR_OPEN | DOOR_CLOSE) and not home.away and not home.in_bed:
            # from the last door event: a lost "close" must not hide a departure
            ctx.schedule(home, AWAY, t + self.confirm_ms(home))
        if flags & RETURNED:
            # After a night away (or a visit inside such an absence) a short return may be a visit: see on_timer.
            c = self.config
            night_mid = (c.night_start_min + ((c.night_end_min - c.night_start_min) % 1440) / 2) % 1440
            overnight = ctx.next_local(home.away_since_ms, night_mid) <= t
            home.visit_ms = t if overnight or home.away_goes_on else NEVER
            home.away_goes_on = False
            ctx.cancel(home, OUT)
            ctx.clear(home, KEY, AlertType.OUT_NOT_BACK, t, "The elder is back home.", "老人已回家。")

    def on_timer(self, ctx: Context, home: HomeState, name: str, due: int) -> None:
        """``away``: confirm the departure; ``out``: alert if still out."""
        c = self.config
        if name == AWAY:
            close = max(home.door_close_ms, home.door_open_ms)
            if home.away or home.in_bed or due - close != self.confirm_ms(home):
                return
            if home.inside_start_ms > close + SETTLE_MS:
                return
            home.away = True
            home.away_since_ms = close
            if home.visit_ms != NEVER and close - home.visit_ms <= c.visit_max_min * MIN_MS and not ctx.is_night(close):
                # Back from a night away only for a visit (measured on a real home: during two months away, every
                # visit of a few minutes re-armed the rule and paged at 23:00). One absence, at most one page; a
                # departure at night is still the night rules' (night door, the 60-min night outing).
                home.away_goes_on = True
                return
            limit_due = close + int(home.baseline.out_limit_min * MIN_MS)
            latest = self.latest_min(home)
            if ctx.is_night(close):  # always: a night outing of an elder is wandering until shown otherwise
                limit_due = close + int(c.night_out_limit_min * MIN_MS)
            elif ctx.local_min(close) < latest:
                limit_due = min(limit_due, ctx.next_local(close, latest % 1440))
            ctx.schedule(home, OUT, limit_due)
            return
        if not home.away or home.site_offline:
            return
        since = home.away_since_ms
        night_door = home.open.get(NIGHT_DOOR_KEY)
        if ctx.is_night(since) and night_door is not None and night_door >= since:
            # The same night departure already paged as a night door (wandering) and nobody is back: one outing,
            # one page (measured on a real home: every night outing paged twice, at 20 and at 60 min). An
            # unacknowledged page is escalated by the alert service, not re-raised here.
            return
        out_min = (due - since) / MIN_MS
        b = home.baseline
        if b.personal and b.longest_out_min is not None:
            src = f"longest outing over {b.n_days} days {fmt_min(b.longest_out_min)} × {c.out_margin}"
            src_zh = f"过去 {b.n_days} 天最长外出 {fmt_min_zh(b.longest_out_min)} × {c.out_margin}"
        else:
            src, src_zh = "population default", "人群默认值"
        late = hhmm(self.latest_min(home))
        if ctx.is_night(since):
            src, src_zh = f"fixed limit {c.night_out_limit_min:.0f} min for a night outing", "夜间外出固定阈值"
            late, limit_min = "-", c.night_out_limit_min
        else:
            limit_min = b.out_limit_min
        ctx.emit(
            home,
            AlertType.OUT_NOT_BACK,
            Severity.WARNING,
            due,
            f"Went out at {hhmm(ctx.local_min(since))} (door closed, no movement inside since) and not back after"
            f" {fmt_min(out_min)}; limit {fmt_min(limit_min)} ({src}) or {late} at the latest.",
            f"{hhmm(ctx.local_min(since))} 外出（关门后家中无活动），{fmt_min_zh(out_min)} 仍未回家；"
            f"阈值 {fmt_min_zh(limit_min)}（{src_zh}），最晚 {late}。",
            evidence={
                "out_since": hhmm(ctx.local_min(since)),
                "out_min": round(out_min, 1),
                "limit_min": limit_min,
                "personal": b.personal,
            },
            key=KEY,
        )
