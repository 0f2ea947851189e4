"""The planned life of one home (:class:`Plan`): its state timeline and what incidents do to the devices.

The planner (:mod:`firmware_sim.planner`) and the incident modules (:mod:`firmware_sim.incidents`) write it; the
renderers (:mod:`firmware_sim.renderers`) read it. It also names the alert types incidents expect.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from firmware_sim.models import HomeSpec, Incident, Malformed, State

# Alert type values of the backend (detection.models.AlertType), restated as plain strings on purpose.
SOS: Final = "sos"
CALL_BUTTON: Final = "call_button"
FALL: Final = "fall"
SMOKE: Final = "smoke"
GAS: Final = "gas"
VITALS_CRITICAL: Final = "vitals_critical"
APNEA: Final = "apnea"
NIGHT_BED_EXIT: Final = "night_bed_exit"
INACTIVITY: Final = "inactivity"
NOT_UP: Final = "not_up"
NIGHT_DOOR: Final = "night_door"
OUT_NOT_BACK: Final = "out_not_back"
VITALS_TREND: Final = "vitals_trend"
DEVICE_OFFLINE: Final = "device_offline"
SITE_OFFLINE: Final = "site_offline"
LOW_BATTERY: Final = "low_battery"
TAMPER: Final = "tamper"
NOT_WORN: Final = "not_worn"
DEVICE_FAULT: Final = "device_fault"


@dataclass(slots=True)
class Effects:
    """What incidents and faults do to the devices (consumed by the renderer); mutable while planning."""

    vitals: list[tuple[int, int, float, float | None]] = field(default_factory=list)
    """(start, end, heart rate, breathing rate or None) overrides."""
    apneas: list[tuple[int, float]] = field(default_factory=list)
    band_events: list[tuple[int, str, float]] = field(default_factory=list)
    """(time, 'sos' | 'fall', confidence)."""
    button_events: list[tuple[int, str]] = field(default_factory=list)
    smoke_events: list[tuple[int, str, int | str | None]] = field(default_factory=list)
    """(time, 'alarm' | 'silence' | 'clear' | 'fault' | 'test', level or code)."""
    gas_events: list[tuple[int, str, tuple[int, bool] | str | None]] = field(default_factory=list)
    """(time, 'alarm' | 'clear' | 'test' | 'fault', (%LEL, valve closed) or code): the gas detector (own streams)."""
    offline: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    tamper: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    outages: list[tuple[int, int, str]] = field(default_factory=list)
    """(start, end, 'wan' | 'reboot') gateway outages."""
    skew: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Device kind → (from time, clock offset ms)."""
    battery: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Device kind → (level % at start, drain % per day)."""
    not_worn_days: set[int] = field(default_factory=set)
    hr_trend: tuple[int, int, float] | None = None
    """(start, end, bpm added by the end): a slow rise of the resting heart rate."""
    fast_band: list[tuple[int, int]] = field(default_factory=list)
    """Intervals in which the band samples every minute (it does so on abnormal readings)."""


@dataclass(slots=True)
class Plan:
    """The planned life of one home over the period: state timeline, door pulses, incidents, effects."""

    spec: HomeSpec
    start_ms: int
    days: int
    points: list[tuple[int, int]]
    """(time, State) change points, sorted, first at ``start_ms``."""
    door_pulses: list[int]
    """Times of an open+close pair by someone else (visitor, carer, rescuer) while the elder stays home."""
    wake: list[int]
    bed: list[int]
    incidents: list[Incident] = field(default_factory=list)
    visits: list[tuple[int, int]] = field(default_factory=list)
    """(arrival, departure) of ordinary visitors: they move about the living room (its PIR sees them)."""
    sitter_visits: list[tuple[int, int]] = field(default_factory=list)
    """(arrival, departure) of someone looking after the empty home during a long absence (post, plants): in through
    the front door, about the living room, out again. Unlike ``visits`` they happen while the elder is away."""
    effects: Effects = field(default_factory=Effects)
    worn: list[tuple[int, bool]] = field(default_factory=list)
    gas_seed: int = 0
    """Seed of the gas detector's rendering stream (drawn by :func:`firmware_sim.incidents.gas.plan_gas`)."""
    """Wristband worn-state change points."""
    malformed: list[Malformed] = field(default_factory=list)
    """Malformed messages the home's cheap devices send (device-faulty mix; see :mod:`firmware_sim.malformed`)."""

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Timeline as (start times int64, states int8) for vectorised lookups."""
        t = np.fromiter((p[0] for p in self.points), dtype=np.int64, count=len(self.points))
        s = np.fromiter((p[1] for p in self.points), dtype=np.int8, count=len(self.points))
        return t, s

    def state_at(self, t: int) -> State:
        """State in effect at time ``t``."""
        i = bisect.bisect_right(self.points, (t, 99)) - 1
        return State(self.points[max(i, 0)][1])

    def override(self, a: int, b: int, state: State) -> None:
        """Replace whatever was planned in ``[a, b)`` by ``state``; what was planned after ``b`` resumes."""
        resume = self.state_at(b)
        pts = [p for p in self.points if not a <= p[0] <= b]
        bisect.insort(pts, (a, int(state)))
        bisect.insort(pts, (b, int(resume)))
        self.points = dedupe(pts)
        self.door_pulses = [t for t in self.door_pulses if not a <= t <= b]
        self.visits = [(s, e) for s, e in self.visits if e < a or s > b]
        self.sitter_visits = [(s, e) for s, e in self.sitter_visits if e < a or s > b]


def dedupe(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Change points without repeats: the last state at a time wins, a state repeated in a row is dropped."""
    out: list[tuple[int, int]] = []
    for t, s in points:
        if out and out[-1][0] == t:
            out[-1] = (t, s)
        elif out and out[-1][1] == s:
            continue
        else:
            out.append((t, s))
    return out
