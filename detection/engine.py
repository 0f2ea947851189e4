"""The event-time detection engine: readings in, alerts out, timers on one heap, state in one snapshot.

``Engine.process(reading)`` runs presence tracking and the detectors registered for the reading's
``(kind, type)`` synchronously, after firing every timer due up to the reading's received time, and returns the
alerts raised. Life-safety alerts (SOS, call button, fall, smoke, critical vitals) are decided on the message
itself, in O(1), and returned by the same call: nothing batches them behind storage. ``Engine.advance(now_ms)``
fires due timers ("no message for N", "not back in bed by T"); a live service calls it once a second with its
clock, a replay with the recording's time, a test with whatever time it likes. The clock is injectable
(:class:`Clock`), so the same code runs live, in fast-forward replay and in tests.

``snapshot()`` serialises every home's state *and the armed timers*; ``Engine.restore(...)`` rebuilds from a
snapshot plus the readings stored since (a :class:`HistorySource`, e.g. InfluxDB), so a restart in the middle of
a night bed exit still alerts once, on time. A live service takes the same snapshot in slices with
:meth:`Engine.begin_snapshot` (copy-on-write per home, see :class:`~detection.snapshot.SnapshotCapture`), so
encoding 100,000 homes never holds the event loop for more than a slice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, Protocol

import msgspec

from detection import fatigue, notice
from detection.baseline import (
    BLOCKS,
    Baseline,
    DaySummary,
    baseline_changes,
    fit_baselines,
    hhmm,
    population_baseline,
)
from detection.capabilities import is_inside, unsupported
from detection.config import DetectConfig
from detection.detectors import default_detectors
from detection.detectors.base import Context, Detector
from detection.detectors.inactivity import InactivityDetector
from detection.detectors.offline import EVENT_DRIVEN
from detection.errors import SnapshotError
from detection.homes import HomeRegistry, SiteInfo
from detection.models import Alert, AlertType, CheckIn
from detection.presence import confirm_up, observe
from detection.snapshot import SNAPSHOT_VERSION, SnapshotCapture
from detection.state import LAG_WINDOW_MS, NEVER, NO_LAG_YET, DeviceState, EngineSnapshot, HomeState
from detection.timers import TimerQueue
from gateway.models import DeviceKind, MessageType, Reading

DAY_TIMER: Final = "day"


class Clock(Protocol):
    """Source of "now" for live ticking (wall clock in production, a fake in tests)."""

    def now_ms(self) -> int:
        """Current time, epoch milliseconds."""
        ...


class HistorySource(Protocol):
    """Readings stored since a time (InfluxDB in production), for rebuilding state after a restart."""

    def readings_since(self, site: str, t_ms: int) -> Iterable[Reading]:
        """Readings of one home with event time at or after ``t_ms``, in any order."""
        ...


class InMemoryHistory:
    """A :class:`HistorySource` over a list of readings (tests, replay)."""

    def __init__(self, readings: Iterable[Reading]) -> None:
        self._by_site: dict[str, list[Reading]] = {}
        for r in readings:
            self._by_site.setdefault(r.site, []).append(r)

    def readings_since(self, site: str, t_ms: int) -> list[Reading]:
        """Readings of ``site`` with ``time_ms >= t_ms``."""
        return [r for r in self._by_site.get(site, ()) if r.time_ms >= t_ms]


AlertSink = Callable[[Alert], None]


MAX_CHANGES: Final = 20
"""Changes of the learned limits kept per home (the resident page shows the latest)."""


class Engine:
    """Detection core for many homes. Not thread-safe: one engine per event loop (or shard of homes)."""

    def __init__(
        self,
        *,
        registry: HomeRegistry | None = None,
        config: DetectConfig | None = None,
        clock: Clock | None = None,
        sink: AlertSink | None = None,
        detectors: Sequence[Detector] | None = None,
        refit_inline: bool = True,
    ) -> None:
        """Create an engine.

        Args:
            registry: homes and devices; unknown homes are still tracked from their first message.
            config: thresholds; population defaults when omitted.
            clock: used by :meth:`tick`; replay and tests call :meth:`advance` with explicit times instead.
            sink: called with every alert as soon as it is raised (besides being returned).
            detectors: detector instances; the full default set when omitted.
            refit_inline: refit a home's baseline at its day boundary inside the engine (replay, tests). Live
                services set False and run :func:`detection.baseline.fit_baselines` on :meth:`histories` in a
                worker thread, then call :meth:`apply_baselines`.
        """
        self.config = config or DetectConfig()
        self.registry = registry
        self.clock = clock
        self.sink = sink
        self.refit_inline = refit_inline
        self.timers = TimerQueue()
        self.homes: dict[str, HomeState] = {}
        self.now_ms = NEVER
        self.readings = 0
        self._catching_up = False
        self._max_lag_ms = 5 * 60_000
        self._backlog_lag_ms = self.config.backlog_lag_s * 1000
        self._backlog_settle_ms = self.config.backlog_settle_s * 1000
        self._backlog_hold_ms = self.config.backlog_hold_max_s * 1000
        self._held: dict[tuple[str, str], tuple[int, int]] = {}
        """Timers held by a home's backlog: (site, name) → (the hold it was moved to, the deadline it had). Not in
        the snapshot: a timer restored at its hold fires with the hold as its deadline."""
        self._ctx = Context(config=self.config, timers=self.timers)
        self._population = population_baseline(self.config)
        self.detectors: tuple[Detector, ...] = tuple(detectors or default_detectors(self.config))
        self._inactivity = InactivityDetector(config=self.config)
        """The inactivity rule's limits for :meth:`learned` (stateless; the running one may be left out)."""
        routes: dict[tuple[DeviceKind, MessageType], list[Detector]] = {
            (k, t): [] for k in DeviceKind for t in MessageType
        }
        self._timer_exact: dict[str, Detector] = {}
        self._timer_prefix: dict[str, Detector] = {}
        for det in self.detectors:
            for key in det.inputs:
                routes[key].append(det)
            for name in det.timer_names:
                (self._timer_prefix if name.endswith(":") else self._timer_exact)[name] = det
        self._home_timer_names: tuple[str, ...] = (DAY_TIMER, *self._timer_exact)
        self._timer_prefixes: tuple[str, ...] = tuple(self._timer_prefix)
        self._capture: SnapshotCapture | None = None
        self._notices: dict[str, tuple[int, int, int]] = {}
        """The away notices last handed in (:meth:`set_away_notices`), for homes first seen after that."""
        self._routes: dict[tuple[DeviceKind, MessageType], tuple[Detector, ...]] = {
            k: tuple(d for d in v if not d.only_on_flags) for k, v in routes.items()
        }
        self._flag_routes: dict[tuple[DeviceKind, MessageType], tuple[Detector, ...]] = {
            k: tuple(d for d in v if d.only_on_flags) for k, v in routes.items()
        }

    # ------------------------------------------------------------------ hot path

    def process(self, reading: Reading) -> list[Alert]:
        """Feed one decoded reading; return the alerts it (and any timer due before it) raised."""
        ctx = self._ctx
        out: list[Alert] = []
        ctx.out = out
        if reading.received_ms > self.now_ms:
            self.now_ms = reading.received_ms
            if self.timers.peek_ms() <= reading.received_ms:
                self._fire_due(reading.received_ms)
        self._process(ctx, reading)
        if self.sink is not None:
            for a in out:
                self.sink(a)
        return out

    def process_many(self, readings: Iterable[Reading]) -> list[Alert]:
        """Feed readings in arrival order; return every alert raised."""
        ctx = self._ctx
        out: list[Alert] = []
        ctx.out = out
        timers = self.timers
        for r in readings:
            received = r.received_ms
            if received > self.now_ms:
                self.now_ms = received
                if timers.peek_ms() <= received:
                    self._fire_due(received)
            self._process(ctx, r)
        if self.sink is not None:
            for a in out:
                self.sink(a)
        return out

    def catch_up(self, readings: Iterable[Reading]) -> list[Alert]:
        """Replay stored readings after a restart (in arrival order, with their timers), like :meth:`restore`.

        A reading no newer than what its device already had (in the snapshot or an earlier replay) is skipped, so
        overlapping windows of history are harmless. The sink is not called: the caller decides which of the
        returned alerts are new (the store may already hold them).
        """
        sink, self.sink = self.sink, None
        self._catching_up = True
        try:
            return self.process_many(readings)
        finally:
            self._catching_up = False
            self.sink = sink

    def _process(self, ctx: Context, r: Reading) -> None:
        self.readings += 1
        received = r.received_ms
        home = self.homes.get(r.site)
        if home is None:
            home = self._new_home(r.site, r.time_ms)
        elif self._capture is not None:
            self._capture.touch(home)  # a snapshot is being taken: keep this home's state as it was
        dev = home.devices.get(r.device)
        if dev is None or (dev.room is None and "room" in r.fields):
            dev = self._unregistered_device(home, r, dev)
        # A clock that is consistently behind looks like buffered data to the gateway (which trusts lags of up
        # to a day); a device whose *every* message lags by minutes has a wrong clock: use the received time.
        lag = received - r.ts_ms
        floor = dev.lag_floor_ms
        t = received if r.clock_skewed or floor > self._max_lag_ms else r.ts_ms
        if received - dev.lag_window_ms >= LAG_WINDOW_MS:
            if dev.lag_min_ms != NO_LAG_YET:  # a whole window ended: the floor is the smaller of the last two minima
                dev.lag_floor_ms = min(dev.lag_prev_min_ms, dev.lag_min_ms)
                dev.lag_prev_min_ms = dev.lag_min_ms
            dev.lag_min_ms = lag
            dev.lag_window_ms = received
        elif lag < dev.lag_min_ms:
            dev.lag_min_ms = lag
        if lag < dev.lag_floor_ms:
            dev.lag_floor_ms = lag
        if self._catching_up and t <= dev.last_reading_ms:
            return  # already processed before the snapshot was taken (or earlier in this replay)
        if lag - floor > self._backlog_lag_ms and t != received:
            # Buffered by the gateway (an outage): the home's timers wait until the rest of the backlog is here.
            if received > home.backlog_until_ms:
                home.backlog_since_ms = received
            home.backlog_until_ms = received + self._backlog_settle_ms
        if t > dev.last_reading_ms:
            dev.last_reading_ms = t
        last = dev.last_seen_ms
        if t >= last:
            if dev.kind in EVENT_DRIVEN:
                if r.type is MessageType.STATUS:
                    prev = dev.last_status_ms
                    if prev != NEVER and t > prev and not dev.offline and not home.site_offline:
                        dev.n_gaps += 1
                        if t - prev > dev.max_gap_ms:
                            dev.max_gap_ms = t - prev
                    dev.last_status_ms = t
            elif last != NEVER and not dev.offline and not home.site_offline and not home.away:
                dev.n_gaps += 1
                if t - last > dev.max_gap_ms:
                    dev.max_gap_ms = t - last
            dev.last_seen_ms = t
            if r.seq is not None:
                dev.last_seq = r.seq
        if t > home.last_seen_ms:
            home.last_seen_ms = t
        prev_inside = home.last_inside_ms
        flags = observe(ctx, home, r, t)
        if home.notice_id:
            notice.observe(self.config, home, flags, t, prev_inside)
        key = (r.kind, r.type)
        for det in self._routes[key]:
            det.on_reading(ctx, home, r, t, flags)
        if flags:
            for det in self._flag_routes[key]:
                det.on_reading(ctx, home, r, t, flags)

    # ------------------------------------------------------------------ timers

    def advance(self, now_ms: int) -> list[Alert]:
        """Fire every timer due at or before ``now_ms`` (event time); return the alerts raised."""
        ctx = self._ctx
        out: list[Alert] = []
        ctx.out = out
        self._fire_due(now_ms)
        if self.sink is not None:
            for a in out:
                self.sink(a)
        return out

    def tick(self) -> list[Alert]:
        """:meth:`advance` to the injected clock's now (live mode)."""
        if self.clock is None:
            raise ValueError("Engine.tick() needs a clock; pass clock=... or call advance(now_ms)")
        return self.advance(self.clock.now_ms())

    def _fire_due(self, now_ms: int) -> None:
        timers = self.timers
        ctx = self._ctx
        homes = self.homes
        while True:
            item = timers.pop_one(now_ms)
            if item is None:
                break
            due, site, name = item
            home = homes.get(site)
            if home is None:
                continue
            if self._capture is not None:
                self._capture.touch(home, (name, due))
            if name == DAY_TIMER:
                self._day_end(ctx, home, due)
                continue
            det = self._timer_exact.get(name)
            if det is None:
                cut = name.find(":")
                det = self._timer_prefix.get(name[: cut + 1]) if cut >= 0 else None
            if det is None:
                continue
            held = self._held.pop((site, name), None) if self._held else None
            if held is not None and held[0] == due:
                due = held[1]  # fired at its hold: the detector sees the deadline it set (alerts keep event time)
            if home.backlog_until_ms > now_ms and det.held_by_backlog:
                hold = min(home.backlog_until_ms, home.backlog_since_ms + self._backlog_hold_ms)
                if hold > now_ms:  # the home's buffered readings are still arriving: look again once they are in
                    self._held[(site, name)] = (hold, due)
                    timers.schedule(site, name, hold)
                    continue
            det.on_timer(ctx, home, name, due)
        if now_ms > self.now_ms:
            self.now_ms = now_ms

    def next_due(self) -> int | None:
        """Earliest armed timer (a live service may sleep until then)."""
        return self.timers.next_due()

    # ------------------------------------------------------------------ homes and days

    def _new_home(self, site: str, t: int) -> HomeState:
        ctx = self._ctx
        info = self.registry.sites.get(site) if self.registry is not None else None
        home = HomeState(
            site=site,
            baseline=self._population,
            day=DaySummary(day=ctx.care_day(t)),
            solitary=info.solitary if info is not None else True,
            created_ms=t,
        )
        if info is not None:
            self._apply_registry(home, info, t)
        if (away := self._notices.get(site)) is not None:
            notice.apply(home, away)
        self.homes[site] = home
        ctx.schedule(home, DAY_TIMER, ctx.next_local(t, self.config.day_boundary_min))
        for det in self.detectors:
            det.on_start(ctx, home, t)
        return home

    @staticmethod
    def _apply_registry(home: HomeState, info: SiteInfo, t: int) -> None:
        """Take what the registry says about a home: who lives there (alone, bedbound, close watch) and its devices.

        Called for a new home and for every home restored from a snapshot, so a resident tagged 重点关注 or a device
        added since the snapshot counts after a restart. A device already known keeps its state; one the registry
        no longer lists is left as it is (its readings are refused at decoding).
        """
        home.solitary = info.solitary
        home.bedbound = info.bedbound
        home.close_watch = info.close_watch
        for d in info.devices:
            if d.device not in home.devices:
                home.devices[d.device] = DeviceState(
                    kind=d.kind, room=d.room, inside=is_inside(d.kind, d.room), last_seen_ms=t
                )
            if d.kind is DeviceKind.MATTRESS:
                home.has_mattress = True
        home.off = unsupported((d.kind, d.room) for d in info.devices)
        home.sparse = not any(d.kind is DeviceKind.MOTION and d.room != "bedroom" for d in info.devices)
        home.bedroom_sensor = any(is_inside(d.kind, d.room) and d.room == "bedroom" for d in info.devices)

    def _unregistered_device(self, home: HomeState, r: Reading, dev: DeviceState | None) -> DeviceState:
        """A device the registry does not describe: learn it from its readings (a replay without a registry).

        Its room is the payload's own, if it names one (a door contact's tells the entrance door from a cupboard's;
        a contact that never names a room stays the entrance door), and the home's device facts (which detectors
        its devices support, sparse, a bedroom sensor) follow the devices seen so far, as the registry's would.
        """
        room = r.fields.get("room")
        room = room if isinstance(room, str) and room else None
        info = self.registry.sites.get(home.site) if self.registry is not None else None
        if dev is None:
            dev = home.devices[r.device] = DeviceState(kind=r.kind, room=room, inside=is_inside(r.kind, room))
        elif info is None and room is not None:
            dev.room = room
            dev.inside = is_inside(dev.kind, room)
        else:
            return dev
        if info is None:
            devices = [(d.kind, d.room) for d in home.devices.values()]
            home.off = unsupported(devices)
            home.sparse = not any(k is DeviceKind.MOTION and rm != "bedroom" for k, rm in devices)
            home.bedroom_sensor = any(is_inside(k, rm) and rm == "bedroom" for k, rm in devices)
        return dev

    def ensure_homes(self, t_ms: int) -> None:
        """Start watching every registered home at ``t_ms`` (so a home that never speaks is noticed)."""
        if self.registry is None:
            return
        for site in self.registry.sites:
            if site not in self.homes:
                self._new_home(site, t_ms)
        if t_ms > self.now_ms:
            self.now_ms = t_ms

    def _day_end(self, ctx: Context, home: HomeState, t: int) -> None:
        confirm_up(ctx, home, t - 1)
        if home.notice_id and home.notice_empty and home.notice_from_ms < t and home.notice_until_ms > t - 86_400_000:
            home.day.flagged = True  # a stay away under an away notice is not the routine: not learned from
        home.history.append(home.day)
        if len(home.history) > self.config.history_days:
            del home.history[: len(home.history) - self.config.history_days]
        home.day = DaySummary(day=ctx.care_day(t))
        fatigue.relax(self.config, home, t)
        for key in [k for k in home.open if k.startswith("apnea:")]:
            del home.open[key]
        if self.refit_inline:
            self._set_baseline(home, fit_baselines({home.site: home.history}, config=self.config)[home.site], t)
        for det in self.detectors:
            det.on_day_end(ctx, home, t)
        ctx.schedule(home, DAY_TIMER, ctx.next_local(t, self.config.day_boundary_min))

    @property
    def checkins(self) -> list[CheckIn]:
        """Check-in prompts, answers and pages so far, in order.

        A live service drains it (``clear()``) and sends each ``prompt`` to the home as the downlink ``cmd: checkin``.
        """
        return self._ctx.checkins

    def unsupported(self, site: str) -> dict[str, str]:
        """Behavioural alert types this home's devices cannot support, with the reason (for the resident page)."""
        home = self.homes.get(site)
        return dict(home.off) if home is not None else {}

    def learned(self, site: str) -> dict[str, object]:
        """What the core learned about a home, for the resident page: limits with their source, what is off and why.

        Keys: ``personal`` (False during the grace period), ``days`` learned from, ``fine_labels`` (alerts that turned
        out fine in those days), ``inactivity_min`` per block of the day and ``inactivity_by_room_min`` per room
        (None: not enough days; above the home's ceiling: silence there is weak evidence, the backstop applies),
        ``not_up_by`` (weekdays; ``not_up_weekend_by`` when Saturdays and Sundays differ), ``out_limit_min``,
        ``usually_home_by``, ``long_lie`` (how late a long lie is found, see :meth:`_long_lie`), ``close_watch``
        (the backstop in minutes for a resident tagged 重点关注, else None), ``off``: behavioural rules this home's
        devices cannot support, with the reason, ``fatigue`` and ``changes``: the latest moves of the learned limits,
        newest first (``what`` is ``personal``, ``inactivity:<block>``, ``not_up`` or ``out_limit``).
        """
        home = self.homes.get(site)
        if home is None:
            return {}
        b = home.baseline
        back = None if b.back_by_min is None else hhmm(b.back_by_min + self.config.day_boundary_min)
        return {
            "personal": b.personal,
            "days": b.n_days,
            "fine_labels": b.fine_labels,
            "inactivity_min": dict(zip(BLOCKS, b.inactivity_limit_min, strict=True)),
            "inactivity_by_room_min": {r: dict(zip(BLOCKS, v, strict=True)) for r, v in b.room_limit_min.items()},
            "not_up_by": hhmm(b.not_up_min),
            "not_up_weekend_by": hhmm(b.weekend.deadline_min)
            if b.weekend is not None and hhmm(b.weekend.deadline_min) != hhmm(b.not_up_min)
            else None,
            "out_limit_min": b.out_limit_min,
            "usually_home_by": back,
            "off": dict(home.off),
            "long_lie": self._long_lie(home),
            "close_watch": fatigue.backstop_min(self.config, home) if home.close_watch else None,
            "fatigue": self._fatigue(home),
            "changes": [
                {
                    "time_ms": t,
                    "what": what,
                    "from": hhmm(old) if what == "not_up" else round(old),
                    "to": hhmm(new) if what == "not_up" else round(new),
                }
                for t, what, old, new in reversed(home.changes[-10:])
            ],
        }

    def _long_lie(self, home: HomeState) -> dict[str, object] | None:
        """How late this home's devices and learned routine let a daytime long lie be noticed, and what would help.

        ``after_min`` per daytime block: the longest silence before the elder is asked (the limit after the room
        with the longest one, as widened by the alarm-fatigue budget) plus the check-in window, i.e. when the grid
        worker is paged at the latest; None when no limit is known. ``hint``: ``sparse`` (contacts only: a still
        elder fires nothing; a motion sensor where the elder sits would shorten it), ``long_spells`` (the home's
        own learned quiet spells outlast the ceiling, so the backstop decides) or None. None instead of the dict
        when the rule is off for the home (``off`` says why). Measured on real homes (docs/detection.md): with
        contacts only, or with spells of hours normal, a long lie is found after about 4 h; with motion sensors in
        every room, after 1-2 h.
        """
        if AlertType.INACTIVITY.value in home.off:
            return None  # the rule is off; ``off`` says why
        det = self._inactivity
        window = self.config.checkin_window_s / 60
        rooms = ["", *home.baseline.room_limit_min]
        after: dict[str, float | None] = {}
        for block in range(1, len(BLOCKS)):
            lims = [det.limit_for(home, block, room) for room in rooms]
            known = [fatigue.inactivity_limit(self.config, home, x) for x in lims if x is not None]
            after[BLOCKS[block]] = round(max(known) + window) if known else None
        worst = max((x for x in after.values() if x is not None), default=None)
        if home.sparse:
            hint = "sparse"
        elif home.baseline.personal and worst is not None and worst - window > det.ceiling_min(home):
            hint = "long_spells"
        else:
            hint = None
        return {"after_min": after, "hint": hint}

    def _fatigue(self, home: HomeState) -> dict[str, object]:
        """The alarm-fatigue budget of a home: pages in the window, the budget, and what was adapted (with numbers)."""
        c = self.config
        pages = fatigue.pages_in_window(home)
        adapted: list[dict[str, object]] = []
        if home.fatigue_inactivity_steps:
            ceiling = self._inactivity.ceiling_min(home)
            lims = [lim if home.baseline.personal else min(lim, ceiling) for lim in home.baseline.inactivity_limit_min]
            frm = min((x for x in lims if x is not None), default=ceiling)
            adapted.append(
                {
                    "rule": "inactivity",
                    "pages": fatigue.pages_in_window(home, "inactivity"),
                    "from_min": round(frm),
                    "to_min": round(fatigue.inactivity_limit(c, home, frm)),
                    "ceiling_min": round(fatigue.ceiling_min(c, home)),
                }
            )
        if home.fatigue_not_up_steps:
            adapted.append(
                {
                    "rule": "not_up",
                    "pages": fatigue.pages_in_window(home, "not_up"),
                    "from": hhmm(home.baseline.not_up_min),
                    "to": hhmm(fatigue.not_up_min(c, home)),
                    "latest": hhmm(c.fatigue_not_up_latest_min),
                }
            )
        return {
            "pages": pages,
            "window_days": c.fatigue_window_days,
            "budget": c.fatigue_budget_per_month,
            "over": c.fatigue_budget_per_month > 0 and pages > c.fatigue_budget_per_month,
            "adapted": adapted,
        }

    def set_away_notices(self, notices: Mapping[str, tuple[int, int, int]]) -> None:
        """The away notices (外出报备) in force or coming, by home: ``(id, from_ms, until_ms)`` (``detection.notice``).

        The whole set each time (the store is the truth): a home left out has its notice cleared. A home first seen
        later (its first reading) gets its notice at once, not at the next call.
        """
        # Only the homes noticed last time or now (every 5 s, on the loop: not a walk over every home).
        for site in self._notices.keys() | notices.keys():
            home = self.homes.get(site)
            if home is None:
                continue
            new = notices.get(site)
            if new is None and not home.notice_id:
                continue
            if new is not None and (home.notice_id, home.notice_from_ms, home.notice_until_ms) == new:
                continue
            if self._capture is not None:
                self._capture.touch(home)
            notice.apply(home, new)
        self._notices = dict(notices)

    def _noticed(self) -> list[HomeState]:
        return [h for site in self._notices if (h := self.homes.get(site)) is not None and h.notice_id]

    def held_by_notices(self) -> list[tuple[str, int, int]]:
        """Homes under an away notice: ``(site, notice id, behavioural alerts held so far)``."""
        return [(h.site, h.notice_id, h.notice_held) for h in self._noticed()]

    def ended_notices(self) -> list[tuple[str, int, int]]:
        """Notices the homes showed to be over: ``(site, notice id, time the elder was seen back)``."""
        return [(h.site, h.notice_id, h.notice_back_ms) for h in self._noticed() if h.notice_back_ms != NEVER]

    def label_outcome(self, site: str, time_ms: int, *, real: bool) -> bool:
        """A worker's outcome of an alert of this home at ``time_ms``: a label for learning.

        ``real=True`` (a confirmed incident) keeps that care day out of the baseline; ``real=False`` ("elder fine /
        false alarm") makes sure it is learned from and counts the label. The baseline is refitted at once.
        Returns False if the day is no longer in the home's history.
        """
        home = self.homes.get(site)
        if home is None:
            return False
        if self._capture is not None:
            self._capture.touch(home)
        day_i = self._ctx.care_day(time_ms)
        days = [d for d in (*home.history, home.day) if d.day == day_i]
        if not days:
            return False
        for d in days:
            d.flagged = real
            if not real:
                d.fine_labels += 1
        if real:
            start = self._ctx.next_local(time_ms - 86_400_000, self.config.day_boundary_min)
            fatigue.forget_confirmed(self.config, home, start, start + 86_400_000)
        if self.refit_inline:
            self._set_baseline(home, fit_baselines({home.site: home.history}, config=self.config)[home.site], time_ms)
        return True

    def histories(self) -> dict[str, list[DaySummary]]:
        """Copy of every home's archived days, for an off-loop refit."""
        return {site: list(h.history) for site, h in self.homes.items()}

    def apply_baselines(self, baselines: Mapping[str, Baseline]) -> None:
        """Install baselines fitted elsewhere (e.g. in a worker thread by :func:`fit_baselines`)."""
        for site, b in baselines.items():
            home = self.homes.get(site)
            if home is not None:
                if self._capture is not None:
                    self._capture.touch(home)
                self._set_baseline(home, b, self.now_ms)

    def _set_baseline(self, home: HomeState, new: Baseline, t: int) -> None:
        """Install a refitted baseline and note what moved (the resident page shows "what changed")."""
        moved = baseline_changes(home.baseline, new)
        home.baseline = new
        if moved:
            home.changes.extend((t, what, old, now) for what, old, now in moved)
            del home.changes[:-MAX_CHANGES]
        for det in self.detectors:
            det.on_baseline(self._ctx, home, t)

    # ------------------------------------------------------------------ snapshot and restore

    def snapshot(self) -> bytes:
        """Serialise homes, armed timers and the event-time watermark (MessagePack), in one blocking call.

        Holds the caller for the whole encode (0.15–0.4 s for 10,000 homes with 28 archived days, 3–5 s for 100,000); a
        live service uses :meth:`begin_snapshot` instead (the same snapshot, in slices).
        """
        snap = EngineSnapshot(
            version=SNAPSHOT_VERSION, now_ms=self.now_ms, homes=list(self.homes.values()), timers=self.timers.items()
        )
        return msgspec.msgpack.encode(snap)

    def begin_snapshot(self) -> SnapshotCapture:
        """Start a snapshot of the engine as it is now, to be encoded in slices between readings.

        Call :meth:`SnapshotCapture.step` until it returns True (processing readings and timers in between is
        fine: that is the point), then :meth:`SnapshotCapture.chunks`, and always :meth:`SnapshotCapture.close`.
        One capture at a time.
        """
        if self._capture is not None:
            raise RuntimeError("a snapshot capture is already in progress; close it first")
        self._capture = SnapshotCapture(self)
        return self._capture

    def timers_of(self, home: HomeState) -> list[tuple[str, str, int]]:
        """The home's armed timers as ``(site, name, due_ms)``.

        A home's timers are named after the detectors' ``timer_names`` (plus the day boundary), a ``prefix:``
        name followed by one of the home's devices; a snapshot taken in slices relies on it and checks it.
        """
        due_of = self.timers.due_of
        site = home.site
        out = [(site, name, due) for name in self._home_timer_names if (due := due_of(site, name)) is not None]
        for prefix in self._timer_prefixes:
            for device in home.devices:
                name = prefix + device
                due = due_of(site, name)
                if due is not None:
                    out.append((site, name, due))
        return out

    @classmethod
    def restore(
        cls,
        data: bytes | EngineSnapshot,
        *,
        history: HistorySource | None = None,
        now_ms: int | None = None,
        registry: HomeRegistry | None = None,
        config: DetectConfig | None = None,
        clock: Clock | None = None,
        sink: AlertSink | None = None,
        refit_inline: bool = True,
        lookback_ms: int = 10 * 60_000,
    ) -> tuple[Engine, list[Alert]]:
        """Rebuild an engine from :meth:`snapshot` plus the readings stored since, and catch up to ``now_ms``.

        Readings from ``history`` newer than the snapshot (minus ``lookback_ms`` for late arrivals, each device
        skipping what it had already processed) are replayed in arrival order with their timers, then timers
        are fired up to ``now_ms`` (or the clock's now). Returns the engine and the alerts raised on the way,
        each with the event time it would have had without the restart.
        """
        if isinstance(data, EngineSnapshot):  # already decoded (:func:`detection.snapshot.load_snapshot`)
            snap = data
        else:
            try:
                snap = msgspec.msgpack.decode(data, type=EngineSnapshot)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise SnapshotError(str(exc)) from None
        if snap.version != SNAPSHOT_VERSION:
            raise SnapshotError(f"version {snap.version}, expected {SNAPSHOT_VERSION}")
        engine = cls(registry=registry, config=config, clock=clock, sink=sink, refit_inline=refit_inline)
        engine.homes = {h.site: h for h in snap.homes}
        # Notices the snapshot carries: the next set_away_notices clears or keeps them like any other.
        engine._notices = {
            h.site: (h.notice_id, h.notice_from_ms, h.notice_until_ms) for h in snap.homes if h.notice_id
        }
        for h in engine.homes.values():
            for dev in h.devices.values():
                if dev.last_reading_ms == NEVER and dev.last_seq != NEVER:
                    dev.last_reading_ms = dev.last_seen_ms  # a snapshot from before the field: its last message
        if registry is not None:
            for h in engine.homes.values():
                info = registry.sites.get(h.site)
                if info is not None:
                    engine._apply_registry(h, info, snap.now_ms)
        # Sorted, so timers due at the same moment fire in the same order whichever way the snapshot was taken.
        engine.timers.load(sorted(snap.timers))
        engine.now_ms = snap.now_ms
        alerts: list[Alert] = []
        if history is not None:
            sites = set(engine.homes) | (set(registry.sites) if registry is not None else set())
            pending: list[Reading] = []
            for site in sites:
                pending.extend(history.readings_since(site, snap.now_ms - lookback_ms))
            pending.sort(key=lambda r: (r.received_ms, r.time_ms))
            engine._catching_up = True
            try:
                alerts.extend(engine.process_many(pending))
            finally:
                engine._catching_up = False
        target = now_ms if now_ms is not None else (clock.now_ms() if clock is not None else None)
        if target is not None:
            alerts.extend(engine.advance(target))
        return engine, alerts
