"""Daily routines and incidents of one elder: a timeline of states plus the device effects incidents cause.

The plan is built once per home for the whole period (a few hundred segments), then devices render
their messages from it day by day (:mod:`firmware_sim.renderers`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np

from firmware_sim.models import (
    ABSENT,
    DAY_MS,
    HOUR_MS,
    IN_BED,
    MINUTE_MS,
    TZ_OFFSET_MS,
    HomeSpec,
    Incident,
    Malformed,
    Mix,
    State,
)

# Alert type values of the backend (detection.models.AlertType), restated as plain strings on purpose.
SOS: Final = "sos"
CALL_BUTTON: Final = "call_button"
FALL: Final = "fall"
SMOKE: Final = "smoke"
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

BEHAVIOUR_INCIDENTS: Final[dict[str, float]] = {
    "sos_press": 1.0,
    "call_button_press": 1.0,
    "accidental_press": 1.0,
    "fire": 0.4,
    "burnt_cooking": 1.0,
    "fall_detected": 1.0,
    "long_lie": 1.0,
    "night_bed_exit": 1.0,
    "not_up": 1.0,
    "wandering": 1.5,
    "long_absence": 0.7,
    "bradycardia": 0.8,
    "tachycardia": 0.8,
    "apnea": 0.8,
    "vitals_trend": 0.4,
}
"""Relative weights of person incidents (filtered by what the profile allows)."""

DEVICE_INCIDENTS: Final[dict[str, float]] = {
    "device_offline": 1.0,
    "low_battery": 1.0,
    "tamper": 0.6,
    "gateway_offline": 1.0,
    "gateway_reboot": 1.0,
    "smoke_fault": 0.5,
    "not_worn": 0.8,
    "clock_skew": 0.6,
}
"""Relative weights of device incidents."""

ABSENCE_DAYS: Final = 7
"""Days a long absence blocks for other person incidents (it lasts 2–6 days plus a few hours)."""
MOMENTARY_EVIDENCE: Final = frozenset(
    {
        "sos_press",
        "call_button_press",
        "accidental_press",
        "fire",
        "burnt_cooking",
        "fall_detected",
        "long_lie",
        "night_bed_exit",
        "not_up",
        "wandering",
        "bradycardia",
        "tachycardia",
        "apnea",
        "smoke_fault",
        "tamper",
    }
)
"""Incidents whose evidence is a few messages at a known time; gateway outages keep clear of them."""
OUTAGE_CLEARANCE_MS: Final = 15 * MINUTE_MS
EVAL_AFTER_MS: Final = 5 * MINUTE_MS
"""How long after an incident's end an alert still counts for it (``detection.evaluate.AFTER_MS``)."""
LIFE_SAFETY_RETRY_MS: Final = 5_000
"""A life-safety event a device could not deliver (gateway rebooting) is retried until acknowledged."""
QUEUE_FLUSH_MS: Final = 2_000
"""After an internet outage the gateway sends what it queued within a few seconds (see the renderer)."""

BATTERY_KINDS: Final = ("door", "smoke", "call_button", "motion")
LOW_BATTERY_PCT: Final = 20
"""Battery level at or below which the ground truth expects a low-battery alert."""


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
    effects: Effects = field(default_factory=Effects)
    worn: list[tuple[int, bool]] = field(default_factory=list)
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
        self.points = _dedupe(pts)
        self.door_pulses = [t for t in self.door_pulses if not a <= t <= b]


def _overlaps_evidence(plan: Plan, a: int, b: int) -> bool:
    """True if a gateway outage ``[a, b)`` would come near an incident whose evidence is a few messages.

    An outage over an SOS or a fire delays or loses its evidence: the coincidence is rare in life and would only
    blur the evaluation, so that outage is left out of the run.
    """
    return any(
        a <= inc.end_ms + OUTAGE_CLEARANCE_MS and inc.start_ms - OUTAGE_CLEARANCE_MS <= b
        for inc in plan.incidents
        if inc.type in MOMENTARY_EVIDENCE
    )


