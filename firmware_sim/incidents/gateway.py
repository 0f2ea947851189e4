"""Home gateway outages: an internet outage (Last Will, events queued) and a reboot (messages lost)."""

from __future__ import annotations

from typing import Final

from firmware_sim.incidents.base import Context, m
from firmware_sim.models import DAY_MS, MINUTE_MS
from firmware_sim.plan import DEVICE_OFFLINE, INACTIVITY, NOT_UP, SITE_OFFLINE, Plan

MOMENTARY_EVIDENCE: Final = frozenset(
    {
        "sos_press",
        "call_button_press",
        "accidental_press",
        "fire",
        "burnt_cooking",
        "fall_detected",
        "long_lie",
        "night_bed_exit",
        "not_up",
        "wandering",
        "bradycardia",
        "tachycardia",
        "apnea",
        "smoke_fault",
        "tamper",
    }
)
"""Incidents whose evidence is a few messages at a known time; gateway outages keep clear of them."""
OUTAGE_CLEARANCE_MS: Final = 15 * MINUTE_MS


def _overlaps_evidence(plan: Plan, a: int, b: int) -> bool:
    """True if a gateway outage ``[a, b)`` would come near an incident whose evidence is a few messages.

    An outage over an SOS or a fire delays or loses its evidence: the coincidence is rare in life and would only
    blur the evaluation, so that outage is left out of the run.
    """
    return any(
        a <= inc.end_ms + OUTAGE_CLEARANCE_MS and inc.start_ms - OUTAGE_CLEARANCE_MS <= b
        for inc in plan.incidents
        if inc.type in MOMENTARY_EVIDENCE
    )


def _near_another_outage(plan: Plan, t: int) -> bool:
    return any(a <= t + DAY_MS and t <= b + DAY_MS for a, b, _ in plan.effects.outages)


def gateway_offline(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """Internet down for 20 min to 8 h: Last Will after ~45 s, events queued and sent on reconnect."""
    if _near_another_outage(plan, t):
        return False
    b = t + m(ctx.rng.uniform(20, 8 * 60))
    if _overlaps_evidence(plan, t, b):
        return False
    plan.effects.outages.append((t, b, "wan"))
    ctx.add(
        plan,
        "gateway_offline",
        t,
        b,
        expect=(SITE_OFFLINE,),
        forbid=(DEVICE_OFFLINE, INACTIVITY, NOT_UP),
        device=ctx.spec.gateway,
        notes="internet outage: Last Will after ~45 s; events buffered and sent on reconnect",
    )
    return True


def gateway_reboot(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """A power blip: 20–100 s of lost messages; a Last Will only past 45 s; nothing should page."""
    if _near_another_outage(plan, t):
        return False
    b = t + int(ctx.rng.uniform(20, 100) * 1000)
    if _overlaps_evidence(plan, t, b):
        return False
    plan.effects.outages.append((t, b, "reboot"))
    ctx.add(
        plan,
        "gateway_reboot",
        t,
        b,
        forbid=(SITE_OFFLINE, DEVICE_OFFLINE),
        device=ctx.spec.gateway,
        notes="gateway reboot (power blip): messages lost, Last Will only if > 45 s; should not page",
    )
    return True
