"""Calls for help: wristband SOS key and the emergency call button (life-safety, first message, O(1))."""

from __future__ import annotations

from typing import ClassVar

from detection.detectors.base import Context, Detector, device_where
from detection.models import AlertType, Severity
from detection.state import HomeState
from gateway.models import DeviceKind, MessageType, Reading


class SosDetector(Detector):
    """Raises SOS / CALL_BUTTON on the press itself; a cancel reports the press as cleared."""

    name: ClassVar[str] = "sos"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset(
        {(DeviceKind.WRISTBAND, MessageType.EVENT), (DeviceKind.CALL_BUTTON, MessageType.EVENT)}
    )

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Alert on ``sos`` / ``press``; clear on ``cancel``."""
        ev = r.event
        if ev == "sos":
            ctx.emit(
                home,
                AlertType.SOS,
                Severity.CRITICAL,
                t,
                f"SOS key pressed on wristband {r.device}.",
                f"手环 {r.device} 按下了SOS紧急呼救键。",
                device=r.device,
                evidence={"event": "sos"},
            )
        elif ev == "press":
            home.open[f"call:{r.device}"] = t
            zh, en = device_where(home, r.device)
            ctx.emit(
                home,
                AlertType.CALL_BUTTON,
                Severity.CRITICAL,
                t,
                f"Emergency call button {r.device}{en} pressed.",
                f"{zh}一键呼叫按钮 {r.device} 被按下。",
                device=r.device,
                evidence={"event": "press"},
            )
        elif ev == "cancel":
            ctx.clear(
                home,
                f"call:{r.device}",
                AlertType.CALL_BUTTON,
                t,
                f"The elder cancelled the call on button {r.device}.",
                f"老人取消了按钮 {r.device} 的呼叫。",
                device=r.device,
            )
