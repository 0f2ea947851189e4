"""Gas leak alarm (life-safety) and gas-detector faults."""

from __future__ import annotations

from typing import Any, ClassVar

from detection.detectors.base import device_where
from detection.detectors.hazard import HazardAlarmDetector, in_bed_note
from detection.models import AlertType
from detection.state import HomeState
from gateway.models import DeviceKind, MessageType, Reading


class GasDetector(HazardAlarmDetector):
    """Raises GAS on the first ``alarm`` event (noting if the elder is in bed); ``clear`` ends it.

    ``test`` and ``silence`` raise nothing: the message itself keeps the device alive for the offline rule.
    """

    name: ClassVar[str] = "gas"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset({(DeviceKind.GAS, MessageType.EVENT)})
    alert_type: ClassVar[AlertType] = AlertType.GAS
    alarm_en: ClassVar[str] = "Gas alarm"
    device_en: ClassVar[str] = "Gas detector"
    device_zh: ClassVar[str] = "燃气报警器"
    protects_zh: ClassVar[str] = "燃气泄漏"

    def alarm_text(self, r: Reading, home: HomeState) -> tuple[str, str, dict[str, Any]]:
        """The concentration (%LEL) and whether the detector closed the valve, if it says so."""
        lel = r.fields.get("lel")
        valve = r.fields.get("valve_closed")
        lv = f" ({lel} %LEL)" if lel is not None else ""
        lv_zh = f"（浓度 {lel} %LEL）" if lel is not None else ""
        vv = " The detector closed the gas valve." if valve is True else ""
        vv_zh = "报警器已关闭燃气阀。" if valve is True else ""
        bed, bed_zh = in_bed_note(home)
        evidence: dict[str, Any] = {"event": "alarm", "in_bed": home.in_bed}
        if lel is not None:
            evidence["lel"] = lel
        if valve is not None:
            evidence["valve_closed"] = valve
        zh, en = device_where(home, r.device)
        text = f"Gas detector {r.device}{en} is sounding a gas leak alarm{lv}.{vv}{bed}"
        return text, f"{zh}燃气报警器 {r.device} 检测到燃气泄漏{lv_zh}。{vv_zh}{bed_zh}", evidence
