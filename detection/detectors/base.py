"""The protocol every detector follows, and the services the engine lends it (timers, alert emission).

Detectors are River-style in spirit: ``__init__`` stores hyperparameters only (the shared
:class:`~detection.config.DetectConfig`); learned state lives in :class:`~detection.state.HomeState` and
:class:`~detection.baseline.Baseline` (fitted from data, never from flagged days). A behavioural detector exposes
``score_one(ctx, home, now_ms) -> float`` (the same signature on every behavioural detector: inactivity,
bed exit, out not back), where a high score means anomalous and ``>= 1`` means the learned or
fixed threshold is crossed; deciding is separate (the timer handler). Learning happens through the daily
summaries the engine archives (``learn_one`` of the baseline, see :mod:`detection.baseline`).

One detector instance serves every home: it reads and writes the home's state it is given, so the engine
holds 100,000 homes as 100,000 small structs and one shared set of detectors.
"""

from __future__ import annotations

from typing import ClassVar

from detection.config import DetectConfig
from detection.fatigue import record_page
from detection.models import CHECKIN_TYPES, Alert, AlertType, CheckIn, Severity
from detection.state import NEVER, HomeState, notice_holds
from detection.timers import TimerQueue
from gateway.models import DeviceKind, MessageType, Reading
from gateway.rooms import where

BEHAVIOURAL: frozenset[AlertType] = frozenset(
    {
        AlertType.NIGHT_BED_EXIT,
        AlertType.INACTIVITY,
        AlertType.NOT_UP,
        AlertType.NIGHT_DOOR,
        AlertType.OUT_NOT_BACK,
        AlertType.VITALS_TREND,
    }
)
SUPPRESSED_WHEN_DARK: frozenset[AlertType] = BEHAVIOURAL | {AlertType.DEVICE_OFFLINE, AlertType.NOT_WORN}
"""Alerts a gateway outage would cause by itself: muted while the site-offline incident is open."""

MIN_MS = 60_000
DAY_MS = 86_400_000
CHECKIN_TIMER = "checkin"


class Context:
    """Engine services for detectors: local time, timers and alert emission into the current batch."""

    __slots__ = ("checkins", "config", "out", "timers", "tz_ms")

    def __init__(self, *, config: DetectConfig, timers: TimerQueue) -> None:
        self.config = config
        self.timers = timers
        self.tz_ms = config.tz_offset_s * 1000
        self.out: list[Alert] = []
        self.checkins: list[CheckIn] = []
        """Check-in prompts, answers and pages, in order (the engine's :attr:`~detection.engine.Engine.checkins`)."""

    def local_min(self, t_ms: int) -> float:
        """Local minute of the day of an event time (0 ≤ x < 1440)."""
        return ((t_ms + self.tz_ms) % DAY_MS) / MIN_MS

    def care_day(self, t_ms: int) -> int:
        """Index of the care day (noon to noon, local) an event time belongs to."""
        return (t_ms + self.tz_ms - self.config.day_boundary_min * MIN_MS) // DAY_MS

    def next_local(self, t_ms: int, minute_of_day: float) -> int:
        """First event time strictly after ``t_ms`` at the given local minute of the day."""
        day_start = (t_ms + self.tz_ms) // DAY_MS * DAY_MS - self.tz_ms
        due = day_start + int(minute_of_day * MIN_MS)
        while due <= t_ms:
            due += DAY_MS
        return due

    def is_night(self, t_ms: int) -> bool:
        """True inside the night window (22:00–06:00 by default)."""
        m = self.local_min(t_ms)
        c = self.config
        if c.night_start_min > c.night_end_min:
            return m >= c.night_start_min or m < c.night_end_min
        return c.night_start_min <= m < c.night_end_min

    def schedule(self, home: HomeState, name: str, due_ms: int) -> None:
        """Arm a timer of this home."""
        self.timers.schedule(home.site, name, due_ms)

    def cancel(self, home: HomeState, name: str) -> None:
        """Disarm a timer of this home."""
        self.timers.cancel(home.site, name)

    def armed(self, home: HomeState, name: str) -> bool:
        """True if the timer is armed."""
        return self.timers.due_of(home.site, name) is not None

    def emit(
        self,
        home: HomeState,
        type_: AlertType,
        severity: Severity,
        t_ms: int,
        en: str,
        zh: str,
        *,
        device: str | None = None,
        evidence: dict[str, float | int | str | bool] | None = None,
        key: str | None = None,
    ) -> bool:
        """Raise an alert; return False if it is muted (site dark, detector off for this home) or already open.

        Life-safety alerts are never deduplicated, muted or delayed here (fusion groups them into one incident).
        With a ``key``, the condition stays open until :meth:`clear` so it is raised once, not per reading.
        A behavioural alert of :data:`~detection.models.CHECKIN_TYPES` is held and the elder is asked first
        (``checkin_window_s``; see :class:`~detection.detectors.checkin.CheckInDetector`). Raising an alert no
        longer keeps the day out of the baseline: only a confirmed incident does (:meth:`Engine.label_outcome`).
        """
        if home.site_offline and type_ in SUPPRESSED_WHEN_DARK:
            return False
        if home.off and type_ in BEHAVIOURAL and type_.value in home.off:
            return False
        if home.notice_id and type_ in BEHAVIOURAL and notice_holds(home, t_ms):
            home.notice_held += 1  # the elder is known to be away (外出报备): nobody is paged for it
            return False
        if key is not None:
            if key in home.open:
                return False
            home.open[key] = t_ms
        alert = Alert(
            site=home.site,
            type=type_,
            severity=severity,
            time_ms=t_ms,
            explanation=en,
            explanation_zh=zh,
            device=device,
            evidence=evidence or {},
        )
        window = self.config.checkin_window_s
        if window > 0 and type_ in CHECKIN_TYPES:
            home.checkin_alerts.append(alert)
            home.checkin_keys.append(key or "")
            if home.checkin_ms == NEVER:
                home.checkin_ms = t_ms
                self.timers.schedule(home.site, CHECKIN_TIMER, t_ms + window * 1000)
                self.checkins.append(
                    CheckIn(
                        site=home.site, time_ms=t_ms, what="prompt", types=(type_.value,), prompt_ms=t_ms, detail=en
                    )
                )
            return True
        self.page(home, alert)
        return True

    def page(self, home: HomeState, alert: Alert) -> None:
        """Send an alert out (a page); behavioural pages count against the home's alarm-fatigue budget."""
        self.out.append(alert)
        record_page(self.config, home, alert)

    def clear(
        self,
        home: HomeState,
        key: str,
        type_: AlertType,
        t_ms: int,
        en: str,
        zh: str,
        *,
        device: str | None = None,
    ) -> bool:
        """Report that an open condition ended (``clears=True``); False if it was not open."""
        raised = home.open.pop(key, None)
        if raised is None:
            return False
        self.out.append(
            Alert(
                site=home.site,
                type=type_,
                severity=Severity.INFO,
                time_ms=t_ms,
                explanation=en,
                explanation_zh=zh,
                device=device,
                evidence={"open_min": round((t_ms - raised) / MIN_MS, 1)},
                clears=True,
            )
        )
        return True


