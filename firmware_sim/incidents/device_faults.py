"""Device faults: silent device, flat battery, opened cover, sensor fault, band on its charger, drifting clock."""

from __future__ import annotations

from typing import Final

from firmware_sim.incidents.base import Context, m
from firmware_sim.models import DAY_MS, HOUR_MS, MINUTE_MS
from firmware_sim.plan import DEVICE_FAULT, DEVICE_OFFLINE, LOW_BATTERY, NOT_WORN, SITE_OFFLINE, TAMPER, Plan

BATTERY_KINDS: Final = ("door", "smoke", "call_button", "motion")
LOW_BATTERY_PCT: Final = 20
"""Battery level at or below which the ground truth expects a low-battery alert."""


def device_offline(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """One device silent (dead or out of radio range) for 6 h to 3 days, or to the end of the period."""
    k = ("mattress", "door", "smoke", "call_button", "motion")[int(ctx.rng.integers(5))]
    b = min(ctx.end_ms, t + m(ctx.rng.uniform(6 * 60, 3 * 24 * 60)))
    plan.effects.offline.setdefault(k, []).append((t, b))
    ctx.add(
        plan,
        "device_offline",
        t,
        b,
        expect=(DEVICE_OFFLINE,),
        forbid=(SITE_OFFLINE,),
        device=ctx.devices[k],
        notes=f"{k} silent (dead or out of radio range) until {'the end' if b == ctx.end_ms else 'fixed'}",
    )
    return True


def low_battery(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """A battery drains 1–3 %/day and reaches the low level at ``t`` (one battery incident per device)."""
    fx = plan.effects
    k = BATTERY_KINDS[int(ctx.rng.integers(len(BATTERY_KINDS)))]
    if k in fx.battery:
        return False
    drain = float(ctx.rng.uniform(1.0, 3.0))
    # Devices report whole percent, truncated: the first report of LOW_BATTERY_PCT comes as the level
    # falls below LOW_BATTERY_PCT + 1, which is the incident's start.
    start_level = LOW_BATTERY_PCT + 1 + drain * (t - ctx.start_ms) / DAY_MS
    fx.battery[k] = (min(start_level, 100.0), drain)
    ctx.add(plan, "low_battery", t, ctx.end_ms, expect=(LOW_BATTERY,), device=ctx.devices[k],
            notes=f"battery drains {drain:.1f} %/day and reaches {LOW_BATTERY_PCT} %")  # fmt: skip
    return True


def tamper(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """The cover of the door contact or the smoke detector opened for 30 min to a day."""
    k = ("door", "smoke")[int(ctx.rng.integers(2))]
    b = t + m(ctx.rng.uniform(30, 24 * 60))
    plan.effects.tamper.setdefault(k, []).append((t, b))
    ctx.add(
        plan, "tamper", t, b, expect=(TAMPER,), device=ctx.devices[k], notes=f"{k} cover opened / removed from mount"
    )
    return True


def smoke_fault(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """The smoke detector reports a sensor fault code."""
    plan.effects.smoke_events.append((t, "fault", f"E0{int(ctx.rng.integers(1, 8))}"))
    ctx.add(
        plan, "smoke_fault", t, t + HOUR_MS, expect=(DEVICE_FAULT,), device=ctx.devices["smoke"], notes="sensor fault"
    )
    return True


def not_worn(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """The band stays on its charger from wake to bed."""
    plan.effects.not_worn_days.add(day)
    ctx.add(plan, "not_worn", plan.wake[day], plan.bed[day], expect=(NOT_WORN,), device=ctx.devices["wristband"],
            notes="band left on the charger all day")  # fmt: skip
    return True


def clock_skew(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """A device clock off by 10 min to 8 h from ``t`` on (no alert: the backend must use received time)."""
    fx = plan.effects
    k = ("wristband", "door", "smoke", "motion", "mattress")[int(ctx.rng.integers(5))]
    if k in fx.skew:
        return False
    offset = int(ctx.rng.choice([-1, 1]) * ctx.rng.uniform(10 * MINUTE_MS, 8 * HOUR_MS))
    fx.skew[k] = (t, offset)
    ctx.add(
        plan,
        "clock_skew",
        t,
        ctx.end_ms,
        device=ctx.devices[k],
        notes=f"device clock off by {offset // 1000} s: readings must use received time, no alert expected",
    )
    return True
