"""A legitimate long absence (hospital stay, visiting family): nothing may page while the home is empty."""

from __future__ import annotations

from typing import Final

import numpy as np

from firmware_sim.incidents.base import Context, m
from firmware_sim.models import ABSENT, DAY_MS, State
from firmware_sim.plan import FALL, INACTIVITY, NIGHT_BED_EXIT, NIGHT_DOOR, NOT_UP, SOS, VITALS_CRITICAL, Plan


def long_absence(ctx: Context, plan: Plan, day: int, night: int) -> bool:
    """Away 2–6 days from a morning departure (``night`` is drawn for the group and unused)."""
    rng = ctx.rng
    leave = ctx.day0(day) + m(rng.uniform(9 * 60, 11 * 60))
    if plan.state_at(leave) in ABSENT:
        return False
    back = leave + DAY_MS * int(rng.integers(2, 7)) + m(rng.uniform(0, 240))
    plan.override(leave, back, State.AWAY)
    why = "hospital stay" if rng.random() < 0.5 else "visiting family"
    visits = _sitter_visits(ctx, plan, leave, back)
    ctx.add(
        plan,
        "long_absence",
        leave,
        back,
        forbid=(INACTIVITY, NOT_UP, NIGHT_BED_EXIT, NIGHT_DOOR, FALL, SOS, VITALS_CRITICAL),
        notes=f"legitimate long absence ({why}); out_not_back and band offline are acceptable if unregistered"
        + (f"; the home looked after {visits} time(s)" if visits else ""),
    )
    return True


SITTER_PROB: Final = 0.5
"""Share of long absences during which someone looks after the empty home."""
SITTER_VISIT_PER_DAY: Final = 0.35
SITTER_VISIT_MIN: Final = (5.0, 40.0)
"""Calibrated on a real home (HomeAssist Home1, a two-month stay away in April–May 2017, docs/detection.md): the
home was visited for 5–40 min (door in, hall and kitchen motion, door out) every two to four days, by day."""


def _sitter_visits(ctx: Context, plan: Plan, leave: int, back: int) -> int:
    """Someone looks after the empty home by day (``Plan.sitter_visits``); returns how many visits were planned.

    Drawn from a generator of their own (seeded by the departure time), so the home's other draws, and with them
    every incident of every existing seed, stay as they were.
    """
    rng = np.random.default_rng(leave)
    if rng.random() >= SITTER_PROB:
        return 0
    n = 0
    first = (leave - ctx.start_ms) // DAY_MS + 1
    for day in range(first, (back - ctx.start_ms) // DAY_MS + 1):
        if rng.random() >= SITTER_VISIT_PER_DAY:
            continue
        arrive = ctx.day0(day) + m(rng.uniform(10 * 60, 19 * 60))
        stay = m(rng.uniform(*SITTER_VISIT_MIN))
        if arrive < leave + DAY_MS // 2 or arrive + stay > back - m(60):
            continue
        plan.sitter_visits.append((arrive, arrive + stay))
        plan.door_pulses += [arrive, arrive + stay]
        n += 1
    plan.door_pulses.sort()
    return n
