"""Smoke in the kitchen: burnt food the elder silences, and a fire the elder flees."""

from __future__ import annotations

from firmware_sim.incidents.base import Context, m
from firmware_sim.models import MINUTE_MS, State
from firmware_sim.plan import SMOKE, Plan


def burnt_cooking(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """A nuisance alarm: silenced after 20–90 s, clear after a few minutes; the elder stays in the kitchen."""
    rng = ctx.rng
    silence = t + int(rng.uniform(20, 90) * 1000)
    clear = t + m(rng.uniform(2, 6))
    plan.effects.smoke_events += [
        (t, "alarm", int(rng.integers(8, 20))),
        (silence, "silence", None),
        (clear, "clear", None),
    ]
    plan.override(t - m(1), clear + m(5), State.KITCHEN)
    ctx.add(plan, "burnt_cooking", t, clear, expect=(SMOKE,), device=ctx.devices["smoke"],
            notes="nuisance alarm from burnt food; the elder is present and silences it")  # fmt: skip
    return True


def fire(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """A kitchen fire: the alarm rises every minute until put out; the elder leaves the home."""
    dur = m(ctx.rng.uniform(15, 40))
    level = 30
    for k in range(int(dur // MINUTE_MS)):
        plan.effects.smoke_events.append((t + k * MINUTE_MS, "alarm", min(100, level + 3 * k)))
    plan.effects.smoke_events.append((t + dur, "clear", None))
    plan.override(t + m(1), t + dur + m(40), State.OUT)
    ctx.add(plan, "fire", t, t + dur, expect=(SMOKE,), device=ctx.devices["smoke"],
            notes="kitchen fire; the elder flees, alarm sounds until put out")  # fmt: skip
    return True