class Detector:
    """Base class: which readings and timers a detector handles. Subclasses override the hooks they need."""

    name: ClassVar[str] = "detector"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset()
    """``(kind, type)`` pairs routed to :meth:`on_reading` (after presence tracking has run)."""
    only_on_flags: ClassVar[bool] = False
    """True when the detector only reacts to what presence tracking made of a reading (a bed exit, activity, a
    door): the engine then skips it for the bulk of readings that change nothing (vitals samples, heartbeats)."""
    timer_names: ClassVar[tuple[str, ...]] = ()
    """Timer names (or ``prefix:`` for per-device timers) routed to :meth:`on_timer`.

    A per-device timer must be named ``prefix:`` + one of the home's device ids: the sliced snapshot finds a home's
    timers by these names (:class:`detection.engine.SnapshotCapture`) and refuses a snapshot with any other name."""
    held_by_backlog: ClassVar[bool] = True
    """False for timers that must fire on time even while the home's buffered readings are still arriving (a fall's
    follow-up); the others wait for the backlog (``DetectConfig.backlog_settle_s``)."""

    def __init__(self, *, config: DetectConfig) -> None:
        self.config = config

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Handle one reading at event time ``t`` (O(1), synchronous); ``flags`` come from presence tracking."""

    def on_timer(self, ctx: Context, home: HomeState, name: str, due: int) -> None:
        """Handle a timer of this detector that fell due at event time ``due``."""

    def on_start(self, ctx: Context, home: HomeState, t: int) -> None:
        """Arm the home's first timers when the engine first sees it."""

    def on_day_end(self, ctx: Context, home: HomeState, t: int) -> None:
        """Called at each care-day boundary after the day was archived and the baseline refitted."""

    def on_baseline(self, ctx: Context, home: HomeState, t: int) -> None:
        """Called at ``t`` when a new baseline was installed (a refit: nightly, or after a worker's label)."""


ALL_UPLINK = frozenset({MessageType.TELEMETRY, MessageType.EVENT, MessageType.STATUS})


def device_where(home: HomeState, device: str) -> tuple[str, str]:
    """Where a device of the home is, for an explanation: (``卫生间的``, ``" in the bathroom"``), or empty strings.

    A responder who reads "the call button in the bathroom" knows where to look first.
    """
    dev = home.devices.get(device)
    return where(dev.room if dev is not None else None)


def pairs(kind: DeviceKind, *types: MessageType) -> frozenset[tuple[DeviceKind, MessageType]]:
    """``(kind, type)`` input pairs for a detector declaration."""
    return frozenset((kind, t) for t in (types or tuple(ALL_UPLINK)))


def fmt_min(minutes: float) -> str:
    """Minutes as ``1 h 05 min`` / ``42 min`` / ``30 s`` for explanations."""
    if 0 < minutes < 1:
        return f"{minutes * 60:.0f} s"
    m = int(round(minutes))
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min"


def fmt_min_zh(minutes: float) -> str:
    """Minutes as ``1小时05分钟`` / ``42分钟`` / ``30秒``."""
    if 0 < minutes < 1:
        return f"{minutes * 60:.0f}秒"
    m = int(round(minutes))
    return f"{m // 60}小时{m % 60:02d}分钟" if m >= 60 else f"{m}分钟"
