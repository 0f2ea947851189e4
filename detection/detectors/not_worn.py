"""Wristband not worn for longer than ``not_worn_limit_min`` in the daytime (taking it off for the night is fine)."""

from __future__ import annotations

from typing import ClassVar

from detection.baseline import hhmm
from detection.detectors.base import MIN_MS, Context, Detector, fmt_min, fmt_min_zh
from detection.models import AlertType, Severity
from detection.state import NEVER, HomeState
from gateway.models import DeviceKind, MessageType, Reading

PREFIX = "worn:"
RECHECK_MS = 30 * 60_000
QUIET_START_MIN = 21 * 60
QUIET_END_MIN = 8 * 60


class NotWornDetector(Detector):
    """NOT_WORN when the band is not worn for the limit while the elder is up (from the usual deadline if not up)."""

    name: ClassVar[str] = "not_worn"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset(
        {(DeviceKind.WRISTBAND, MessageType.TELEMETRY), (DeviceKind.WRISTBAND, MessageType.EVENT)}
    )
    timer_names: ClassVar[tuple[str, ...]] = (PREFIX,)

    def _due(self, ctx: Context, home: HomeState, since: int) -> int:
        limit = int(self.config.not_worn_limit_min * MIN_MS)
        if home.has_mattress:
            return since + limit  # on_timer follows the elder's morning from there
        m = ctx.local_min(since)
        if m >= QUIET_START_MIN or m < QUIET_END_MIN:
            return ctx.next_local(since, QUIET_END_MIN) + limit
        due = since + limit
        m_due = ctx.local_min(due)
        if m_due >= QUIET_START_MIN or m_due < QUIET_END_MIN:
            return ctx.next_local(due, QUIET_END_MIN) + limit
        return due

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Start or stop the not-worn clock."""
        dev = home.devices.get(r.device)
        if dev is None:
            return
        if r.type is MessageType.TELEMETRY:
            worn = r.fields.get("worn")
        elif r.event in ("removed", "worn"):
            worn = r.event == "worn"
        else:
            return
        if worn is None:
            return
        if worn:
            if dev.not_worn_since_ms != NEVER:
                dev.not_worn_since_ms = NEVER
                ctx.cancel(home, PREFIX + r.device)
                ctx.clear(
                    home,
                    PREFIX + r.device,
                    AlertType.NOT_WORN,
                    t,
                    f"Wristband {r.device} is worn again.",
                    f"手环 {r.device} 已重新佩戴。",
                    device=r.device,
                )
        elif dev.not_worn_since_ms == NEVER:
            dev.not_worn_since_ms = t
            ctx.schedule(home, PREFIX + r.device, self._due(ctx, home, t))

    def on_timer(self, ctx: Context, home: HomeState, name: str, due: int) -> None:
        """Alert if still not worn."""
        device = name[len(PREFIX) :]
        dev = home.devices.get(device)
        if dev is None or dev.not_worn_since_ms == NEVER:
            return
        since = dev.not_worn_since_ms
        if home.has_mattress:
            # Count only daytime out of bed (a band off overnight is on the charger, not forgotten); for a
            # bedbound elder, count the day from the usual getting-up deadline.
            limit = int(self.config.not_worn_limit_min * MIN_MS)
            if ctx.is_night(due) or ctx.local_min(due) >= QUIET_START_MIN:
                # evening and night: taking the band off to charge or sleep is normal
                ctx.schedule(home, name, ctx.next_local(due, self.config.night_end_min))
                return
            if home.bedbound:
                deadline = ctx.next_local(due - 86_400_000, home.baseline.not_up_min)  # latest one ≤ due
                if ctx.local_min(due) < home.baseline.not_up_min:
                    ctx.schedule(home, name, deadline + 86_400_000 + limit)  # this morning's is still ahead
                    return
                start = max(since, deadline)
            elif home.in_bed:
                ctx.schedule(home, name, due + RECHECK_MS)
                return
            else:
                start = max(since, home.out_of_bed_since_ms)
            if start + limit > due:
                ctx.schedule(home, name, start + limit)
                return
        ctx.emit(
            home,
            AlertType.NOT_WORN,
            Severity.INFO,
            due,
            f"Wristband {device} not worn since {hhmm(ctx.local_min(since))} ({fmt_min((due - since) / MIN_MS)});"
            f" falls and SOS cannot be detected. Limit {fmt_min(self.config.not_worn_limit_min)} out of bed"
            " in the daytime.",
            f"手环 {device} 自 {hhmm(ctx.local_min(since))} 起未佩戴（{fmt_min_zh((due - since) / MIN_MS)}），"
            f"无法检测跌倒和SOS。阈值为白天离床 {fmt_min_zh(self.config.not_worn_limit_min)}。",
            device=device,
            evidence={"since": hhmm(ctx.local_min(since)), "limit_min": self.config.not_worn_limit_min},
            key=name,
        )
