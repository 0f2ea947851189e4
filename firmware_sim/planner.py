"""Daily routines of one elder and the incidents drawn onto them: the :class:`~firmware_sim.plan.Plan` of a home.

The plan is built once per home for the whole period (a few hundred segments), then devices render
their messages from it day by day (:mod:`firmware_sim.renderers`). Each incident kind lives in
:mod:`firmware_sim.incidents`; what the plan lets reach the backend is reconciled in :mod:`firmware_sim.delivery`.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Final

import numpy as np

from firmware_sim.delivery import reconcile
from firmware_sim.incidents import BEHAVIOUR, DEVICE
from firmware_sim.incidents.base import Context, Kind, m
from firmware_sim.incidents.device_faults import BATTERY_KINDS
from firmware_sim.models import DAY_MS, MINUTE_MS, HomeSpec, Mix, State
from firmware_sim.plan import Plan, dedupe

ABSENCE_DAYS: Final = 7
"""Days a long absence blocks for other person incidents (it lasts 2–6 days plus a few hours)."""
NAP_MEDIAN_MIN: Final = (100.0, 200.0)
"""Range of one elder's own median nap length (minutes); real older adults doze 1–3 h after lunch."""
NAP_SIGMA: Final = 0.4
"""Day-to-day spread of one elder's nap length (log scale) around their own median."""
NAP_MIN: Final = (20.0, 240.0)
"""Shortest and longest nap (minutes)."""
AFTERNOON_SIT_FACTOR: Final = (3.0, 6.0)
"""Range of how much longer than in the morning and evening one elder sits between walks in the afternoon."""
AFTERNOON: Final = (12 * 60, 18 * 60)
"""The afternoon, minutes after local midnight (the block of ``eldercare sim-compare``)."""


def _draw(kind: Kind, ctx: Context, plan: Plan, day: int) -> bool:
    """Draw the kind's moment on ``day``, then plan it there; False if it cannot happen that day."""
    t = kind.moment(ctx, plan, day)
    return t is not None and kind.plan(ctx, plan, day, t)


