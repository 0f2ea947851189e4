"""Device-reported falls (life-safety), re-raised as critical when no movement follows."""

from __future__ import annotations

from typing import ClassVar, Final

from detection.detectors.base import Context, Detector
from detection.models import AlertType, Severity
from detection.state import NEVER, HomeState
from gateway.models import DeviceKind, MessageType, Reading

STILL_CHECK_MS: Final = 120_000
"""After a fall, no sign of movement for this long makes the incident critical (fall + no motion)."""


class FallDetector(Detector):
    """Raises FALL on a wristband's or a radar's (``motion``) ``fall`` event; two minutes' stillness escalates it."""

    name: ClassVar[str] = "fall"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset(
        {(DeviceKind.WRISTBAND, MessageType.EVENT), (DeviceKind.MOTION, MessageType.EVENT)}
    )
    timer_names: ClassVar[tuple[str, ...]] = ("fall",)
    held_by_backlog: ClassVar[bool] = False
    min_confidence_critical: ClassVar[float] = 0.7

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Alert on every ``fall`` event, whatever its confidence (life-safety recall first)."""
        if r.event != "fall":
            return
        conf = float(r.fields.get("confidence", 1.0))
        sev = Severity.CRITICAL if conf >= self.min_confidence_critical else Severity.WARNING
        where = "in bed" if home.in_bed else "out of bed"
        where_zh = "在床上" if home.in_bed else "不在床上"
        home.fall_ms = t
        what, what_zh = ("Radar", "雷达") if r.kind is DeviceKind.MOTION else ("Wristband", "手环")
        ctx.emit(
            home,
            AlertType.FALL,
            sev,
            t,
            f"{what} {r.device} detected a fall (confidence {conf:.2f}); the elder is {where}.",
            f"{what_zh} {r.device} 检测到跌倒（置信度 {conf:.2f}），老人{where_zh}。",
            device=r.device,
            evidence={"confidence": conf, "in_bed": home.in_bed},
        )
        ctx.schedule(home, "fall", t + STILL_CHECK_MS)

    def on_timer(self, ctx: Context, home: HomeState, name: str, due: int) -> None:
        """Escalate if nothing moved since the fall."""
        fall = home.fall_ms
        if fall == NEVER:
            return
        home.fall_ms = NEVER
        if home.last_activity_ms > fall or home.in_bed:
            return
        ctx.emit(
            home,
            AlertType.FALL,
            Severity.CRITICAL,
            due,
            f"No movement for {STILL_CHECK_MS // 60000} min after the fall and the elder is not in bed"
            f" (last activity: {home.last_activity_src or 'none'}).",
            f"跌倒后 {STILL_CHECK_MS // 60000} 分钟内无任何活动，且老人不在床上"
            f"（最后活动：{home.last_activity_src or '无'}）。",
            evidence={"still_min": STILL_CHECK_MS // 60000, "followup": True},
        )
