"""Helpers of the detection tests (a module with a unique name, so test files can import it)."""

from __future__ import annotations

from typing import Any

from detection.config import DetectConfig
from detection.engine import Engine
from detection.homes import TYPICAL_DEVICES, DeviceInfo, HomeRegistry, SiteInfo
from detection.models import Alert, AlertType
from gateway.models import DeviceKind, MessageType, Reading

BASE = 1_772_380_800_000
"""2026-03-02 00:00 Asia/Shanghai."""
MIN = 60_000
DAY = 86_400_000

DEVICES = TYPICAL_DEVICES
KIND_OF = {d.device: d.kind for d in DEVICES}


def at(day: int, hh: int, mm: int = 0, ss: int = 0) -> int:
    """Epoch ms of a local (UTC+8) time ``day`` days after 2026-03-02."""
    return BASE + day * DAY + ((hh * 60 + mm) * 60 + ss) * 1000


def registry(
    *, solitary: bool = True, bedbound: bool = False, devices: tuple[DeviceInfo, ...] = DEVICES
) -> HomeRegistry:
    """One home ``h1`` with the standard devices."""
    return HomeRegistry(
        {"h1": SiteInfo(site="h1", gateway="gw-h1", devices=devices, solitary=solitary, bedbound=bedbound)}
    )


_seq = 0


def rd(device: str, t: int, *, event: str | None = None, status: bool = False, **fields: Any) -> Reading:
    """A decoded reading of home ``h1`` at event time ``t`` (received at the same time)."""
    global _seq
    _seq += 1
    if device.startswith("gw"):
        kind, mtype = DeviceKind.GATEWAY, MessageType.STATUS
    else:
        kind = KIND_OF[device]
        mtype = MessageType.STATUS if status else MessageType.EVENT if event else MessageType.TELEMETRY
    return Reading(
        site="h1",
        kind=kind,
        device=device,
        type=mtype,
        seq=_seq,
        ts_ms=t,
        received_ms=t,
        fields=dict(fields),
        event=event,
    )


FORTY_FIVE = (45.0, 45.0, 45.0, 45.0, 45.0)
RULES = DetectConfig(checkin_window_s=0, inactivity_population_min=FORTY_FIVE, fatigue_budget_per_month=0)
"""The detection rules on their own, with round thresholds: a behavioural alert pages at once (the check-in has its
own tests), the alarm-fatigue budget is off (tests/detect/test_detect_fatigue.py) and a new elder's inactivity limit
is 45 min in every block (the shipped prior, fitted on real homes, is clipped to the 2 h ceiling in a home with a
motion sensor)."""


class Home:
    """An engine watching ``h1`` plus every alert it raised (check-in off unless a config says otherwise)."""

    def __init__(self, engine: Engine | None = None, *, config: DetectConfig = RULES, **reg: Any) -> None:
        self.engine = engine or Engine(registry=registry(**reg), config=config)
        self.alerts: list[Alert] = []

    def send(self, *readings: Reading) -> list[Alert]:
        out: list[Alert] = []
        for r in readings:
            out += self.engine.process(r)
        self.alerts += out
        return out

    def advance(self, t: int) -> list[Alert]:
        out = self.engine.advance(t)
        self.alerts += out
        return out

    def of(self, type_: AlertType, *, clears: bool = False) -> list[Alert]:
        return [a for a in self.alerts if a.type is type_ and a.clears is clears]

    def motion_idle(self, start: int, end: int, *, step_min: int = 10) -> None:
        """PIR telemetry with zero counts every ``step_min`` minutes in ``(start, end]`` (a sensor that works)."""
        t = start + step_min * MIN
        while t <= end:
            self.send(rd("pir1", t, count=0, window_s=step_min * 60))
            t += step_min * MIN
