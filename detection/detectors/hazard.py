"""What smoke and gas alarms share: raise on the first ``alarm`` (life-safety), end on ``clear``, faults as such."""

from __future__ import annotations

from typing import Any, ClassVar

from detection.detectors.base import Context, Detector
from detection.models import AlertType, Severity
from detection.state import HomeState
from gateway.models import Reading


class HazardAlarmDetector(Detector):
    """A life-safety alarm device: ``alarm`` raises :attr:`alert_type` at once, ``clear`` ends it, ``fault`` warns.

    Subclasses name the device and describe their alarm (:meth:`alarm_text`); every other event (``test``,
    ``silence``) raises nothing, and the message itself keeps the device alive for the offline rule.
    """

    alert_type: ClassVar[AlertType]
    alarm_en: ClassVar[str]
    """How the alarm is named when it clears, e.g. "Smoke alarm"."""
    device_en: ClassVar[str]
    """How the device is named in a fault, e.g. "Smoke detector"."""
    device_zh: ClassVar[str]
    protects_zh: ClassVar[str]
    """What a fault leaves the home without, e.g. 火灾."""

    def alarm_text(self, r: Reading, home: HomeState) -> tuple[str, str, dict[str, Any]]:
        """The alarm's explanation in English and Chinese, and its evidence."""
        raise NotImplementedError

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Alert on ``alarm``; clear on ``clear``; DEVICE_FAULT on ``fault``."""
        ev = r.event
        key = f"{self.name}:{r.device}"
        if ev == "alarm":
            en, zh, evidence = self.alarm_text(r, home)
            home.open[key] = t
            ctx.emit(home, self.alert_type, Severity.CRITICAL, t, en, zh, device=r.device, evidence=evidence)
        elif ev == "clear":
            ctx.clear(
                home,
                key,
                self.alert_type,
                t,
                f"{self.alarm_en} {r.device} cleared.",
                f"{self.device_zh} {r.device} 报警解除。",
                device=r.device,
            )
        elif ev == "fault":
            code = r.fields.get("code", "unknown")
            ctx.emit(
                home,
                AlertType.DEVICE_FAULT,
                Severity.WARNING,
                t,
                f"{self.device_en} {r.device} reports a fault (code {code}); the home may be unprotected.",
                f"{self.device_zh} {r.device} 上报故障（代码 {code}），该户可能失去{self.protects_zh}保护。",
                device=r.device,
                evidence={"code": str(code)},
            )


def in_bed_note(home: HomeState) -> tuple[str, str]:
    """The note that the elder is in bed, when they are (someone must go in and wake them), in English and Chinese."""
    return (" The elder is in bed.", "老人此时在床上。") if home.in_bed else ("", "")
