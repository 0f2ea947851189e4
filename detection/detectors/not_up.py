"""Not up by the usual time: still in bed (or no sign of life) at the elder's personal morning deadline."""

from __future__ import annotations

from typing import ClassVar

from detection import fatigue
from detection.baseline import Baseline, hhmm, is_weekend_date
from detection.detectors.base import DAY_MS, MIN_MS, Context, Detector
from detection.detectors.inactivity import KEY as SILENCE_KEY  # cleared by any activity: open = unbroken silence
from detection.models import AlertType, Severity
from detection.presence import ACTIVITY, confirm_up
from detection.state import NEVER, HomeState
from gateway.models import DeviceKind, MessageType, Reading

KEY = "not_up"
TIMER = "not_up"


def deadline_source(b: Baseline, *, weekend: bool = False) -> tuple[str, str]:
    """Where the deadline of a weekday or weekend morning comes from, in English and Chinese."""
    g = b.weekend if weekend else b.weekday
    if g is not None:
        en, zh = ("Saturdays and Sundays", "周末") if weekend else ("weekdays", "工作日")
        return (
            f"on {en} usually up by {hhmm(g.p50_min)} (median of {g.mornings} {en} weighed with all {b.n_days}"
            f" days, 90% by {hhmm(g.p90_min)}) plus a margin",
            f"{zh}平时 {hhmm(g.p50_min)} 起床（{g.mornings} 个{zh}早晨与全部 {b.n_days} 天加权的中位数，"
            f"90%在 {hhmm(g.p90_min)} 前起床）再加余量",
        )
    if b.wake_p50_min is not None and b.wake_p90_min is not None:
        return (
            f"usually up by {hhmm(b.wake_p50_min)} (median of {b.n_days} days, 90% of days by"
            f" {hhmm(b.wake_p90_min)}) plus a margin",
            f"平时 {hhmm(b.wake_p50_min)} 起床（{b.n_days} 天中位数，"
            f"90%的日子在 {hhmm(b.wake_p90_min)} 前起床）再加余量",
        )
    return f"population default (up by {hhmm(b.not_up_min)})", f"人群默认值（{hhmm(b.not_up_min)}前起床）"


def next_deadline(ctx: Context, home: HomeState, t: int) -> int:
    """The first morning deadline strictly after ``t``: each local date has its own (weekday or weekend)."""
    date = (t + ctx.tz_ms) // DAY_MS
    while True:
        due = date * DAY_MS - ctx.tz_ms + int(deadline_of(ctx, home, date) * MIN_MS)
        if due > t:
            return due
        date += 1


def deadline_of(ctx: Context, home: HomeState, date: int) -> float:
    """The (adapted) deadline of one local date, as a local minute of the day."""
    return fatigue.not_up_min(ctx.config, home, weekend=is_weekend_date(date))