class Planner:
    """Draws one home's routine day by day, then schedules incidents on it."""

    def __init__(self, *, spec: HomeSpec, rng: np.random.Generator, start_ms: int, days: int) -> None:
        self.spec = spec
        self.p = spec.profile
        self.rng = rng
        self.start_ms = start_ms
        self.days = days
        self.ctx = Context(spec=spec, rng=rng, start_ms=start_ms, days=days)
        # The afternoon habits and the walks that break long sits come from generators of their own, spawned from
        # the home's stream without drawing from it: every draw of the routine and the incidents keeps its place
        # in ``rng`` however long the naps and sits are (docs/simulator.md, "Afternoons calibrated").
        habits, self.walks = rng.spawn(2)
        self.nap_median = float(habits.uniform(*NAP_MEDIAN_MIN))
        self.afternoon_sit = float(habits.uniform(*AFTERNOON_SIT_FACTOR))

    # -- routine -------------------------------------------------------------------------------------------------

    def plan(self) -> Plan:
        """Build the routine, then the incidents, then the band's worn state."""
        plan = self._routine()
        self._incidents(plan)
        self._devices(plan)
        plan.worn = self._worn(plan)
        reconcile(plan)
        return plan

    def _routine(self) -> Plan:
        rng, p = self.rng, self.p
        pts: list[tuple[int, int]] = [(self.start_ms, int(State.SLEEP))]
        pulses: list[int] = []
        self._visits: list[tuple[int, int]] = []
        wakes: list[int] = []
        beds: list[int] = []
        night_start = self.start_ms
        # One day beyond the period so the last night is complete.
        for d in range(self.days + 1):
            day0 = self.start_ms + d * DAY_MS
            wake = day0 + m(rng.normal(p.wake_min, p.wake_sd))
            if rng.random() < p.lie_in_prob:
                wake += m(rng.uniform(30, 120))  # a bad night, a cold morning: stays in bed longer
            self._night(pts, night_start, wake)
            if not p.bedbound and rng.random() < 0.7:
                # Awake in bed before getting up (turning, reaching for the phone): the mattress feels it,
                # nothing outside the bedroom does.
                pts.append((max(night_start + m(30), wake - m(rng.uniform(5, 40))), int(State.BED_AWAKE)))
            wakes.append(wake)
            cur = wake
            if p.bedbound:
                cur = self._bedbound_day(pts, pulses, day0, wake)
            else:
                cur = self._active_day(pts, pulses, day0, wake)
            bed = max(cur + m(15), day0 + m(rng.normal(p.bed_min, p.bed_sd)))
            if not p.bedbound:
                pts.append((bed - m(rng.uniform(8, 20)), int(State.TOILET)))
            pts.append((bed, int(State.SLEEP)))
            beds.append(bed)
            night_start = bed
        points = dedupe(sorted(pts))
        if not p.bedbound:
            points = self._sit_breaks(points)
        return Plan(
            spec=self.spec,
            start_ms=self.start_ms,
            days=self.days,
            points=points,
            door_pulses=sorted(pulses),
            wake=wakes,
            bed=beds,
            visits=sorted(self._visits),
        )

    def _sit_breaks(self, points: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Long sits (TV, reading) broken by short walks: to the kitchen, the toilet, round the flat.

        The gaps between them follow an exponential law around the elder's own mean, longer in the afternoon, so
        most daytime quiet spells are short and a few last well over an hour, as in the real homes
        (docs/simulator.md). A doze in the armchair (:attr:`State.DOZING`) is not a sit: nothing breaks it.
        """
        rng = self.walks
        out: list[tuple[int, int]] = []
        breaks = (int(State.HOME), int(State.TOILET), int(State.KITCHEN))
        for k, (t, st) in enumerate(points):
            out.append((t, st))
            if st != State.SITTING or k + 1 >= len(points):
                continue
            end = points[k + 1][0]
            cur = t + m(rng.exponential(self._sit_mean(t)))
            while cur + m(10) < end:
                what = breaks[int(rng.choice(3, p=[0.6, 0.25, 0.15]))]
                back = cur + m(rng.uniform(2, 8))
                out += [(cur, what), (back, int(State.SITTING))]
                cur = back + m(rng.exponential(self._sit_mean(back)))
        return dedupe(out)

    def _sit_mean(self, t: int) -> float:
        """Mean minutes sat before the next walk, from ``t``: the elder's own, longer in the afternoon."""
        minute = (t - self.start_ms) % DAY_MS / MINUTE_MS
        afternoon = AFTERNOON[0] <= minute < AFTERNOON[1]
        return self.p.sit_break_min * (self.afternoon_sit if afternoon else 1.0)

    def _nap_length(self, u: float) -> float:
        """Minutes of one nap: the planner's uniform(20, 120) draw ``u`` mapped onto the elder's log-normal.

        Mapping the existing draw (by its quantile) keeps the stream in step: no draw is added or moved.
        """
        q = min(max((u - 20) / 100, 0.001), 0.999)
        minutes = self.nap_median * float(np.exp(NAP_SIGMA * NormalDist().inv_cdf(q)))
        return min(max(minutes, NAP_MIN[0]), NAP_MIN[1])

    def _night(self, pts: list[tuple[int, int]], a: int, b: int) -> None:
        """Sleep from ``a`` to ``b`` with night toilet trips (Poisson count, uniform times)."""
        rng = self.rng
        n = int(rng.poisson(self.p.toilet_rate * (0.3 if self.p.bedbound else 1.0)))
        span = b - a - m(60)
        trips = sorted(int(x) for x in rng.uniform(a + m(30), a + m(30) + max(span, 0), size=n)) if span > 0 else []
        last = a
        for t in trips:
            if t < last + m(20):
                continue
            pts.append((t, int(State.TOILET)))
            back = t + m(rng.uniform(3, 9))
            pts.append((back, int(State.SLEEP)))
            last = back
        pts.append((a, int(State.SLEEP)))

    def _active_day(self, pts: list[tuple[int, int]], pulses: list[int], day0: int, wake: int) -> int:
        rng, p = self.rng, self.p

        def add(t: int, state: State, minutes: float) -> int:
            pts.append((t, int(state)))
            return t + m(minutes)

        cur = add(wake, State.TOILET, rng.uniform(4, 10))
        cur = add(cur, State.HOME, rng.uniform(10, 35))
        cur = add(cur, State.KITCHEN, rng.uniform(20, 35))
        cur = add(cur, State.HOME, rng.uniform(10, 40))
        if rng.random() < p.outing_prob * 0.7:
            t = max(cur, day0 + m(rng.normal(8.75 * 60, 30)))
            pts.append((cur, int(State.SITTING)))
            cur = add(t, State.OUT, rng.uniform(40, 150))
            cur = add(cur, State.HOME, rng.uniform(5, 20))
        elif rng.random() < 0.5:
            # Taking out the rubbish: a short trip through the front door.
            cur = add(cur, State.OUT, rng.uniform(2, 6))
            cur = add(cur, State.HOME, rng.uniform(5, 20))
        pts.append((cur, int(State.SITTING)))
        cur = max(cur + m(10), day0 + m(rng.normal(11.25 * 60, 15)))
        cur = add(cur, State.KITCHEN, rng.uniform(30, 50))
        cur = add(cur, State.HOME, rng.uniform(10, 30))
        if rng.random() < p.nap_prob:
            # In bed, or dozing in the armchair (the mattress sees nothing, the PIR hardly anything).
            where = State.DOZING if rng.random() < p.chair_nap_prob else State.NAP
            start = max(cur, day0 + m(rng.normal(12.9 * 60, 20)))
            cur = add(start, where, self._nap_length(rng.uniform(20, 120)))
            cur = add(cur, State.HOME, rng.uniform(10, 30))
        if rng.random() < p.outing_prob * 0.5:
            pts.append((cur, int(State.SITTING)))
            t = max(cur + m(5), day0 + m(rng.normal(15 * 60, 40)))
            # The park, mahjong, a visit to the children: up to 4 h.
            cur = add(t, State.OUT, rng.uniform(40, 240))
            cur = add(cur, State.HOME, rng.uniform(5, 20))
        pts.append((cur, int(State.SITTING)))
        cur = max(cur + m(10), day0 + m(rng.normal(17.25 * 60, 20)))
        cur = add(cur, State.KITCHEN, rng.uniform(30, 55))
        cur = add(cur, State.HOME, rng.uniform(10, 30))
        pts.append((cur, int(State.SITTING)))
        for _ in range(2):
            if rng.random() < p.visitor_prob:
                t = day0 + m(rng.uniform(9.5 * 60, 19 * 60))
                leave = t + m(rng.uniform(20, 120))
                pulses += [t, leave]
                self._visits.append((t, leave))
        return cur + m(30)

    def _bedbound_day(self, pts: list[tuple[int, int]], pulses: list[int], day0: int, wake: int) -> int:
        """A bedbound elder lies awake in bed, a carer visits twice and helps into a chair for an hour."""
        rng = self.rng
        pts.append((wake, int(State.BED_AWAKE)))
        carer1 = day0 + m(rng.normal(8.5 * 60, 15))
        pulses.append(carer1)
        chair = carer1 + m(rng.uniform(15, 40))
        pts.append((chair, int(State.SITTING)))
        back = chair + m(rng.uniform(45, 90))
        pts.append((back, int(State.BED_AWAKE)))
        pulses.append(back + m(rng.uniform(5, 20)))
        nap = max(back + m(30), day0 + m(rng.normal(13 * 60, 20)))
        pts.append((nap, int(State.NAP)))
        pts.append((nap + m(rng.uniform(40, 100)), int(State.BED_AWAKE)))
        carer2 = day0 + m(rng.normal(16.5 * 60, 15))
        pulses += [carer2, carer2 + m(rng.uniform(40, 80))]
        if rng.random() < self.p.visitor_prob - 0.6:
            t = day0 + m(rng.uniform(10 * 60, 15 * 60))
            pulses += [t, t + m(rng.uniform(20, 60))]
        return carer2 + m(90)

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
        kinds = [k for k in BEHAVIOUR if self._allowed(k)]
        weights = np.array([BEHAVIOUR[k].weight for k in kinds])
        for _ in range(int(rng.poisson(n_beh))):
            free = [d for d in candidates if d not in used_days and d - 1 not in used_days]
            if not free or not kinds:
                break
            kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
            day = free[int(rng.integers(len(free)))]
            if kind == "long_absence" and not used_days.isdisjoint(range(day, day + ABSENCE_DAYS)):
                continue  # the elder would be away during an incident already planned (an SOS nobody hears)
            if _draw(BEHAVIOUR[kind], self.ctx, plan, day):
                used_days.add(day)
                if kind == "long_absence":
                    used_days.update(range(day, day + ABSENCE_DAYS))
        dkinds = list(DEVICE)
        dweights = np.array([DEVICE[k].weight for k in dkinds])
        for _ in range(int(rng.poisson(n_dev))):
            kind = dkinds[int(rng.choice(len(dkinds), p=dweights / dweights.sum()))]
            day = int(rng.integers(first, max(first + 1, self.days)))
            if kind == "not_worn" and day in used_days:
                continue
            _draw(DEVICE[kind], self.ctx, plan, day)
            if kind == "not_worn":
                used_days.add(day)
        if self.p.dementia and self.spec.mix is Mix.NORMAL and rng.random() < 0.5 * self.days / 30:
            free = [d for d in candidates if d not in used_days]
            if free:
                _draw(BEHAVIOUR["wandering"], self.ctx, plan, free[int(rng.integers(len(free)))])
        plan.incidents.sort(key=lambda i: (i.start_ms, i.id))

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
                out.append((wake - m(30), False))
                continue
            on = wake + m(rng.uniform(5, 30))
            if p.band_off_at_night:
                out.append((on, True))
                out.append((bed - m(rng.uniform(0, 15)), False))
            else:
                charge = bed - m(rng.uniform(60, 90))
                out.append((on, True))
                out.append((charge, False))
                out.append((charge + m(rng.uniform(40, 55)), True))
        out.sort()
        cleaned: list[tuple[int, bool]] = []
        for t, w in out:
            if cleaned and cleaned[-1][1] == w:
                continue
            cleaned.append((t, w))
        return cleaned
