"""Vital signs: tachycardia at rest, bradycardia and apnea in sleep, a resting heart rate rising over days."""

from __future__ import annotations

import numpy as np

from firmware_sim.incidents.base import Context, m
from firmware_sim.models import DAY_MS, State
from firmware_sim.plan import APNEA, VITALS_CRITICAL, VITALS_TREND, Plan


def tachycardia(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """135–160 bpm for 12–25 min while sitting; the band samples every minute meanwhile."""
    dur = m(ctx.rng.uniform(12, 25))
    plan.effects.vitals.append((t, t + dur, float(ctx.rng.uniform(135, 160)), None))
    plan.effects.fast_band.append((t, t + dur))
    plan.override(t, t + dur, State.SITTING)
    ctx.add(plan, "tachycardia", t, t + dur, expect=(VITALS_CRITICAL,), notes="tachycardia at rest")
    return True


def _asleep_for_an_hour(ctx: Context, plan: Plan, day: int) -> int | None:
    t = ctx.day0(day) + m(ctx.rng.uniform(90, 240))
    if plan.state_at(t) is not State.SLEEP or plan.state_at(t + m(60)) is not State.SLEEP:
        return None
    return t


def bradycardia(ctx: Context, plan: Plan, day: int, night: int) -> bool:
    """34–40 bpm for 10–30 min in deep sleep (``night`` is drawn for the group and unused)."""
    t = _asleep_for_an_hour(ctx, plan, day)
    if t is None:
        return False
    dur = m(ctx.rng.uniform(10, 30))
    plan.effects.vitals.append((t, t + dur, float(ctx.rng.uniform(34, 40)), None))
    plan.effects.fast_band.append((t, t + dur))
    ctx.add(plan, "bradycardia", t, t + dur, expect=(VITALS_CRITICAL,), notes="bradycardia during sleep")
    return True


def apnea(ctx: Context, plan: Plan, day: int, night: int) -> bool:
    """6–14 breathing pauses of 15–45 s within an hour or two of sleep, seen by the mattress."""
    t = _asleep_for_an_hour(ctx, plan, day)
    if t is None:
        return False
    rng = ctx.rng
    n = int(rng.integers(6, 15))
    dur = m(rng.uniform(50, 110))
    times = np.sort(rng.uniform(t, t + dur, size=n)).astype(np.int64)
    for x in times:
        plan.effects.apneas.append((int(x), float(rng.uniform(15, 45))))
    ctx.add(plan, "apnea", t, int(times[-1]) + 60_000, expect=(APNEA,), device=ctx.devices["mattress"],
            notes=f"{n} breathing pauses of 15–45 s")  # fmt: skip
    return True


def vitals_trend(ctx: Context, plan: Plan, day: int, night: int) -> bool:
    """The resting heart rate rises 12–20 bpm over the period's last 7–9 days (once per home, 10+ days)."""
    fx = plan.effects
    if fx.hr_trend is not None or ctx.days < 10:
        return False
    a = ctx.start_ms + (ctx.days - int(ctx.rng.integers(7, 10))) * DAY_MS
    b = ctx.end_ms
    fx.hr_trend = (a, b, float(ctx.rng.uniform(12, 20)))
    ctx.add(plan, "vitals_trend", a, b, expect=(VITALS_TREND,), notes="resting heart rate rising day by day")
    return True
