"""Breathing pauses reported by the mattress: one long pause is critical, many pauses make a warning."""

from __future__ import annotations

from typing import ClassVar

from detection.detectors.base import Context, Detector
from detection.models import AlertType, Severity
from detection.state import HomeState
from gateway.models import DeviceKind, MessageType, Reading

HOUR_MS = 3_600_000


class ApneaDetector(Detector):
    """APNEA critical for a pause ≥ ``apnea_critical_s``; a warning for ≥ N pauses ≥ ``apnea_warn_s`` in an hour."""

    name: ClassVar[str] = "apnea"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset({(DeviceKind.MATTRESS, MessageType.EVENT)})

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Decide on each ``apnea`` event."""
        if r.event != "apnea":
            return
        c = self.config
        dur = float(r.fields.get("duration_s", 0.0))
        if dur >= c.apnea_critical_s:
            ctx.emit(
                home,
                AlertType.APNEA,
                Severity.CRITICAL,
                t,
                f"Breathing pause of {dur:.0f} s (≥ {c.apnea_critical_s:.0f} s, fixed safety limit) on mattress"
                f" {r.device}.",
                f"床垫 {r.device} 监测到呼吸暂停 {dur:.0f} 秒（超过固定安全阈值 {c.apnea_critical_s:.0f} 秒）。",
                device=r.device,
                evidence={"duration_s": dur, "limit_s": c.apnea_critical_s},
            )
            return
        if dur < c.apnea_warn_s:
            return
        home.day.apnea_count += 1
        times = [x for x in home.apnea_times if x > t - HOUR_MS]
        times.append(t)
        home.apnea_times = times
        if len(times) >= c.apnea_warn_count:
            ctx.emit(
                home,
                AlertType.APNEA,
                Severity.WARNING,
                t,
                f"{len(times)} breathing pauses of ≥ {c.apnea_warn_s:.0f} s within the last hour (limit"
                f" {c.apnea_warn_count}); latest {dur:.0f} s.",
                f"过去一小时内出现 {len(times)} 次≥{c.apnea_warn_s:.0f} 秒的呼吸暂停（阈值 {c.apnea_warn_count} 次），"
                f"最近一次 {dur:.0f} 秒。",
                device=r.device,
                evidence={"count_1h": len(times), "limit": c.apnea_warn_count},
                key=f"apnea:{ctx.care_day(t)}",
            )
