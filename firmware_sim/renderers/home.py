"""What the device renderers of one home share: its plan, random stream, radios, clocks and firmware state.

Every renderer (one module per device kind) reads and advances this state; :class:`~firmware_sim.renderers.
HomeRenderer` runs them in a fixed order so a seed gives byte-identical output.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Final

import numpy as np

from firmware_sim.models import (
    ABSENT,
    DAY_MS,
    HOUR_MS,
    IN_BED,
    TZ_OFFSET_MS,
    Mix,
    State,
)
from firmware_sim.plan import Plan
from firmware_sim.wire import (
    HomeWire,
    WireMessage,
)

# Transport classes: how hard the device/gateway tries to deliver.
TELEMETRY: Final = 0
EVENT: Final = 1
LIFE_SAFETY: Final = 2
GATEWAY: Final = 3
MALFORMED: Final = 4
"""A malformed message from the ground truth: delivered exactly once (planned clear of outages)."""
RELIABLE: Final = 5
"""An alarm-type report (sensor fault, tamper, apnea): acknowledged and retried by the device, so never lost on
the radio (an ordinary event is); the ground truth can then expect the alert it carries."""

KEEPALIVE_MS: Final = 30_000
WILL_DELAY_MS: Final = KEEPALIVE_MS * 3 // 2
"""The broker publishes the Last Will 1.5 keep-alive periods after the gateway went silent."""
GATEWAY_HEARTBEAT_MS: Final = 240_000
"""The gateway re-publishes its retained online status every 4 min (contract: silence > 5 min is offline)."""
MOTION_WINDOW_S: Final = 600
BAND_BUFFER: Final = 12
"""Samples a wristband keeps while out of range, uploaded when it is back home."""

IS_BED: Final = np.array([s in IN_BED for s in State], dtype=bool)
"""Lookup table by state (``np.isin`` costs ~250 µs a call, a table lookup ~1 µs)."""
IS_ABSENT: Final = np.array([s in ABSENT for s in State], dtype=bool)
HR_OFFSET: Final = np.array([-9, -6, -2, 8, 10, 8, 20, 15, 5, 2, -6], dtype=np.float64)
RR_OFFSET: Final = np.array([-2.0, -1.5, 0, 2, 2, 2, 4, 3, 1, 0.5, -1.5], dtype=np.float64)
STEPS_PER_MIN: Final = np.array([0, 0, 0, 12, 8, 10, 60, 0, 30, 1, 1], dtype=np.float64)
"""Wristband steps per minute by state. A doze in the armchair keeps the sit's odd wrist movement: the band's view of
the afternoon is the one it had when armchair naps were sits (docs/simulator.md, "Afternoons calibrated")."""
PIR_PER_MIN: Final = np.array([0, 0, 0, 2.5, 0.8, 0.3, 0, 0, 0, 0.6, 0], dtype=np.float64)
"""Living-room PIR triggers per minute by state, before the home's own field of view (:attr:`Home.pir_seen`)."""
DOZING_PIR_SHARE: Final = 0.1
"""A dozing elder triggers the PIR this share as often as the same elder sitting awake in the same armchair."""
PIR_EVENT_SHARE: Final = 0.8
"""Share of homes whose PIR is event-driven (Zigbee style: a report per trigger after its blind time, a status
heartbeat every 50–60 min); the others count triggers per 10-min window (telemetry) as contract v1 also allows."""
VISITOR_PIR_PER_MIN: Final = 1.5
"""Extra living-room triggers per minute while a visitor is in (walking about, sitting down, leaving)."""


@dataclass(frozen=True, slots=True)
class Faults:
    """Delivery fault rates of a home (per message)."""

    loss: float
    duplicate: float
    late: float


FAULTS: Final[dict[Mix, Faults]] = {
    Mix.NORMAL: Faults(loss=0.002, duplicate=0.001, late=0.001),
    Mix.INCIDENT_RICH: Faults(loss=0.003, duplicate=0.002, late=0.002),
    Mix.DEVICE_FAULTY: Faults(loss=0.03, duplicate=0.01, late=0.01),
}


