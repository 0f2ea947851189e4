"""Mutable per-home and per-device state of the detection core, snapshotted with msgspec.

These are plain mutable msgspec Structs (not domain types): the engine owns them, updates them in place on
the hot path (slot attribute access, no dict per reading). :meth:`detection.engine.Engine.snapshot` encodes all of
them, together with the armed timers, to MessagePack in one call; the backend uses
:meth:`detection.engine.Engine.begin_snapshot` instead, which encodes the same bytes in short slices.
"""

from __future__ import annotations

import msgspec

from detection.baseline import Baseline, DaySummary
from detection.models import Alert
from gateway.models import DeviceKind

NEVER = -1
"""Sentinel event time: "has not happened"."""
LAG_WINDOW_MS = 30 * 60_000
"""Window of received time over which a device's smallest lag is taken (:attr:`DeviceState.lag_floor_ms`)."""
NO_LAG_YET = 1 << 62
""":attr:`DeviceState.lag_min_ms` of a window that has seen no message yet."""


class DeviceState(msgspec.Struct, kw_only=True):
    """What the engine remembers about one device."""

    kind: DeviceKind
    room: str | None = None
    """Room from the registry (``entrance`` for the front-door contact)."""
    inside: bool = False
    """A sensor whose firing proves someone is inside the home: PIR, mattress, a contact that is not the entrance."""
    last_seen_ms: int = NEVER
    """Last message, or when the engine started watching the device (registry): its offline timer runs from here."""
    last_reading_ms: int = NEVER
    """Event time of the last reading processed (never the registry's start of watching): a replay after a restart
    skips what is not newer (:meth:`detection.engine.Engine.catch_up`)."""
    last_seq: int = NEVER
    last_status_ms: int = NEVER
    """Last heartbeat (``status``) of an event-driven device: its cadence is learned from these, not from events."""
    max_gap_ms: int = 0
    """Longest healthy gap seen so far (learned cadence): between any two messages of a periodic device, between
    two heartbeats of an event-driven one (a PIR's events follow the person, not the device's health)."""
    n_gaps: int = 0
    offline: bool = False
    low_battery: bool = False
    tamper: bool = False
    not_worn_since_ms: int = NEVER
    vitals_out_since_ms: int = NEVER
    vitals_alerted: bool = False
    vitals_n_out: int = 0
    vitals_n_in: int = 0
    vitals_sum: float = 0.0
    """Sum of the out-of-range samples of the running episode (its mean decides how long it must last)."""
    spo2_low_since_ms: int = NEVER
    last_steps: int = NEVER
    lag_floor_ms: int = 0
    """Floor of (received − device time): jumps down at once, and climbs only to the smallest lag of two whole
    windows of :data:`LAG_WINDOW_MS` (received time). Honest devices deliver most messages live, so a floor of
    minutes means the device clock is behind; a buffer flushed after an outage (hours of lag, for seconds) is not.
    It used to climb by 1/32 of the excess per message: two buffered readings of a 4-h outage lifted it past
    5 min, and the rest of the flush was then read at its arrival time."""
    lag_min_ms: int = NO_LAG_YET
    """Smallest lag of the current window (:data:`LAG_WINDOW_MS`)."""
    lag_prev_min_ms: int = 0
    """Smallest lag of the previous window."""
    lag_window_ms: int = NEVER
    """Received time at which the current window began."""
    offline_armed: bool = False
    """Mirror of "the ``off:`` timer of this device is armed" (saves a heap-index lookup per message)."""
    left_door_ms: int = NEVER
    """Wristband: the last front-door opening while it was being heard (a band silent since then went out with its
    wearer, :mod:`detection.detectors.offline`)."""
    settle_ms: int = NEVER
    """Not called offline before this: the home's gateway came back and the device's next message may not be due
    yet (its silence from before the outage still counts: a device that died before it is called offline then)."""


