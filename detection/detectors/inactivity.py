"""Unusual inactivity: at home, out of bed, and no sign of activity from any sensor for longer than usual.

The limit depends on the block of the day of the last activity and comes from the elder's own history
(longest quiet spell in that block over the last weeks × a margin), clipped by the fixed floor and the safety
ceiling. The timer is lazy: activity only moves ``last_activity_ms``; the timer re-arms itself when it fires
early, so a busy home costs no heap operations.
"""

from __future__ import annotations

from typing import ClassVar

from detection import fatigue
from detection.baseline import BLOCKS, BLOCKS_ZH, block_of, hhmm
from detection.detectors.base import MIN_MS, Context, Detector, fmt_min, fmt_min_zh
from detection.models import AlertType, Severity
from detection.presence import ACTIVITY
from detection.state import NEVER, HomeState
from gateway.models import DeviceKind, MessageType, Reading

KEY = "inactivity"
TIMER = "inact"


class InactivityDetector(Detector):
    """INACTIVITY when the home has been quiet longer than the elder's limit for that time of day."""

    name: ClassVar[str] = "inactivity"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset(
        (k, t)
        for k in (
            DeviceKind.MATTRESS,
            DeviceKind.MOTION,
            DeviceKind.DOOR,
            DeviceKind.WRISTBAND,
            DeviceKind.CALL_BUTTON,
            DeviceKind.SMOKE,
        )
        for t in (MessageType.EVENT, MessageType.TELEMETRY)
    )
    only_on_flags: ClassVar[bool] = True
    timer_names: ClassVar[tuple[str, ...]] = (TIMER,)

    def _eligible(self, ctx: Context, home: HomeState, due: int | None = None) -> bool:
        if home.away or home.in_bed or home.site_offline or home.last_activity_ms == NEVER:
            return False
        if home.night_exit_ms != NEVER:
            return False  # a night exit is the bed-exit detector's job
        last = home.last_activity_ms
        if last in (home.door_open_ms, home.door_close_ms):
            return False  # the entrance door was the last sign: most likely out (the out-not-back rule decides)
        if due is None:
            limit = self.limit_min(ctx, home)
            if limit is None:
                return False  # this home's normal quiet spells here outlast the ceiling: silence is no evidence
            due = last + int(limit * MIN_MS)
        if not home.solitary:
            c = self.config
            lo, hi = c.couple_day_start_min, c.couple_day_end_min
            return lo <= ctx.local_min(last) < hi and lo <= ctx.local_min(due) < hi
        last_min = ctx.local_min(last)
        if block_of(last_min) != 0 and (
            block_of(ctx.local_min(due)) != 0
            or (home.last_room != "bedroom" and last_min < self.config.inactivity_run_on_before_min)
        ):
            # A daytime silence; one that runs into the night only if it began well before bedtime and outside
            # the bedroom (a fall at 19:00 found at 23:00; activity at 21:30 then nothing is usually bedtime).
            return True
        # At night only an empty bed plus silence is evidence (and only when living alone: see above). Without a
        # bed sensor, a night toilet visit and the return to bed look alike (measured on real homes: most
        # mattress-less homes have no sensor that fires on the way back to bed).
        return home.has_mattress

    @staticmethod
    def _sensors_reporting(home: HomeState, now_ms: int) -> bool:
        """True while some sensor inside the home is alive (not offline), so its silence is evidence.

        Liveness comes from the device's heartbeats and the gateway (the offline detector), not from the person:
        a healthy PIR that heartbeats but sees nobody is evidence that nobody moved. Homes whose registry names no
        inside sensor (unknown devices) keep the old rule: the motion sensors must have spoken within 20 min.
        """
        seen = False
        for dev in home.devices.values():
            if dev.inside:
                if not dev.offline:
                    return True
                seen = True
        if seen:
            return False
        for dev in home.devices.values():
            if dev.kind is DeviceKind.MOTION:
                if not dev.offline and now_ms - dev.last_seen_ms <= 20 * MIN_MS:
                    return True
                seen = True
        return not seen

    @staticmethod
    def _blind_rooms(home: HomeState) -> list[str]:
        """Rooms with inside sensors that are all offline (sorted): the elder may be there, unseen.

        Only checked when a timer fires. Measured on a real home (ordonez-a): the living room's only sensor failed,
        the elder went from the kitchen to sit there and was paged after the kitchen's short limit.
        """
        alive: dict[str, bool] = {}
        for dev in home.devices.values():
            if dev.inside and dev.room:
                alive[dev.room] = alive.get(dev.room, False) or not dev.offline
        return sorted(room for room, ok in alive.items() if not ok)

    def ceiling_min(self, home: HomeState) -> float:
        """The home's safety ceiling: shorter where a motion sensor outside the bedroom watches (strong evidence).

        Never past the close-watch backstop for a resident tagged 重点关注.
        """
        c = self.config
        ceiling = c.inactivity_sparse_ceiling_min if home.sparse else c.inactivity_ceiling_min
        backstop = fatigue.backstop_min(c, home)
        return min(ceiling, backstop) if home.close_watch and backstop > 0 else ceiling

    def limit_min(self, ctx: Context, home: HomeState) -> float | None:
        """The limit in force: :meth:`learned_limit_min` widened by the alarm-fatigue budget (within its ceiling)."""
        lim = self.learned_limit_min(ctx, home)
        if lim is None:
            return None
        adapted = fatigue.inactivity_limit(self.config, home, lim)
        if adapted > lim and home.last_activity_ms != NEVER:
            last = home.last_activity_ms
            if (
                block_of(ctx.local_min(last + int(adapted * MIN_MS)))
                == 0
                != block_of(ctx.local_min(last + int(lim * MIN_MS)))
            ):
                return lim  # a wider limit would run into the night, where silence is taken for sleep: keep it
        return adapted

    def learned_limit_min(self, ctx: Context, home: HomeState) -> float | None:
        """Limit for the block of the day and the room of the last activity (the block's when the room has none).

        None when this home's own normal quiet spells there outlast its safety ceiling: its sensors do not see where
        the elder spends that time (a living room without a sensor, a nap), so silence is no evidence and a page
        would be a guess; the resident page lists these (``Engine.learned``).
        """
        return self.limit_for(home, block_of(ctx.local_min(home.last_activity_ms)), home.last_room)

    @staticmethod
    def _raw_limit(home: HomeState, block: int, room: str) -> float:
        """The learned (or population) limit of ``block`` after activity in ``room``, before ceiling and backstop."""
        base = home.baseline
        lim = base.inactivity_limit_min[block]
        if base.room_limit_min:
            per_room = base.room_limit_min.get(room)
            room_lim = per_room[block] if per_room is not None else None
            if room_lim is not None:
                lim = room_lim
        return lim

    def limit_for(self, home: HomeState, block: int, room: str) -> float | None:
        """:meth:`learned_limit_min` for a silence that began in ``block`` after activity in ``room``."""
        base = home.baseline
        lim = self._raw_limit(home, block, room)
        ceiling = self.ceiling_min(home)
        if lim <= ceiling:
            return lim
        backstop = fatigue.backstop_min(self.config, home)
        if backstop <= 0:
            # Off where the home's own spells outlast the ceiling; the population prior is clipped, never off:
            # a new elder is watched.
            return None if base.personal else ceiling
        # The home's own limit (or, in the grace period, the population's) if it comes before the backstop.
        return min(lim, backstop)

    def score_one(self, ctx: Context, home: HomeState, now_ms: int) -> float:
        """Quiet time over the limit (≥ 1: anomalous); 0 when the rule does not apply (out, in bed)."""
        limit = self.limit_min(ctx, home)
        if limit is None or not self._eligible(ctx, home):
            return 0.0
        return (now_ms - home.last_activity_ms) / (limit * MIN_MS)

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """On activity: clear an open alert and make sure the timer is armed no later than needed."""
        if not flags & ACTIVITY:
            return
        if KEY in home.open:
            ctx.clear(
                home,
                KEY,
                AlertType.INACTIVITY,
                t,
                f"Activity again ({home.last_activity_src}).",
                f"家中重新出现活动（{home.last_activity_src}）。",
            )
        self._arm(ctx, home, t)

    def _arm(self, ctx: Context, home: HomeState, not_before: int) -> None:
        """Arm the timer at the limit of the running silence (not before ``not_before``) unless it is armed earlier."""
        if not self._eligible(ctx, home):
            return
        limit = self.limit_min(ctx, home)
        if limit is None:
            return
        due = max(home.last_activity_ms + int(limit * MIN_MS), not_before)
        armed = ctx.timers.due_of(home.site, TIMER)
        if armed is None or due < armed:
            ctx.schedule(home, TIMER, due)

    def on_baseline(self, ctx: Context, home: HomeState, t: int) -> None:
        """A refit may shorten the limit of a silence already running: arm at the new deadline (never in the past).

        Found by the simulator's timer check: a home leaving its grace period at the noon boundary kept the timer
        of its population limit and was prompted 35 min after its new 30-min limit.
        """
        if KEY not in home.open:
            self._arm(ctx, home, t)

    def on_timer(self, ctx: Context, home: HomeState, name: str, due: int) -> None:
        """Alert, or re-arm at the real deadline if there was activity meanwhile."""
        if not self._eligible(ctx, home) or KEY in home.open:
            return
        limit = self.limit_min(ctx, home)
        if limit is None:
            return
        real_due = home.last_activity_ms + int(limit * MIN_MS)
        if real_due > due:
            ctx.schedule(home, TIMER, real_due)
            return
        if not self._sensors_reporting(home, due):
            ctx.schedule(home, TIMER, due + 10 * MIN_MS)  # a silent PIR is no evidence of a still elder
            return
        last = home.last_activity_ms
        b = block_of(ctx.local_min(last))
        blind = self._blind_rooms(home)
        widened = False
        if blind:
            # The elder may have gone on into a room whose sensors are all offline, where nothing can see them:
            # the silence after the last room is weak evidence, so the block's own limit (any room) decides.
            wider = self.limit_for(home, b, "")
            if wider is None:
                return
            if wider > limit:
                if last + int(wider * MIN_MS) > due:
                    ctx.schedule(home, TIMER, last + int(wider * MIN_MS))
                    return
                limit, widened = wider, True
        quiet = (due - last) / MIN_MS
        # A refit during this silence that moved the inactivity limits (or ended the grace period) put the limit in
        # force only then (after ``since_min`` of quiet): a page at the refit for a silence already past the new
        # limit is on time, not late.
        moved = [tc for tc, what, _, _ in home.changes if what == "personal" or what.startswith("inactivity")]
        since_min = max(((tc - last) / MIN_MS for tc in moved if tc > last), default=0.0)
        base = home.baseline
        ref = base.quiet_ref_min[b]
        room = home.last_room
        room_ref = base.room_ref_min.get(room) if base.room_ref_min else None
        where, where_zh = "", ""
        if room_ref is not None and room_ref[b] is not None:
            ref = room_ref[b]
            where, where_zh = f" after activity in the {room}", f"（{room}活动之后）"
        ceiling = self.ceiling_min(home)
        q = round(self.config.inactivity_quantile * 100)
        if where:
            q = round(self.config.inactivity_room_quantile * 100)
        learned = self.learned_limit_min(ctx, home)
        c = self.config
        raw = self._raw_limit(home, b, room)
        if base.personal and ref is not None and raw > ceiling:
            # The home's own quiet spells here outlast its ceiling: the backstop (or the learned limit, if it is
            # shorter) decides. Saying "clipped to 30–120 min" beside a 4-h limit confused the reader.
            src = (
                f"this home's longest quiet spell in the {BLOCKS[b]}{where} was at most {ref:.0f} min on {q}% of"
                f" {base.n_days} days (learned limit {fmt_min(raw)}), longer than its {fmt_min(ceiling)} ceiling,"
                f" so a silence here is paged at {fmt_min(min(raw, fatigue.backstop_min(c, home)))} at the latest"
            )
            src_zh = (
                f"本户过去 {base.n_days} 天中 {q}% 的日子{BLOCKS_ZH[b]}{where_zh}最长安静时段不超过 {ref:.0f} 分钟"
                f"（学习到的阈值 {fmt_min_zh(raw)}），超过本户 {fmt_min_zh(ceiling)} 的上限，"
                f"因此此处安静最迟 {fmt_min_zh(min(raw, fatigue.backstop_min(c, home)))} 即提醒"
            )
        elif base.personal and ref is not None:
            src = (
                f"longest quiet spell in the {BLOCKS[b]}{where} on {q}% of {base.n_days} days"
                f" was at most {ref:.0f} min,"
                f" × {self.config.inactivity_margin} margin, clipped to {self.config.inactivity_floor_min:.0f}–"
                f"{ceiling:.0f} min"
            )
            src_zh = (
                f"过去 {base.n_days} 天中 {q}% 的日子{BLOCKS_ZH[b]}{where_zh}最长安静时段"
                f"不超过 {ref:.0f} 分钟，乘以余量 "
                f"{self.config.inactivity_margin}，并限定在 {self.config.inactivity_floor_min:.0f}–"
                f"{ceiling:.0f} 分钟"
            )
        else:
            src = "population default (not enough personal history yet)"
            src_zh = "人群默认值（个人历史数据尚不足）"
        if (
            base.personal
            and ref is not None
            and learned is not None
            and learned > max(ref * c.inactivity_margin, c.inactivity_floor_min) + 0.5
            and learned <= ceiling
        ):
            src += (
                f"; widened to {fmt_min(learned)} by the spread of this home's own days (tail fit for at most"
                f" {c.inactivity_pages_per_month:g} false alerts a month)"
            )
            src_zh += (
                f"；按本户自身数据的分布放宽至 {fmt_min_zh(learned)}"
                f"（尾部拟合，每月误报不超过 {c.inactivity_pages_per_month:g} 次）"
            )
        if learned is not None and limit > learned and not widened:
            n = fatigue.pages_in_window(home)
            src += (
                f"; adapted from {fmt_min(learned)} because this home paged {n} times in"
                f" {c.fatigue_window_days} days (budget {c.fatigue_budget_per_month}),"
                f" within the {fmt_min(fatigue.ceiling_min(c, home))} ceiling"
            )
            src_zh += (
                f"；因本户 {c.fatigue_window_days} 天内提醒 {n} 次（预算 {c.fatigue_budget_per_month} 次），"
                f"阈值已由 {fmt_min_zh(learned)} 自动放宽（上限 {fmt_min_zh(fatigue.ceiling_min(c, home))}）"
            )
        if widened:
            names = ", ".join(blind)
            src += f"; the sensors of the {names} are offline, so the block's limit for any room is used"
            src_zh += f"；{names}的传感器离线，因此按本时段不分房间的阈值判断"
        backstop = fatigue.backstop_min(c, home)
        if home.close_watch and 0 < backstop < c.inactivity_backstop_min and limit >= backstop - 0.5:
            src += f"; close watch (重点关注): paged after at most {fmt_min(backstop)}"
            src_zh += f"；重点关注对象：最长 {fmt_min_zh(backstop)} 即提醒"
        ctx.emit(
            home,
            AlertType.INACTIVITY,
            Severity.WARNING,
            due,
            f"No activity at home for {fmt_min(quiet)} since {hhmm(ctx.local_min(last))}"
            f" (last: {home.last_activity_src}); limit {fmt_min(limit)}: {src}.",
            f"自 {hhmm(ctx.local_min(last))} 起家中已 {fmt_min_zh(quiet)} 无任何活动"
            f"（最后活动：{home.last_activity_src}）；"
            f"阈值 {fmt_min_zh(limit)}：{src_zh}。",
            evidence={
                "quiet_min": round(quiet, 1),
                "limit_min": limit,
                "block": BLOCKS[b],
                "last_activity": hhmm(ctx.local_min(last)),
                "personal": base.personal,
                "adapted_from_min": learned if learned is not None and limit > learned and not widened else 0.0,
                "limit_from_quiet_min": round(since_min, 1),
            },
            key=KEY,
        )
