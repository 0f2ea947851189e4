"""Night incidents: out of bed and not back (collapsed in the bathroom), and wandering out of the home."""

from __future__ import annotations

from firmware_sim.incidents.base import Context, m
from firmware_sim.models import MINUTE_MS, State
from firmware_sim.plan import NIGHT_BED_EXIT, NIGHT_DOOR, Plan


def night_bed_exit(ctx: Context, plan: Plan, day: int, night: int) -> bool:
    """Leaves the bed at night and collapses; found in the morning."""
    if plan.state_at(night) is not State.SLEEP:
        return False
    found = ctx.day0(day) + m(ctx.rng.uniform(8 * 60, 9.5 * 60))
    plan.override(night, found, State.FLOOR)
    plan.door_pulses += [found, found + m(ctx.rng.uniform(30, 90))]
    ctx.add(
        plan,
        "night_bed_exit",
        night,
        found,
        expect=(NIGHT_BED_EXIT,),
        notes="left the bed at night and did not come back (collapsed in the bathroom), found in the morning",
    )
    return True


def wandering(ctx: Context, plan: Plan, day: int, night: int) -> bool:
    """Dementia: goes out at night for 1–4 h.

    One page is expected, the night door: an out-not-back for the same outing is related, not expected (the backend
    pages a night outing once).
    """
    if plan.state_at(night) is not State.SLEEP:
        return False
    dur = m(ctx.rng.uniform(60, 240))
    plan.override(night, night + dur, State.OUT)
    ctx.add(plan, "wandering", night, night + dur, expect=(NIGHT_DOOR,),
            notes=f"dementia: went out at night, back after {dur // MINUTE_MS} min")  # fmt: skip
    return True