class HomeState(msgspec.Struct, kw_only=True):
    """Everything the detectors know about one home, rebuilt from a snapshot plus history after a restart."""

    site: str
    baseline: Baseline
    day: DaySummary
    devices: dict[str, DeviceState] = msgspec.field(default_factory=dict)
    history: list[DaySummary] = msgspec.field(default_factory=list)
    solitary: bool = True
    bedbound: bool = False
    has_mattress: bool = False
    gateway_seen: bool = False
    silence_armed: bool = False

    created_ms: int = NEVER
    last_seen_ms: int = NEVER
    site_offline: bool = False
    site_offline_since_ms: int = NEVER
    backlog_since_ms: int = NEVER
    """Received time of the first buffered reading of the backlog now arriving (a gateway's buffer flushed after
    an outage): the home's timers wait for the rest of it, ``backlog_hold_max_s`` at most from here."""
    backlog_until_ms: int = NEVER
    """The last buffered reading's received time + ``backlog_settle_s``: the backlog has arrived after this."""

    in_bed: bool = False
    bed_since_ms: int = NEVER
    out_of_bed_since_ms: int = NEVER
    up_ms: int = NEVER
    up_day: int = NEVER
    """Care day on which the elder was confirmed up (out of bed long enough in the morning)."""

    last_activity_ms: int = NEVER
    last_activity_src: str = ""
    last_inside_ms: int = NEVER
    """Last sign of someone inside (motion, bed, call button), not counting the door itself."""
    inside_start_ms: int = NEVER
    """Earliest time the last inside evidence proves presence (a motion count covers its whole window)."""
    door_open_ms: int = NEVER
    door_close_ms: int = NEVER
    away: bool = False
    away_since_ms: int = NEVER
    visit_ms: int = NEVER
    """Return from an absence that lasted the night (or went on through a visit): if the elder leaves again by day
    within ``visit_max_min`` it was a visit, and the absence goes on (out-not-back pages once per absence)."""
    away_goes_on: bool = False
    """The current departure ended such a visit: no out-not-back page for it."""
    notice_id: int = 0
    """The away notice (外出报备) in force for this home, 0 if none (``detection.notice``; the store's id)."""
    notice_from_ms: int = NEVER
    notice_until_ms: int = NEVER
    notice_empty: bool = False
    """The home was seen empty under the notice (out, or nobody inside for ``notice.EMPTY_GAP_MIN``)."""
    notice_in_ms: int = NEVER
    """Start of the current spell of someone inside under the notice (a visit, or the elder back)."""
    notice_back_ms: int = NEVER
    """When the home showed the elder back (a stay longer than a visit): the notice no longer holds."""
    notice_held: int = 0
    """Behavioural alerts held by notices (not paged), for the resident page."""

    night_exit_ms: int = NEVER
    """Start of the current night bed exit, or NEVER."""
    night_door_ms: int = NEVER
    fall_ms: int = NEVER
    apnea_times: list[int] = msgspec.field(default_factory=list)

    open: dict[str, int] = msgspec.field(default_factory=dict)
    """Conditions alerted and not yet cleared, by key, with the event time they were raised."""

    last_room: str = ""
    """Room of the last sign of someone inside ("" when the sensor has no room)."""
    sparse: bool = False
    """No motion sensor outside the bedroom (contacts only): silence is weaker evidence, departures need longer."""
    close_watch: bool = False
    """A resident is tagged 重点关注: the inactivity backstop is the shorter close-watch one."""
    bedroom_sensor: bool = False
    """A sensor in the bedroom: at night, activity elsewhere followed by silence is a night exit without return."""
    off: dict[str, str] = msgspec.field(default_factory=dict)
    """Behavioural alert types this home's devices cannot support, with the reason (shown on the resident page)."""
    checkin_ms: int = NEVER
    """Time of the open check-in prompt, or NEVER."""
    checkin_alerts: list[Alert] = msgspec.field(default_factory=list)
    """Behavioural alerts held while the check-in prompt waits for an answer (paged if none comes)."""
    checkin_keys: list[str] = msgspec.field(default_factory=list)
    changes: list[tuple[int, str, float, float]] = msgspec.field(default_factory=list)
    """Recent changes of the learned limits: (event time, what, old, new), newest last (``baseline_changes``)."""
    fatigue_pages: list[tuple[int, str]] = msgspec.field(default_factory=list)
    """Behavioural pages (event time, alert type) in the alarm-fatigue window (detection/fatigue.py)."""
    fatigue_inactivity_steps: int = 0
    fatigue_not_up_steps: int = 0
    """Steps by which the inactivity limit / not-up deadline were widened because the home was over its budget."""


def notice_holds(home: HomeState, t_ms: int) -> bool:
    """True if an away notice of this home is in force at ``t_ms`` and the home has not shown the elder back."""
    return home.notice_from_ms <= t_ms < home.notice_until_ms and home.notice_back_ms == NEVER


class EngineSnapshot(msgspec.Struct, kw_only=True):
    """Serialised engine: format version, event-time watermark, homes and armed timers."""

    version: int
    now_ms: int
    homes: list[HomeState]
    timers: list[tuple[str, str, int]]
