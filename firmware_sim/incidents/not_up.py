"""Not up: unwell, the elder stays in bed hours past the usual time."""

from __future__ import annotations

from firmware_sim.incidents.base import Context, m
from firmware_sim.models import MINUTE_MS, State
from firmware_sim.plan import NIGHT_BED_EXIT, NOT_UP, Plan


def not_up(ctx: Context, plan: Plan, day: int, night: int) -> bool:
    """Awake in bed 2.5–6 h past the day's wake time (``night`` is drawn for the group and unused)."""
    wake = plan.wake[day]
    delay = m(ctx.rng.uniform(150, 360))
    plan.override(wake - m(5), wake + delay, State.BED_AWAKE)
    ctx.add(plan, "not_up", wake, wake + delay, expect=(NOT_UP,), forbid=(NIGHT_BED_EXIT,),
            notes=f"unwell: stayed in bed {delay // MINUTE_MS} min past the usual time")  # fmt: skip
    return True