class Out:
    """Messages of one home and one day before delivery: device time order per device, any order overall."""

    __slots__ = ("cls", "payloads", "release", "topics", "true")

    def __init__(self) -> None:
        self.true: list[int] = []
        self.release: list[int] = []
        self.topics: list[str] = []
        self.payloads: list[bytes] = []
        self.cls: list[int] = []

    def add(self, true_ms: int, msg: WireMessage, cls: int, release: int | None = None) -> None:
        """One message sent at ``true_ms`` (released to the radio at ``release``, default the same)."""
        self.true.append(true_ms)
        self.release.append(true_ms if release is None else release)
        self.topics.append(msg.topic)
        self.payloads.append(msg.payload)
        self.cls.append(cls)


class Home:
    """One home's rendering state (draws happen here, in a fixed order) and the helpers every device uses."""

    def __init__(self, *, plan: Plan, rng: np.random.Generator, mattress_cadence_s: float) -> None:
        self.plan = plan
        self.rng = rng
        self.spec = plan.spec
        self.site = plan.spec.site
        self.dev = plan.spec.devices
        self.p = plan.spec.profile
        self.fx = plan.effects
        self.faults = FAULTS[plan.spec.mix]
        self.seg_t, self.seg_s = plan.arrays()
        self.seg_t_list: list[int] = self.seg_t.tolist()
        self.seg_s_list: list[int] = self.seg_s.tolist()
        self.wire = HomeWire(site=self.site, gateway=self.spec.gateway)
        self.mat_cad = int(mattress_cadence_s * 1000)
        self.mat_phase = int(rng.integers(0, self.mat_cad))
        self.band_cad = int(rng.choice([60_000, 120_000, 300_000, 600_000], p=[0.1, 0.2, 0.5, 0.2]))
        self.band_phase = int(rng.integers(0, self.band_cad))
        self.hb = {k: int(rng.uniform(1, 5) * HOUR_MS) for k in ("door", "smoke", "call_button")}
        self.hb["motion"] = 4 * HOUR_MS
        self.hb["mattress"] = HOUR_MS
        self.hb["wristband"] = 4 * HOUR_MS
        self.hb_phase = {k: int(rng.integers(0, v)) for k, v in self.hb.items()}
        self.rssi = {k: int(rng.integers(-85, -50)) for k in self.dev}
        self.clock = {k: int(rng.normal(0, 800)) for k in self.dev}
        self.fw = {"mattress": "mat-1.3.0", "wristband": "band-5.0.2", "door": "door-2.1", "smoke": "smk-3.0.4"}
        self.gw_phase = int(rng.integers(0, GATEWAY_HEARTBEAT_MS))
        self.gw_boot = plan.start_ms - int(rng.uniform(1, 30) * DAY_MS)
        self.band_level = float(rng.uniform(60, 100))
        self.band_buffer: list[tuple[int, WireMessage, int]] = []
        self.smoke_temp = float(rng.uniform(17, 24))
        self.worn_t = np.array([w[0] for w in plan.worn], dtype=np.int64)
        self.worn_v = np.array([w[1] for w in plan.worn], dtype=bool)
        rest_drift = np.cumsum(rng.normal(0, 0.25, size=plan.days + 2))
        self.rest_drift = rest_drift - rest_drift.mean()
        # Firmware state carried from one chunk to the next within a local day (chunks may be shorter than a day).
        self.steps_base = 0
        self.motion_prev = 1
        self.smoke_test_at: int | None = None
        # The PIR's firmware and field of view, drawn last so the draws above keep their place in the stream.
        self.pir_events = bool(rng.random() < PIR_EVENT_SHARE)
        self.pir_blind_ms = int(rng.choice([30_000, 60_000, 120_000]))
        seen = PIR_PER_MIN * float(rng.uniform(0.6, 1.2))
        seen[State.KITCHEN] *= float(rng.uniform(0.0, 1.0))  # the kitchen door may be out of its view
        seen[State.TOILET] *= float(rng.uniform(0.0, 1.0))
        # The armchair: a seated person moves too little for most PIRs (a trigger every 8 min at best, one in 3 h in a
        # blind spot).
        seen[State.SITTING] = float(np.exp(rng.uniform(np.log(0.005), np.log(0.12))))
        seen[State.DOZING] = seen[State.SITTING] * DOZING_PIR_SHARE  # no draw: the stream keeps its place
        self.pir_seen = seen
        if self.pir_events:
            self.hb["motion"] = int(rng.uniform(50, 60) * 60_000)
            self.hb_phase["motion"] = int(rng.integers(0, self.hb["motion"]))

    def states(self, t: np.ndarray) -> np.ndarray:
        """The elder's state at each time of ``t`` (vectorised)."""
        idx = np.searchsorted(self.seg_t, t, side="right") - 1
        states: np.ndarray = self.seg_s[np.maximum(idx, 0)]
        return states

    def state(self, t: int) -> State:
        """The elder's state at ``t``."""
        return State(self.seg_s_list[max(bisect.bisect_right(self.seg_t_list, t) - 1, 0)])

    def offline(self, kind: str, t: int) -> bool:
        """True while the device of ``kind`` is dead or out of radio range."""
        return any(a <= t < b for a, b in self.fx.offline.get(kind, ()))

    def ts(self, kind: str, t: int) -> int:
        """The device's own timestamp for true time ``t`` (its clock offset and any skew)."""
        skew = self.fx.skew.get(kind)
        extra = skew[1] if skew is not None and t >= skew[0] else 0
        return max(0, t + self.clock[kind] + extra)

    def ts_arr(self, kind: str, t: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`ts`."""
        out = t + self.clock[kind]
        skew = self.fx.skew.get(kind)
        if skew is not None:
            out = out + np.where(t >= skew[0], skew[1], 0)
        clipped: np.ndarray = np.maximum(out, 0)
        return clipped

    def rest_hr(self, t: np.ndarray) -> np.ndarray:
        """Resting heart rate at each time: personal level, daily drift, any slow trend."""
        day = np.clip((t - self.plan.start_ms) // DAY_MS, 0, len(self.rest_drift) - 1)
        hr: np.ndarray = self.p.rest_hr + self.rest_drift[day]
        trend = self.fx.hr_trend
        if trend is not None:
            a, b, delta = trend
            hr = hr + delta * np.clip((t - a) / (b - a), 0, 1)
        return hr

    def vitals_override(self, t: np.ndarray, hr: np.ndarray, rr: np.ndarray) -> None:
        """Overwrite heart and breathing rates inside planned vital-sign episodes (in place)."""
        for a, b, v_hr, v_rr in self.fx.vitals:
            m = (t >= a) & (t < b)
            if m.any():
                hr[m] = v_hr + self.rng.normal(0, 1.5, size=int(m.sum()))
                if v_rr is not None:
                    rr[m] = v_rr

    def battery(self, kind: str, t: int) -> int:
        """Battery percent of the device at ``t`` (whole percent, truncated)."""
        level, drain = self.fx.battery[kind]
        return int(max(0.0, min(100.0, level - drain * (t - self.plan.start_ms) / DAY_MS)))

    @staticmethod
    def midnight(t: int) -> bool:
        """True at a local midnight (a chunk that starts a day)."""
        return (t + TZ_OFFSET_MS) % DAY_MS == 0

    def grid(self, c0: int, c1: int, period: int, phase: int) -> np.ndarray:
        """Times ``phase + k * period`` in ``[c0, c1)``: a device's fixed cadence."""
        first = c0 + (phase - c0) % period
        return np.arange(first, c1, period, dtype=np.int64)

    def rssi_now(self, kind: str) -> int:
        """The device's signal strength now: its own level plus a little noise."""
        return int(np.clip(self.rssi[kind] + self.rng.integers(-4, 5), -120, -20))
