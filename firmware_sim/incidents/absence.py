"""A legitimate long absence (hospital stay, visiting family): nothing may page while the home is empty."""

from __future__ import annotations

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
    ctx.add(
        plan,
        "long_absence",
        leave,
        back,
        forbid=(INACTIVITY, NOT_UP, NIGHT_BED_EXIT, NIGHT_DOOR, FALL, SOS, VITALS_CRITICAL),
        notes=f"legitimate long absence ({why}); out_not_back and band offline are acceptable if unregistered",
    )
    return True