class NotUpDetector(Detector):
    """NOT_UP at the personal deadline if the elder is still in bed or has shown no activity this morning."""

    name: ClassVar[str] = "not_up"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset(
        {
            (DeviceKind.MATTRESS, MessageType.EVENT),
            (DeviceKind.MATTRESS, MessageType.TELEMETRY),
            (DeviceKind.MOTION, MessageType.EVENT),
            (DeviceKind.MOTION, MessageType.TELEMETRY),
            (DeviceKind.DOOR, MessageType.EVENT),
        }
    )
    only_on_flags: ClassVar[bool] = True
    timer_names: ClassVar[tuple[str, ...]] = (TIMER,)

    def on_start(self, ctx: Context, home: HomeState, t: int) -> None:
        """Arm the first morning deadline."""
        ctx.schedule(home, TIMER, next_deadline(ctx, home, t))

    def on_day_end(self, ctx: Context, home: HomeState, t: int) -> None:
        """Re-arm for the next morning with the (possibly refitted) deadline.

        A page whose silence is still unbroken (no activity since it was raised) stays open: the next morning is the
        same silence, already paged, not a new incident (measured on real homes: a resident away for three days
        without a labelled absence paged "not up" every morning). A mattress that says "still in bed" is positive
        evidence each morning and pages each morning.
        """
        raised = home.open.get(KEY)
        if raised is not None and (home.last_activity_ms > raised or (home.has_mattress and home.in_bed)):
            home.open.pop(KEY, None)
        ctx.schedule(home, TIMER, next_deadline(ctx, home, t))

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Clear an open NOT_UP when the elder gets up."""
        if (
            KEY in home.open
            and flags & ACTIVITY
            and not home.in_bed
            and (home.has_mattress or home.up_day == ctx.care_day(t))
        ):
            ctx.clear(
                home,
                KEY,
                AlertType.NOT_UP,
                t,
                f"The elder is up ({home.last_activity_src}).",
                f"老人已起床（{home.last_activity_src}）。",
            )

    def on_timer(self, ctx: Context, home: HomeState, name: str, due: int) -> None:
        """Check the morning at the deadline."""
        ctx.schedule(home, TIMER, next_deadline(ctx, home, due))
        if home.bedbound or home.away or home.site_offline or confirm_up(ctx, home, due):
            return
        if SILENCE_KEY in home.open:
            return  # the silence that reaches into this morning was already paged as inactivity and is unbroken
        morning = ctx.next_local(due - 86_400_000, self.config.morning_start_min)
        if home.has_mattress and not home.in_bed and (home.last_activity_ms >= morning or not home.solitary):
            return  # with a second resident, only "still in bed" is evidence about the monitored elder
        if home.created_ms > morning:
            return  # started watching this home after the morning began: no basis
        weekend = is_weekend_date((due + ctx.tz_ms) // DAY_MS)
        src, src_zh = deadline_source(home.baseline, weekend=weekend)
        deadline = fatigue.not_up_min(self.config, home, weekend=weekend)
        learned = home.baseline.not_up_for(weekend=weekend)
        dl = hhmm(deadline)
        if deadline > learned:
            c, n = self.config, fatigue.pages_in_window(home)
            src += (
                f"; adapted from {hhmm(learned)} because this home paged {n} times in"
                f" {c.fatigue_window_days} days (budget {c.fatigue_budget_per_month}), never later than"
                f" {hhmm(c.fatigue_not_up_latest_min)}"
            )
            src_zh += (
                f"；因本户 {c.fatigue_window_days} 天内提醒 {n} 次（预算 {c.fatigue_budget_per_month} 次），"
                f"已由 {hhmm(learned)} 自动推迟（最晚 {hhmm(c.fatigue_not_up_latest_min)}）"
            )
        if home.has_mattress and home.in_bed:
            since = hhmm(ctx.local_min(home.bed_since_ms)) if home.bed_since_ms != NEVER else "?"
            what, what_zh = f"still in bed (since {since})", f"仍在床上（自 {since} 起）"
        elif home.last_room == "bedroom" and home.last_activity_ms >= morning:
            last = hhmm(ctx.local_min(home.last_activity_ms))
            what = f"not seen outside the bedroom this morning (last activity {last}, in the bedroom)"
            what_zh = f"今天早上未离开卧室（最后活动 {last}，在卧室）"
        else:
            last = hhmm(ctx.local_min(home.last_activity_ms)) if home.last_activity_ms != NEVER else "none"
            what, what_zh = f"no activity this morning (last {last})", f"今天早上无任何活动（最后活动 {last}）"
        ctx.emit(
            home,
            AlertType.NOT_UP,
            Severity.WARNING,
            due,
            f"Not up by {dl}: {what}; deadline: {src}.",
            f"到 {dl} 仍未起床：{what_zh}；截止时间依据：{src_zh}。",
            evidence={"deadline": dl, "in_bed": home.in_bed, "personal": home.baseline.personal, "weekend": weekend},
            key=KEY,
        )
