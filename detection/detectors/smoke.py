"""Smoke alarm (life-safety) and smoke-detector faults."""

from __future__ import annotations

from typing import ClassVar

from detection.detectors.base import Context, Detector
from detection.models import AlertType, Severity
from detection.state import HomeState
from gateway.models import DeviceKind, MessageType, Reading


class SmokeDetector(Detector):
    """Raises SMOKE on the first ``alarm`` event (noting if the elder is in bed); ``clear`` ends it."""

    name: ClassVar[str] = "smoke"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset({(DeviceKind.SMOKE, MessageType.EVENT)})

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Alert on ``alarm``; clear on ``clear``; DEVICE_FAULT on ``fault``."""
        ev = r.event
        key = f"smoke:{r.device}"
        if ev == "alarm":
            level = r.fields.get("level")
            lv = f" (obscuration {level} %/m)" if level is not None else ""
            lv_zh = f"（烟雾浓度 {level} %/m）" if level is not None else ""
            bed = " The elder is in bed." if home.in_bed else ""
            bed_zh = "老人此时在床上。" if home.in_bed else ""
            home.open[key] = t
            ctx.emit(
                home,
                AlertType.SMOKE,
                Severity.CRITICAL,
                t,
                f"Smoke alarm {r.device} is sounding{lv}.{bed}",
                f"烟感 {r.device} 正在报警{lv_zh}。{bed_zh}",
                device=r.device,
                evidence={"event": "alarm", "in_bed": home.in_bed, **({"level": level} if level is not None else {})},
            )
        elif ev == "clear":
            ctx.clear(
                home,
                key,
                AlertType.SMOKE,
                t,
                f"Smoke alarm {r.device} cleared.",
                f"烟感 {r.device} 报警解除。",
                device=r.device,
            )
        elif ev == "fault":
            code = r.fields.get("code", "unknown")
            ctx.emit(
                home,
                AlertType.DEVICE_FAULT,
                Severity.WARNING,
                t,
                f"Smoke detector {r.device} reports a fault (code {code}); the home may be unprotected.",
                f"烟感 {r.device} 上报故障（代码 {code}），该户可能失去火灾保护。",
                device=r.device,
                evidence={"code": str(code)},
            )
