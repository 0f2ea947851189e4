"""Smoke alarm (life-safety) and smoke-detector faults."""

from __future__ import annotations

from typing import Any, ClassVar

from detection.detectors.base import device_where
from detection.detectors.hazard import HazardAlarmDetector, in_bed_note
from detection.models import AlertType
from detection.state import HomeState
from gateway.models import DeviceKind, MessageType, Reading


class SmokeDetector(HazardAlarmDetector):
    """Raises SMOKE on the first ``alarm`` event (noting if the elder is in bed); ``clear`` ends it."""

    name: ClassVar[str] = "smoke"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset({(DeviceKind.SMOKE, MessageType.EVENT)})
    alert_type: ClassVar[AlertType] = AlertType.SMOKE
    alarm_en: ClassVar[str] = "Smoke alarm"
    device_en: ClassVar[str] = "Smoke detector"
    device_zh: ClassVar[str] = "烟感"
    protects_zh: ClassVar[str] = "火灾"

    def alarm_text(self, r: Reading, home: HomeState) -> tuple[str, str, dict[str, Any]]:
        """The obscuration if the detector sends it, and whether the elder is in bed."""
        level = r.fields.get("level")
        lv = f" (obscuration {level} %/m)" if level is not None else ""
        lv_zh = f"（烟雾浓度 {level} %/m）" if level is not None else ""
        bed, bed_zh = in_bed_note(home)
        evidence: dict[str, Any] = {"event": "alarm", "in_bed": home.in_bed}
        if level is not None:
            evidence["level"] = level
        zh, en = device_where(home, r.device)
        text = f"Smoke alarm {r.device}{en} is sounding{lv}.{bed}"
        return text, f"{zh}烟感 {r.device} 正在报警{lv_zh}。{bed_zh}", evidence
