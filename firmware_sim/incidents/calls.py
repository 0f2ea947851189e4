"""Calls for help: the band's SOS key, the call button, and a press the elder cancels."""

from __future__ import annotations

from firmware_sim.incidents.base import Context
from firmware_sim.plan import CALL_BUTTON, SOS, Plan


def sos_press(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """The SOS key on the band; help comes through the door."""
    plan.effects.band_events.append((t, "sos", 1.0))
    help_at = ctx.help_arrives(plan, t)
    ctx.add(plan, "sos_press", t, help_at, expect=(SOS,), device=ctx.devices["wristband"], notes="SOS key on the band")
    return True


def call_button_press(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """A real call on the wall button; help comes through the door."""
    plan.effects.button_events.append((t, "press"))
    help_at = ctx.help_arrives(plan, t)
    ctx.add(plan, "call_button_press", t, help_at, expect=(CALL_BUTTON,), device=ctx.devices["call_button"],
            notes="real call for help")  # fmt: skip
    return True


def accidental_press(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """A press cancelled by the elder seconds later: the alert is raised, no dispatch is needed."""
    delay = int(ctx.rng.uniform(3, 20) * 1000)
    plan.effects.button_events += [(t, "press"), (t + delay, "cancel")]
    ctx.add(plan, "accidental_press", t, t + delay, expect=(CALL_BUTTON,), device=ctx.devices["call_button"],
            notes=f"accidental press cancelled by the elder after {delay // 1000} s; no dispatch needed")  # fmt: skip
    return True
