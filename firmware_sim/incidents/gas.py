"""Gas leaks (a burner left on, a loose hose), the odd test press and sensor faults of the kitchen gas detector.

Planned from a random stream of their own (``[seed, home, 7]``) after everything else, so adding the gas detector
left every other device's messages of a seed byte-identical; incident ids are ``{site}-g01`` ... for the same reason.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from firmware_sim.delivery import EVAL_AFTER_MS, _Delivery
from firmware_sim.models import DAY_MS, GAS_DEVICE, HOUR_MS, MINUTE_MS, Incident, Mix
from firmware_sim.plan import DEVICE_FAULT, GAS, Plan

LEAKS_PER_30_DAYS: Final = {Mix.NORMAL: 0.1, Mix.INCIDENT_RICH: 1.5, Mix.DEVICE_FAULTY: 0.1}
FAULTS_PER_30_DAYS: Final = {Mix.NORMAL: 0.0, Mix.INCIDENT_RICH: 0.0, Mix.DEVICE_FAULTY: 0.5}
TESTS_PER_30_DAYS: Final = 0.5


def _times(rng: np.random.Generator, plan: Plan, per_30_days: float, h0: float, h1: float) -> list[int]:
    n = int(rng.poisson(per_30_days * plan.days / 30))
    days = rng.integers(0, plan.days, n)
    hours = rng.uniform(h0, h1, n)
    return sorted(plan.start_ms + int(d) * DAY_MS + int(h * HOUR_MS) for d, h in zip(days, hours, strict=True))


def plan_gas(plan: Plan, rng: np.random.Generator) -> None:
    """Plan this home's gas events and their ground truth (leaks expect GAS, faults DEVICE_FAULT)."""
    plan.gas_seed = int(rng.integers(0, 2**63))
    mix = plan.spec.mix
    fx = plan.effects
    site = plan.spec.site
    found: list[Incident] = []
    for t in _times(rng, plan, LEAKS_PER_30_DAYS[mix], 7, 20):
        lel = int(rng.integers(12, 45))
        valve = bool(rng.random() < 0.6)
        dur = int(rng.uniform(5, 40) * MINUTE_MS)
        fx.gas_events += [(t, "alarm", (lel, valve)), (t + dur, "clear", None)]
        notes = f"gas leak in the kitchen, {lel} %LEL" + (", detector closed the valve" if valve else "")
        found.append(
            Incident(
                id="",
                site=site,
                type="gas_leak",
                start_ms=t,
                end_ms=t + dur,
                expect=(GAS,),
                device=GAS_DEVICE,
                notes=notes,
            )
        )
    for t in _times(rng, plan, FAULTS_PER_30_DAYS[mix], 0, 24):
        fx.gas_events.append((t, "fault", f"F0{int(rng.integers(1, 6))}"))
        found.append(
            Incident(
                id="",
                site=site,
                type="gas_fault",
                start_ms=t,
                end_ms=t + HOUR_MS,
                expect=(DEVICE_FAULT,),
                device=GAS_DEVICE,
                notes="gas sensor fault",
            )
        )
    for t in _times(rng, plan, TESTS_PER_30_DAYS, 9, 18):
        fx.gas_events.append((t, "test", None))  # a test press proves the detector works: no incident
    fx.gas_events.sort(key=lambda e: e[0])
    d = _Delivery(plan)
    for k, inc in enumerate(found, start=1):
        why = d.events("gas", [inc.start_ms], life_safety=inc.type == "gas_leak", by_ms=inc.end_ms + EVAL_AFTER_MS)
        alert = inc.expect[0]
        plan.incidents.append(
            Incident(
                id=f"{site}-g{k:02d}",
                site=site,
                type=inc.type,
                start_ms=inc.start_ms,
                end_ms=inc.end_ms,
                expect=() if why else inc.expect,
                undeliverable=((alert, why),) if why else (),
                device=inc.device,
                notes=inc.notes,
            )
        )