def _dedupe(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for t, s in points:
        if out and out[-1][0] == t:
            out[-1] = (t, s)
        elif out and out[-1][1] == s:
            continue
        else:
            out.append((t, s))
    return out


def _m(minutes: float) -> int:
    return int(minutes * MINUTE_MS)


class Planner:
    """Draws one home's routine day by day, then schedules incidents on it."""

    def __init__(self, *, spec: HomeSpec, rng: np.random.Generator, start_ms: int, days: int) -> None:
        self.spec = spec
        self.p = spec.profile
        self.rng = rng
        self.start_ms = start_ms
        self.days = days

    # -- routine -------------------------------------------------------------------------------------------------

    def plan(self) -> Plan:
        """Build the routine, then the incidents, then the band's worn state."""
        plan = self._routine()
        self._incidents(plan)
        self._devices(plan)
        plan.worn = self._worn(plan)
        _reconcile(plan)
        return plan

    def _routine(self) -> Plan:
        rng, p = self.rng, self.p
        pts: list[tuple[int, int]] = [(self.start_ms, int(State.SLEEP))]
        pulses: list[int] = []
        wakes: list[int] = []
        beds: list[int] = []
        night_start = self.start_ms
        # One day beyond the period so the last night is complete.
        for d in range(self.days + 1):
            day0 = self.start_ms + d * DAY_MS
            wake = day0 + _m(rng.normal(p.wake_min, p.wake_sd))
            self._night(pts, night_start, wake)
            wakes.append(wake)
            cur = wake
            if p.bedbound:
                cur = self._bedbound_day(pts, pulses, day0, wake)
            else:
                cur = self._active_day(pts, pulses, day0, wake)
            bed = max(cur + _m(15), day0 + _m(rng.normal(p.bed_min, p.bed_sd)))
            if not p.bedbound:
                pts.append((bed - _m(rng.uniform(8, 20)), int(State.TOILET)))
            pts.append((bed, int(State.SLEEP)))
            beds.append(bed)
            night_start = bed
        return Plan(
            spec=self.spec,
            start_ms=self.start_ms,
            days=self.days,
            points=_dedupe(sorted(pts)),
            door_pulses=sorted(pulses),
            wake=wakes,
            bed=beds,
        )

    def _night(self, pts: list[tuple[int, int]], a: int, b: int) -> None:
        """Sleep from ``a`` to ``b`` with night toilet trips (Poisson count, uniform times)."""
        rng = self.rng
        n = int(rng.poisson(self.p.toilet_rate * (0.3 if self.p.bedbound else 1.0)))
        span = b - a - _m(60)
        trips = sorted(int(x) for x in rng.uniform(a + _m(30), a + _m(30) + max(span, 0), size=n)) if span > 0 else []
        last = a
        for t in trips:
            if t < last + _m(20):
                continue
            pts.append((t, int(State.TOILET)))
            back = t + _m(rng.uniform(3, 9))
            pts.append((back, int(State.SLEEP)))
            last = back
        pts.append((a, int(State.SLEEP)))

    def _active_day(self, pts: list[tuple[int, int]], pulses: list[int], day0: int, wake: int) -> int:
        rng, p = self.rng, self.p

        def add(t: int, state: State, minutes: float) -> int:
            pts.append((t, int(state)))
            return t + _m(minutes)

        cur = add(wake, State.TOILET, rng.uniform(4, 10))
        cur = add(cur, State.HOME, rng.uniform(10, 35))
        cur = add(cur, State.KITCHEN, rng.uniform(20, 35))
        cur = add(cur, State.HOME, rng.uniform(10, 40))
        if rng.random() < p.outing_prob * 0.7:
            t = max(cur, day0 + _m(rng.normal(8.75 * 60, 30)))
            pts.append((cur, int(State.SITTING)))
            cur = add(t, State.OUT, rng.uniform(40, 150))
            cur = add(cur, State.HOME, rng.uniform(5, 20))
        elif rng.random() < 0.5:
            # Taking out the rubbish: a short trip through the front door.
            cur = add(cur, State.OUT, rng.uniform(2, 6))
            cur = add(cur, State.HOME, rng.uniform(5, 20))
        pts.append((cur, int(State.SITTING)))
        cur = max(cur + _m(10), day0 + _m(rng.normal(11.25 * 60, 15)))
        cur = add(cur, State.KITCHEN, rng.uniform(30, 50))
        cur = add(cur, State.HOME, rng.uniform(10, 30))
        if rng.random() < p.nap_prob:
            cur = add(max(cur, day0 + _m(rng.normal(12.9 * 60, 20))), State.NAP, rng.uniform(30, 90))
            cur = add(cur, State.HOME, rng.uniform(10, 30))
        if rng.random() < p.outing_prob * 0.5:
            pts.append((cur, int(State.SITTING)))
            t = max(cur + _m(5), day0 + _m(rng.normal(15 * 60, 40)))
            cur = add(t, State.OUT, rng.uniform(40, 170))
            cur = add(cur, State.HOME, rng.uniform(5, 20))
        pts.append((cur, int(State.SITTING)))
        cur = max(cur + _m(10), day0 + _m(rng.normal(17.25 * 60, 20)))
        cur = add(cur, State.KITCHEN, rng.uniform(30, 55))
        cur = add(cur, State.HOME, rng.uniform(10, 30))
        pts.append((cur, int(State.SITTING)))
        if rng.random() < p.visitor_prob:
            t = day0 + _m(rng.uniform(9.5 * 60, 19 * 60))
            pulses += [t, t + _m(rng.uniform(20, 90))]
        return cur + _m(30)

    def _bedbound_day(self, pts: list[tuple[int, int]], pulses: list[int], day0: int, wake: int) -> int:
        """A bedbound elder lies awake in bed, a carer visits twice and helps into a chair for an hour."""
        rng = self.rng
        pts.append((wake, int(State.BED_AWAKE)))
        carer1 = day0 + _m(rng.normal(8.5 * 60, 15))
        pulses.append(carer1)
        chair = carer1 + _m(rng.uniform(15, 40))
        pts.append((chair, int(State.SITTING)))
        back = chair + _m(rng.uniform(45, 90))
        pts.append((back, int(State.BED_AWAKE)))
        pulses.append(back + _m(rng.uniform(5, 20)))
        nap = max(back + _m(30), day0 + _m(rng.normal(13 * 60, 20)))
        pts.append((nap, int(State.NAP)))
        pts.append((nap + _m(rng.uniform(40, 100)), int(State.BED_AWAKE)))
        carer2 = day0 + _m(rng.normal(16.5 * 60, 15))
        pulses += [carer2, carer2 + _m(rng.uniform(40, 80))]
        if rng.random() < self.p.visitor_prob - 0.6:
            t = day0 + _m(rng.uniform(10 * 60, 15 * 60))
            pulses += [t, t + _m(rng.uniform(20, 60))]
        return carer2 + _m(90)

    # -- incidents ----------------------------------------------------------------------------------------------

    def _allowed(self, kind: str) -> bool:
        p = self.p
        if p.bedbound and kind in {"wandering", "long_lie", "fall_detected", "fire", "burnt_cooking", "not_up"}:
            return False
        if kind == "wandering" and not p.dementia:
            return False
        # A spouse would notice: these silent incidents are simulated only for elders living alone.
        return not (kind in {"long_lie", "night_bed_exit", "not_up"} and p.living != "alone")

    def _counts(self) -> tuple[float, float]:
        per_month = {Mix.NORMAL: (0.4, 0.6), Mix.INCIDENT_RICH: (7.0, 1.5), Mix.DEVICE_FAULTY: (0.6, 6.0)}
        behaviour, device = per_month[self.spec.mix]
        scale = self.days / 30
        return behaviour * scale, device * scale

    def _incidents(self, plan: Plan) -> None:
        rng = self.rng
        n_beh, n_dev = self._counts()
        used_days: set[int] = set()
        first = 3 if self.days >= 7 else 0
        candidates = [d for d in range(first, self.days)]
        kinds = [k for k in BEHAVIOUR_INCIDENTS if self._allowed(k)]
        weights = np.array([BEHAVIOUR_INCIDENTS[k] for k in kinds])
        for _ in range(int(rng.poisson(n_beh))):
            free = [d for d in candidates if d not in used_days and d - 1 not in used_days]
            if not free or not kinds:
                break
            kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
            day = free[int(rng.integers(len(free)))]
            if kind == "long_absence" and not used_days.isdisjoint(range(day, day + ABSENCE_DAYS)):
                continue  # the elder would be away during an incident already planned (an SOS nobody hears)
            if self._behaviour(plan, kind, day):
                used_days.add(day)
                if kind == "long_absence":
                    used_days.update(range(day, day + ABSENCE_DAYS))
        dkinds = list(DEVICE_INCIDENTS)
        dweights = np.array([DEVICE_INCIDENTS[k] for k in dkinds])
        for _ in range(int(rng.poisson(n_dev))):
            kind = dkinds[int(rng.choice(len(dkinds), p=dweights / dweights.sum()))]
            day = int(rng.integers(first, max(first + 1, self.days)))
            if kind == "not_worn" and day in used_days:
                continue
            self._device(plan, kind, day)
            if kind == "not_worn":
                used_days.add(day)
        if self.p.dementia and self.spec.mix is Mix.NORMAL and rng.random() < 0.5 * self.days / 30:
            free = [d for d in candidates if d not in used_days]
            if free:
                self._behaviour(plan, "wandering", free[int(rng.integers(len(free)))])
        plan.incidents.sort(key=lambda i: (i.start_ms, i.id))

    def _add(
        self,
        plan: Plan,
        kind: str,
        a: int,
        b: int,
        *,
        expect: tuple[str, ...] = (),
        forbid: tuple[str, ...] = (),
        device: str | None = None,
        notes: str = "",
    ) -> None:
        iid = f"{self.spec.site}-{len(plan.incidents) + 1:03d}"
        plan.incidents.append(
            Incident(
                id=iid,
                site=self.spec.site,
                type=kind,
                start_ms=a,
                end_ms=b,
                expect=expect,
                forbid=forbid,
                device=device,
                notes=notes,
            )
        )

    @staticmethod
    def _help_arrives(plan: Plan, t: int, rng: np.random.Generator) -> int:
        """Help answers a call at ``t``: a neighbour or carer opens the door 10–30 min later and leaves again."""
        help_at = t + _m(rng.uniform(10, 30))
        plan.door_pulses += [help_at, help_at + _m(rng.uniform(20, 60))]
        return help_at

    def _daytime_home(self, plan: Plan, day: int, states: frozenset[State]) -> int | None:
        """A random time on ``day`` between 09:00 and 19:00 at which the elder is in one of ``states``."""
        day0 = self.start_ms + day * DAY_MS
        for _ in range(40):
            t = day0 + _m(self.rng.uniform(9 * 60, 19 * 60))
            if plan.state_at(t) in states and plan.state_at(t + _m(30)) in states | {State.SITTING, State.HOME}:
                return t
        return None

    def _behaviour(self, plan: Plan, kind: str, day: int) -> bool:  # noqa: C901 - one branch per incident
        rng, dev, fx = self.rng, self.spec.devices, plan.effects
        day0 = self.start_ms + day * DAY_MS
        awake = frozenset({State.HOME, State.SITTING})
        if kind in {"sos_press", "call_button_press", "accidental_press", "fall_detected", "long_lie", "tachycardia"}:
            t = self._daytime_home(plan, day, awake)
            if t is None:
                return False
            if kind == "sos_press":
                fx.band_events.append((t, "sos", 1.0))
                help_at = self._help_arrives(plan, t, rng)
                self._add(plan, kind, t, help_at, expect=(SOS,), device=dev["wristband"], notes="SOS key on the band")
            elif kind == "call_button_press":
                fx.button_events.append((t, "press"))
                help_at = self._help_arrives(plan, t, rng)
                self._add(
                    plan, kind, t, help_at, expect=(CALL_BUTTON,), device=dev["call_button"], notes="real call for help"
                )
            elif kind == "accidental_press":
                delay = int(rng.uniform(3, 20) * 1000)
                fx.button_events += [(t, "press"), (t + delay, "cancel")]
                self._add(
                    plan,
                    kind,
                    t,
                    t + delay,
                    expect=(CALL_BUTTON,),
                    device=dev["call_button"],
                    notes=f"accidental press cancelled by the elder after {delay // 1000} s; no dispatch needed",
                )
            elif kind == "fall_detected":
                lie = _m(rng.uniform(3, 25))
                fx.band_events.append((t, "fall", float(rng.uniform(0.75, 0.98))))
                plan.override(t, t + lie, State.FLOOR)
                self._add(
                    plan,
                    kind,
                    t,
                    t + lie,
                    expect=(FALL,),
                    device=dev["wristband"],
                    notes=f"fall detected by the band; got up alone after {lie // MINUTE_MS} min",
                )
            elif kind == "long_lie":
                lie = _m(rng.uniform(180, 480))
                plan.override(t, t + lie, State.FLOOR)
                plan.door_pulses += [t + lie, t + lie + _m(rng.uniform(30, 90))]
                self._add(
                    plan,
                    kind,
                    t,
                    t + lie,
                    expect=(INACTIVITY,),
                    forbid=(FALL,),
                    notes=f"undetected fall, lying on the floor {lie // MINUTE_MS} min until found",
                )
            else:
                dur = _m(rng.uniform(12, 25))
                fx.vitals.append((t, t + dur, float(rng.uniform(135, 160)), None))
                fx.fast_band.append((t, t + dur))
                plan.override(t, t + dur, State.SITTING)
                self._add(plan, kind, t, t + dur, expect=(VITALS_CRITICAL,), notes="tachycardia at rest")
            return True
        if kind in {"fire", "burnt_cooking"}:
            kitchen = [
                pt for pt in plan.points if pt[1] == State.KITCHEN and day0 + _m(9 * 60) <= pt[0] < day0 + DAY_MS
            ]
            if not kitchen:
                return False
            t = kitchen[int(rng.integers(len(kitchen)))][0] + _m(rng.uniform(5, 15))
            if kind == "burnt_cooking":
                silence = t + int(rng.uniform(20, 90) * 1000)
                clear = t + _m(rng.uniform(2, 6))
                fx.smoke_events += [
                    (t, "alarm", int(rng.integers(8, 20))),
                    (silence, "silence", None),
                    (clear, "clear", None),
                ]
                plan.override(t - _m(1), clear + _m(5), State.KITCHEN)
                self._add(
                    plan,
                    kind,
                    t,
                    clear,
                    expect=(SMOKE,),
                    device=dev["smoke"],
                    notes="nuisance alarm from burnt food; the elder is present and silences it",
                )
            else:
                dur = _m(rng.uniform(15, 40))
                level = 30
                for k in range(int(dur // MINUTE_MS)):
                    fx.smoke_events.append((t + k * MINUTE_MS, "alarm", min(100, level + 3 * k)))
                fx.smoke_events.append((t + dur, "clear", None))
                plan.override(t + _m(1), t + dur + _m(40), State.OUT)
                self._add(
                    plan,
                    kind,
                    t,
                    t + dur,
                    expect=(SMOKE,),
                    device=dev["smoke"],
                    notes="kitchen fire; the elder flees, alarm sounds until put out",
                )
            return True
        night = day0 + _m(rng.uniform(60, 240))
        if kind == "night_bed_exit":
            if plan.state_at(night) is not State.SLEEP:
                return False
            found = day0 + _m(rng.uniform(8 * 60, 9.5 * 60))
            plan.override(night, found, State.FLOOR)
            plan.door_pulses += [found, found + _m(rng.uniform(30, 90))]
            self._add(
                plan,
                kind,
                night,
                found,
                expect=(NIGHT_BED_EXIT,),
                notes="left the bed at night and did not come back (collapsed in the bathroom), found in the morning",
            )
            return True
        if kind == "wandering":
            if plan.state_at(night) is not State.SLEEP:
                return False
            dur = _m(rng.uniform(60, 240))
            plan.override(night, night + dur, State.OUT)
            expect = (NIGHT_DOOR, OUT_NOT_BACK) if dur >= _m(120) else (NIGHT_DOOR,)
            self._add(
                plan,
                kind,
                night,
                night + dur,
                expect=expect,
                notes=f"dementia: went out at night, back after {dur // MINUTE_MS} min",
            )
            return True
        if kind == "not_up":
            wake = plan.wake[day]
            delay = _m(rng.uniform(150, 360))
            plan.override(wake - _m(5), wake + delay, State.BED_AWAKE)
            self._add(
                plan,
                kind,
                wake,
                wake + delay,
                expect=(NOT_UP,),
                forbid=(NIGHT_BED_EXIT,),
                notes=f"unwell: stayed in bed {delay // MINUTE_MS} min past the usual time",
            )
            return True
        if kind == "long_absence":
            leave = day0 + _m(rng.uniform(9 * 60, 11 * 60))
            if plan.state_at(leave) in ABSENT:
                return False
            back = leave + DAY_MS * int(rng.integers(2, 7)) + _m(rng.uniform(0, 240))
            plan.override(leave, back, State.AWAY)
            why = "hospital stay" if rng.random() < 0.5 else "visiting family"
            self._add(
                plan,
                kind,
                leave,
                back,
                forbid=(INACTIVITY, NOT_UP, NIGHT_BED_EXIT, NIGHT_DOOR, FALL, SOS, VITALS_CRITICAL),
                notes=f"legitimate long absence ({why}); out_not_back and band offline are acceptable if unregistered",
            )
            return True
        if kind in {"bradycardia", "apnea"}:
            t = day0 + _m(rng.uniform(90, 240))
            if plan.state_at(t) is not State.SLEEP or plan.state_at(t + _m(60)) is not State.SLEEP:
                return False
            if kind == "bradycardia":
                dur = _m(rng.uniform(10, 30))
                fx.vitals.append((t, t + dur, float(rng.uniform(34, 40)), None))
                fx.fast_band.append((t, t + dur))
                self._add(plan, kind, t, t + dur, expect=(VITALS_CRITICAL,), notes="bradycardia during sleep")
            else:
                n = int(rng.integers(6, 15))
                dur = _m(rng.uniform(50, 110))
                times = np.sort(rng.uniform(t, t + dur, size=n)).astype(np.int64)
                for x in times:
                    fx.apneas.append((int(x), float(rng.uniform(15, 45))))
                self._add(
                    plan,
                    kind,
                    t,
                    int(times[-1]) + 60_000,
                    expect=(APNEA,),
                    device=dev["mattress"],
                    notes=f"{n} breathing pauses of 15–45 s",
                )
            return True
        if kind == "vitals_trend":
            if fx.hr_trend is not None or self.days < 10:
                return False
            a = self.start_ms + (self.days - int(rng.integers(7, 10))) * DAY_MS
            b = self.start_ms + self.days * DAY_MS
            fx.hr_trend = (a, b, float(rng.uniform(12, 20)))
            self._add(plan, kind, a, b, expect=(VITALS_TREND,), notes="resting heart rate rising day by day")
            return True
        return False

    def _device(self, plan: Plan, kind: str, day: int) -> None:
        rng, dev, fx = self.rng, self.spec.devices, plan.effects
        day0 = self.start_ms + day * DAY_MS
        t = day0 + _m(rng.uniform(0, 24 * 60))
        end_of_period = self.start_ms + self.days * DAY_MS
        if kind == "device_offline":
            k = ("mattress", "door", "smoke", "call_button", "motion")[int(rng.integers(5))]
            b = min(end_of_period, t + _m(rng.uniform(6 * 60, 3 * 24 * 60)))
            fx.offline.setdefault(k, []).append((t, b))
            self._add(
                plan,
                kind,
                t,
                b,
                expect=(DEVICE_OFFLINE,),
                forbid=(SITE_OFFLINE,),
                device=dev[k],
                notes=f"{k} silent (dead or out of radio range) until {'the end' if b == end_of_period else 'fixed'}",
            )
        elif kind == "low_battery":
            k = BATTERY_KINDS[int(rng.integers(len(BATTERY_KINDS)))]
            if k in fx.battery:
                return
            drain = float(rng.uniform(1.0, 3.0))
            # Devices report whole percent, truncated: the first report of LOW_BATTERY_PCT comes as the level
            # falls below LOW_BATTERY_PCT + 1, which is the incident's start.
            start_level = LOW_BATTERY_PCT + 1 + drain * (t - self.start_ms) / DAY_MS
            fx.battery[k] = (min(start_level, 100.0), drain)
            self._add(
                plan,
                kind,
                t,
                end_of_period,
                expect=(LOW_BATTERY,),
                device=dev[k],
                notes=f"battery drains {drain:.1f} %/day and reaches {LOW_BATTERY_PCT} %",
            )
        elif kind == "tamper":
            k = ("door", "smoke")[int(rng.integers(2))]
            b = t + _m(rng.uniform(30, 24 * 60))
            fx.tamper.setdefault(k, []).append((t, b))
            self._add(plan, kind, t, b, expect=(TAMPER,), device=dev[k], notes=f"{k} cover opened / removed from mount")
        elif kind in {"gateway_offline", "gateway_reboot"}:
            if any(a <= t + DAY_MS and t <= b + DAY_MS for a, b, _ in fx.outages):
                return
            if kind == "gateway_offline":
                b = t + _m(rng.uniform(20, 8 * 60))
                if _overlaps_evidence(plan, t, b):
                    return
                fx.outages.append((t, b, "wan"))
                self._add(
                    plan,
                    kind,
                    t,
                    b,
                    expect=(SITE_OFFLINE,),
                    forbid=(DEVICE_OFFLINE, INACTIVITY, NOT_UP),
                    device=self.spec.gateway,
                    notes="internet outage: Last Will after ~45 s; events buffered and sent on reconnect",
                )
            else:
                b = t + int(rng.uniform(20, 100) * 1000)
                if _overlaps_evidence(plan, t, b):
                    return
                fx.outages.append((t, b, "reboot"))
                self._add(
                    plan,
                    kind,
                    t,
                    b,
                    forbid=(SITE_OFFLINE, DEVICE_OFFLINE),
                    device=self.spec.gateway,
                    notes="gateway reboot (power blip): messages lost, Last Will only if > 45 s; should not page",
                )
        elif kind == "smoke_fault":
            fx.smoke_events.append((t, "fault", f"E0{int(rng.integers(1, 8))}"))
            self._add(plan, kind, t, t + HOUR_MS, expect=(DEVICE_FAULT,), device=dev["smoke"], notes="sensor fault")
        elif kind == "not_worn":
            fx.not_worn_days.add(day)
            a, b = plan.wake[day], plan.bed[day]
            self._add(
                plan,
                kind,
                a,
                b,
                expect=(NOT_WORN,),
                device=dev["wristband"],
                notes="band left on the charger all day",
            )
        elif kind == "clock_skew":
            k = ("wristband", "door", "smoke", "motion", "mattress")[int(rng.integers(5))]
            if k in fx.skew:
                return
            offset = int(rng.choice([-1, 1]) * rng.uniform(10 * MINUTE_MS, 8 * HOUR_MS))
            fx.skew[k] = (t, offset)
            self._add(
                plan,
                kind,
                t,
                end_of_period,
                device=dev[k],
                notes=f"device clock off by {offset // 1000} s: readings must use received time, no alert expected",
            )

    # -- devices ----------------------------------------------------------------------------------------------

    def _devices(self, plan: Plan) -> None:
        rng, fx = self.rng, plan.effects
        for k in BATTERY_KINDS:
            if k not in fx.battery:
                fx.battery[k] = (float(rng.uniform(45, 100)), float(rng.uniform(0.02, 0.15)))

    def _worn(self, plan: Plan) -> list[tuple[int, bool]]:
        """Band worn-state change points: off at night (or for an evening charge), off on not-worn days."""
        rng, p = self.rng, self.p
        out: list[tuple[int, bool]] = [(self.start_ms, not p.band_off_at_night)]
        for d in range(self.days + 1):
            wake, bed = plan.wake[d], plan.bed[d]
            if d in plan.effects.not_worn_days:
                out.append((wake - _m(30), False))
                continue
            on = wake + _m(rng.uniform(5, 30))
            if p.band_off_at_night:
                out.append((on, True))
                out.append((bed - _m(rng.uniform(0, 15)), False))
            else:
                charge = bed - _m(rng.uniform(60, 90))
                out.append((on, True))
                out.append((charge, False))
                out.append((charge + _m(rng.uniform(40, 55)), True))
        out.sort()
        cleaned: list[tuple[int, bool]] = []
        for t, w in out:
            if cleaned and cleaned[-1][1] == w:
                continue
            cleaned.append((t, w))
        return cleaned


# -- ground truth vs. delivery ----------------------------------------------------------------------------------


def _fmt_local(ms: int) -> str:
    local = (ms + TZ_OFFSET_MS) % DAY_MS // MINUTE_MS
    return f"{local // 60:02d}:{local % 60:02d}"


class _Delivery:
    """What the plan lets reach the backend: worn band, online devices, gateway up (mirrors the renderer)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.fx = plan.effects
        self.worn_t = [w[0] for w in plan.worn]

    def worn(self, t: int) -> bool:
        i = bisect.bisect_right(self.worn_t, t) - 1
        return self.plan.worn[max(i, 0)][1]

    def offline(self, kind: str, t: int) -> bool:
        return any(a <= t < b for a, b in self.fx.offline.get(kind, ()))

    def outage(self, t: int) -> tuple[int, int, str] | None:
        return next((o for o in self.fx.outages if o[0] <= t < o[1]), None)

    def events(self, kind: str, times: list[int], *, life_safety: bool, by_ms: int) -> str | None:
        """None if at least one of the events reaches the backend by ``by_ms``; else why none does."""
        why = f"{kind} offline (dead or out of radio range): its events never arrive"
        for t in times:
            if self.offline(kind, t):
                continue
            out = self.outage(t)
            if out is None:
                return None
            a, b, what = out
            if what == "reboot":
                if life_safety:
                    return None  # the device retries until the gateway is back, seconds later
                why = "lost while the gateway rebooted"
            elif b + QUEUE_FLUSH_MS <= by_ms:
                return None
            else:
                why = f"queued by the gateway during an internet outage until {_fmt_local(b)}, after the incident"
        return why if times else "no evidence message planned"

    def band(self, t: int, by_ms: int) -> str | None:
        if not self.worn(t):
            return "wristband not worn (on the charger): the SOS key and the fall sensor are out of reach"
        if self.plan.state_at(t) in ABSENT:
            return "wristband out of the home gateway's range; its small buffer may drop the event"
        return self.events("wristband", [t], life_safety=True, by_ms=by_ms)

    def vitals(self, a: int, b: int, hr: float) -> str | None:
        """A heart-rate episode is seen if a worn band or an occupied, online mattress reports long enough."""
        severe = hr < 38 or hr > 140  # detection.config hr_low_severe / hr_high_severe: 1 min, else 10 min
        need = 2 if severe else 11
        run = best = 0
        for m in range(a, b, MINUTE_MS):
            state = self.plan.state_at(m)
            seen = (state in IN_BED and not self.offline("mattress", m)) or (self.worn(m) and state not in ABSENT)
            run = run + 1 if seen and self.outage(m) is None else 0
            best = max(best, run)
        if best >= need:
            return None
        return f"no heart-rate source for {need} min: band not worn and mattress empty or offline (or gateway down)"


def _reconcile(plan: Plan) -> None:
    """Move expected alerts the system cannot raise in the incident window into ``undeliverable``.

    The band's SOS and fall events are not even generated when the band is off the wrist: nobody can press it.
    """
    d = _Delivery(plan)
    fx = plan.effects
    devices = {v: k for k, v in plan.spec.devices.items()}
    out: list[Incident] = []
    for inc in plan.incidents:
        a, b, by = inc.start_ms, inc.end_ms, inc.end_ms + EVAL_AFTER_MS
        gone: list[tuple[str, str]] = []
        for alert in inc.expect:
            why: str | None = None
            if alert in (SOS, FALL):
                why = d.band(a, by)
            elif alert == CALL_BUTTON:
                why = d.events("call_button", [a], life_safety=True, by_ms=by)
            elif alert == SMOKE:
                alarms = [t for t, what, _ in fx.smoke_events if what == "alarm" and a <= t <= b]
                why = d.events("smoke", alarms, life_safety=True, by_ms=by)
            elif alert == APNEA:
                why = d.events("mattress", [t for t, _ in fx.apneas if a <= t <= b], life_safety=False, by_ms=by)
            elif alert == NIGHT_BED_EXIT:
                why = d.events("mattress", [a + 5_000], life_safety=False, by_ms=by)
            elif alert in (NIGHT_DOOR, OUT_NOT_BACK):
                why = d.events("door", [a], life_safety=False, by_ms=by)
            elif alert == DEVICE_FAULT:
                why = d.events("smoke", [a], life_safety=False, by_ms=by)
            elif alert == TAMPER and inc.device in devices:
                why = d.events(devices[inc.device], [a], life_safety=False, by_ms=by)
            elif alert == VITALS_CRITICAL:
                hr = next((v[2] for v in fx.vitals if v[0] == a), None)
                why = d.vitals(a, b, hr) if hr is not None else None
            if why is not None:
                gone.append((alert, why))
        if gone:
            if any(alert in (SOS, FALL) for alert, _ in gone):
                fx.band_events = [e for e in fx.band_events if e[0] != a]
            dropped = {alert for alert, _ in gone}
            inc = replace(inc, expect=tuple(x for x in inc.expect if x not in dropped), undeliverable=tuple(gone))
        out.append(inc)
    plan.incidents = out
