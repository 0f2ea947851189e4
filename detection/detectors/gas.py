"""Gas leak alarm (life-safety) and gas-detector faults."""

from __future__ import annotations

from typing import ClassVar

from detection.detectors.base import Context, Detector
from detection.models import AlertType, Severity
from detection.state import HomeState
from gateway.models import DeviceKind, MessageType, Reading


class GasDetector(Detector):
    """Raises GAS on the first ``alarm`` event (noting if the elder is in bed); ``clear`` ends it.

    ``test`` and ``silence`` raise nothing: the message itself keeps the device alive for the offline rule.
    """

    name: ClassVar[str] = "gas"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset({(DeviceKind.GAS, MessageType.EVENT)})

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Alert on ``alarm``; clear on ``clear``; DEVICE_FAULT on ``fault``."""
        ev = r.event
        key = f"gas:{r.device}"
        if ev == "alarm":
            lel = r.fields.get("lel")
            valve = r.fields.get("valve_closed")
            lv = f" ({lel} %LEL)" if lel is not None else ""
            lv_zh = f"（浓度 {lel} %LEL）" if lel is not None else ""
            vv = " The detector closed the gas valve." if valve is True else ""
            vv_zh = "报警器已关闭燃气阀。" if valve is True else ""
            bed = " The elder is in bed." if home.in_bed else ""
            bed_zh = "老人此时在床上。" if home.in_bed else ""
            home.open[key] = t
            evidence: dict[str, float | int | str | bool] = {"event": "alarm", "in_bed": home.in_bed}
            if lel is not None:
                evidence["lel"] = lel
            if valve is not None:
                evidence["valve_closed"] = valve
            ctx.emit(
                home,
                AlertType.GAS,
                Severity.CRITICAL,
                t,
                f"Gas detector {r.device} is sounding a gas leak alarm{lv}.{vv}{bed}",
                f"燃气报警器 {r.device} 检测到燃气泄漏{lv_zh}。{vv_zh}{bed_zh}",
                device=r.device,
                evidence=evidence,
            )
        elif ev == "clear":
            ctx.clear(
                home,
                key,
                AlertType.GAS,
                t,
                f"Gas alarm {r.device} cleared.",
                f"燃气报警器 {r.device} 报警解除。",
                device=r.device,
            )
        elif ev == "fault":
            code = r.fields.get("code", "unknown")
            ctx.emit(
                home,
                AlertType.DEVICE_FAULT,
                Severity.WARNING,
                t,
                f"Gas detector {r.device} reports a fault (code {code}); the home may be unprotected.",
                f"燃气报警器 {r.device} 上报故障（代码 {code}），该户可能失去燃气泄漏保护。",
                device=r.device,
                evidence={"code": str(code)},
            )
