"""Not up: unwell, the elder stays in bed hours past the usual time."""

from __future__ import annotations

from firmware_sim.incidents.base import Context, m
from firmware_sim.models import MINUTE_MS, State
from firmware_sim.plan import NIGHT_BED_EXIT, NOT_UP, Plan


def not_up(ctx: Context, plan: Plan, day: int, night: int) -> bool:
    """Awake in bed from the day's wake time until 2.5–6 h past the usual one (``night``: drawn for the group, unused).

    The hours count from the later of the day's wake time and the elder's usual one: counted from an early day's wake
    (an hour or more before the usual time), a 2.5-h stay in bed ended before "the usual time plus a margin" that the
    notes, and the not-up rule, speak of (docs/simulator.md, "What the detectors make of it").
    """
    wake = plan.wake[day]
    usual = ctx.day0(day) + m(ctx.spec.profile.wake_min)
    end = max(wake, usual) + m(ctx.rng.uniform(150, 360))
    plan.override(wake - m(5), end, State.BED_AWAKE)
    ctx.add(plan, "not_up", wake, end, expect=(NOT_UP,), forbid=(NIGHT_BED_EXIT,),
            notes=f"unwell: stayed in bed {(end - usual) // MINUTE_MS} min past the usual time")  # fmt: skip
    return True
