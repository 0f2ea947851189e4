"""Falls: one the band detects (the elder gets up alone), and one nothing detects (found hours later)."""

from __future__ import annotations

from firmware_sim.incidents.base import Context, m
from firmware_sim.models import MINUTE_MS, State
from firmware_sim.plan import FALL, INACTIVITY, Plan


def fall_detected(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """The band's fall sensor fires; the elder lies 3–25 min, then gets up alone."""
    lie = m(ctx.rng.uniform(3, 25))
    plan.effects.band_events.append((t, "fall", float(ctx.rng.uniform(0.75, 0.98))))
    plan.override(t, t + lie, State.FLOOR)
    ctx.add(plan, "fall_detected", t, t + lie, expect=(FALL,), device=ctx.devices["wristband"],
            notes=f"fall detected by the band; got up alone after {lie // MINUTE_MS} min")  # fmt: skip
    return True


def long_lie(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """An undetected fall: 3–8 h on the floor until someone comes through the door."""
    lie = m(ctx.rng.uniform(180, 480))
    plan.override(t, t + lie, State.FLOOR)
    plan.door_pulses += [t + lie, t + lie + m(ctx.rng.uniform(30, 90))]
    ctx.add(plan, "long_lie", t, t + lie, expect=(INACTIVITY,), forbid=(FALL,),
            notes=f"undetected fall, lying on the floor {lie // MINUTE_MS} min until found")  # fmt: skip
    return True
