"""Door opened at night with no return (wandering): no sign of anyone inside after the door, for N minutes."""

from __future__ import annotations

from typing import ClassVar

from detection.baseline import hhmm
from detection.detectors.base import MIN_MS, Context, Detector
from detection.models import AlertType, Severity
from detection.presence import DOOR_OPEN, INSIDE, RETURNED, confirm_up
from detection.state import NEVER, HomeState
from gateway.models import DeviceKind, MessageType, Reading

KEY = "night_door"
TIMER = "night_door"
SETTLE_MS = 30_000
"""Motion this soon after the door closes is the elder leaving, not someone inside."""


class NightDoorDetector(Detector):
    """NIGHT_DOOR when the door opens between 22:00 and 06:00 and nobody moves inside for ``night_door_limit_min``."""

    name: ClassVar[str] = "night_door"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset(
        (k, t)
        for k in (DeviceKind.DOOR, DeviceKind.MOTION, DeviceKind.MATTRESS, DeviceKind.CALL_BUTTON)
        for t in (MessageType.EVENT, MessageType.TELEMETRY)
    )
    only_on_flags: ClassVar[bool] = True
    timer_names: ClassVar[tuple[str, ...]] = (TIMER,)

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Start the clock on a night door opening; clear on the return."""
        if (
            flags & DOOR_OPEN
            and not home.away
            and ctx.is_night(t)
            and home.night_door_ms == NEVER
            and not confirm_up(ctx, home, t)  # up for the day already (05:50 walk): an outing, not wandering
        ):
            home.night_door_ms = t
            ctx.schedule(home, TIMER, t + int(self.config.night_door_limit_min * MIN_MS))
        elif KEY in home.open and flags & (INSIDE | RETURNED):
            ctx.clear(
                home, KEY, AlertType.NIGHT_DOOR, t, "Someone is back inside the home.", "家中重新检测到有人活动。"
            )

    def on_timer(self, ctx: Context, home: HomeState, name: str, due: int) -> None:
        """Alert if nothing inside moved after the door."""
        opened = home.night_door_ms
        home.night_door_ms = NEVER
        if opened == NEVER or home.in_bed:
            return
        after = max(opened, home.door_close_ms if home.door_close_ms >= opened else opened) + SETTLE_MS
        if home.inside_start_ms > after:
            return
        limit = self.config.night_door_limit_min
        closed = hhmm(ctx.local_min(home.door_close_ms)) if home.door_close_ms >= opened else "not closed"
        ctx.emit(
            home,
            AlertType.NIGHT_DOOR,
            Severity.WARNING,
            due,
            f"Front door opened at {hhmm(ctx.local_min(opened))} at night (closed: {closed}) and no movement inside"
            f" for {limit:.0f} min since (fixed night rule 22:00–06:00): the elder may have wandered off.",
            f"夜间 {hhmm(ctx.local_min(opened))} 开门（关门：{closed}），此后 {limit:.0f} 分钟家中无任何活动"
            f"（夜间22:00–06:00固定规则）：老人可能已走失。",
            evidence={"opened": hhmm(ctx.local_min(opened)), "limit_min": limit},
            key=KEY,
        )
