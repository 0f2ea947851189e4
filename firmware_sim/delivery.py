"""Ground truth vs. delivery: which expected alerts the evidence of a plan can actually reach the backend for.

An incident whose evidence never arrives in its window (band on the charger, device offline, events queued by a
gateway that is down) moves that alert into ``undeliverable`` with the reason, so the evaluation does not count
it as a miss. :class:`_Delivery` mirrors what the renderers (:mod:`firmware_sim.renderers`) send.
"""

from __future__ import annotations

import bisect
from dataclasses import replace
from typing import Final

from firmware_sim.models import ABSENT, DAY_MS, IN_BED, MINUTE_MS, TZ_OFFSET_MS, Incident
from firmware_sim.plan import (
    APNEA,
    CALL_BUTTON,
    DEVICE_FAULT,
    FALL,
    NIGHT_BED_EXIT,
    NIGHT_DOOR,
    OUT_NOT_BACK,
    SMOKE,
    SOS,
    TAMPER,
    VITALS_CRITICAL,
    Plan,
)

EVAL_AFTER_MS: Final = 5 * MINUTE_MS
"""How long after an incident's end an alert still counts for it (``detection.evaluate.AFTER_MS``)."""
LIFE_SAFETY_RETRY_MS: Final = 5_000
"""A life-safety event a device could not deliver (gateway rebooting) is retried until acknowledged."""
QUEUE_FLUSH_MS: Final = 2_000
"""After an internet outage the gateway sends what it queued within a few seconds (see the renderer)."""


def _fmt_local(ms: int) -> str:
    local = (ms + TZ_OFFSET_MS) % DAY_MS // MINUTE_MS
    return f"{local // 60:02d}:{local % 60:02d}"


class _Delivery:
    """What the plan lets reach the backend: worn band, online devices, gateway up (mirrors the renderer)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.fx = plan.effects
        self.worn_t = [w[0] for w in plan.worn]

    def worn(self, t: int) -> bool:
        i = bisect.bisect_right(self.worn_t, t) - 1
        return self.plan.worn[max(i, 0)][1]

    def offline(self, kind: str, t: int) -> bool:
        return any(a <= t < b for a, b in self.fx.offline.get(kind, ()))

    def outage(self, t: int) -> tuple[int, int, str] | None:
        return next((o for o in self.fx.outages if o[0] <= t < o[1]), None)

    def events(self, kind: str, times: list[int], *, life_safety: bool, by_ms: int) -> str | None:
        """None if at least one of the events reaches the backend by ``by_ms``; else why none does."""
        why = f"{kind} offline (dead or out of radio range): its events never arrive"
        for t in times:
            if self.offline(kind, t):
                continue
            out = self.outage(t)
            if out is None:
                return None
            a, b, what = out
            if what == "reboot":
                if life_safety:
                    return None  # the device retries until the gateway is back, seconds later
                why = "lost while the gateway rebooted"
            elif b + QUEUE_FLUSH_MS <= by_ms:
                return None
            else:
                why = f"queued by the gateway during an internet outage until {_fmt_local(b)}, after the incident"
        return why if times else "no evidence message planned"

    def band(self, t: int, by_ms: int) -> str | None:
        if not self.worn(t):
            return "wristband not worn (on the charger): the SOS key and the fall sensor are out of reach"
        if self.plan.state_at(t) in ABSENT:
            return "wristband out of the home gateway's range; its small buffer may drop the event"
        return self.events("wristband", [t], life_safety=True, by_ms=by_ms)

    def vitals(self, a: int, b: int, hr: float) -> str | None:
        """A heart-rate episode is seen if a worn band or an occupied, online mattress reports long enough."""
        severe = hr < 38 or hr > 140  # detection.config hr_low_severe / hr_high_severe: 1 min, else 10 min
        need = 2 if severe else 11
        run = best = 0
        for m in range(a, b, MINUTE_MS):
            state = self.plan.state_at(m)
            seen = (state in IN_BED and not self.offline("mattress", m)) or (self.worn(m) and state not in ABSENT)
            run = run + 1 if seen and self.outage(m) is None else 0
            best = max(best, run)
        if best >= need:
            return None
        return f"no heart-rate source for {need} min: band not worn and mattress empty or offline (or gateway down)"


def reconcile(plan: Plan) -> None:
    """Move expected alerts the system cannot raise in the incident window into ``undeliverable``.

    The band's SOS and fall events are not even generated when the band is off the wrist: nobody can press it.
    """
    d = _Delivery(plan)
    fx = plan.effects
    devices = {v: k for k, v in plan.spec.devices.items()}
    out: list[Incident] = []
    for inc in plan.incidents:
        a, b, by = inc.start_ms, inc.end_ms, inc.end_ms + EVAL_AFTER_MS
        gone: list[tuple[str, str]] = []
        for alert in inc.expect:
            why: str | None = None
            if alert in (SOS, FALL):
                why = d.band(a, by)
            elif alert == CALL_BUTTON:
                why = d.events("call_button", [a], life_safety=True, by_ms=by)
            elif alert == SMOKE:
                alarms = [t for t, what, _ in fx.smoke_events if what == "alarm" and a <= t <= b]
                why = d.events("smoke", alarms, life_safety=True, by_ms=by)
            elif alert == APNEA:
                why = d.events("mattress", [t for t, _ in fx.apneas if a <= t <= b], life_safety=False, by_ms=by)
            elif alert == NIGHT_BED_EXIT:
                why = d.events("mattress", [a + 5_000], life_safety=False, by_ms=by)
            elif alert in (NIGHT_DOOR, OUT_NOT_BACK):
                why = d.events("door", [a], life_safety=False, by_ms=by)
            elif alert == DEVICE_FAULT:
                why = d.events("smoke", [a], life_safety=False, by_ms=by)
            elif alert == TAMPER and inc.device in devices:
                why = d.events(devices[inc.device], [a], life_safety=False, by_ms=by)
            elif alert == VITALS_CRITICAL:
                hr = next((v[2] for v in fx.vitals if v[0] == a), None)
                why = d.vitals(a, b, hr) if hr is not None else None
            if why is not None:
                gone.append((alert, why))
        if gone:
            if any(alert in (SOS, FALL) for alert, _ in gone):
                fx.band_events = [e for e in fx.band_events if e[0] != a]
            dropped = {alert for alert, _ in gone}
            inc = replace(inc, expect=tuple(x for x in inc.expect if x not in dropped), undeliverable=tuple(gone))
        out.append(inc)
    plan.incidents = out
