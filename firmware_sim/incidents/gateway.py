"""Home gateway outages: an internet outage (Last Will, events queued) and a reboot (messages lost)."""

from __future__ import annotations

from collections.abc import Callable
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


def _outage(
    ctx: Context,
    plan: Plan,
    kind: str,
    t: int,
    duration_ms: Callable[[], int],
    what: str,
    *,
    expect: tuple[str, ...] = (),
    forbid: tuple[str, ...],
    notes: str,
) -> bool:
    """Plan an outage from ``t`` (drawn after the check for a nearby one), unless it would hide evidence."""
    if _near_another_outage(plan, t):
        return False
    b = t + duration_ms()
    if _overlaps_evidence(plan, t, b):
        return False
    plan.effects.outages.append((t, b, what))
    ctx.add(plan, kind, t, b, expect=expect, forbid=forbid, device=ctx.spec.gateway, notes=notes)
    return True


def gateway_offline(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """Internet down for 20 min to 8 h: Last Will after ~45 s, events queued and sent on reconnect."""
    return _outage(
        ctx, plan, "gateway_offline", t, lambda: m(ctx.rng.uniform(20, 8 * 60)), "wan",
        expect=(SITE_OFFLINE,), forbid=(DEVICE_OFFLINE, INACTIVITY, NOT_UP),
        notes="internet outage: Last Will after ~45 s; events buffered and sent on reconnect",
    )  # fmt: skip


def gateway_reboot(ctx: Context, plan: Plan, day: int, t: int) -> bool:
    """A power blip: 20–100 s of lost messages; a Last Will only past 45 s; nothing should page."""
    return _outage(
        ctx, plan, "gateway_reboot", t, lambda: int(ctx.rng.uniform(20, 100) * 1000), "reboot",
        forbid=(SITE_OFFLINE, DEVICE_OFFLINE),
        notes="gateway reboot (power blip): messages lost, Last Will only if > 45 s; should not page",
    )  # fmt: skip
