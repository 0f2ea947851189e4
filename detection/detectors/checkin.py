"""A check-in before a page: a behavioural alert first asks the elder, and pages only without an answer.

:meth:`~detection.detectors.base.Context.emit` holds an alert of :data:`~detection.models.CHECKIN_TYPES` (never a
life-safety alert) and records a ``prompt``: the live service sends the downlink ``cmd: checkin`` to the home's
call button / terminal ("are you all right? press the button", docs/contract.md). This detector then:

- **answered**: any sign of the elder inside the home after the prompt (motion, a contact, the bed, the wristband's
  steps, the button's "I'm fine" ``cancel``) within ``checkin_window_s``: the held alerts are dropped, their
  conditions closed without a page, and the day counts one "elder fine" label (learned from, never excluded);
- **help / no answer**: a call-button ``press`` (also an SOS of its own) or the window running out: the held alerts
  page, at the time of the decision, with the prompt in their explanation.

In replay and evaluation the same rule decides: a prompt is answered when the recording shows the elder active
within the window.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from detection.baseline import hhmm
from detection.detectors.base import CHECKIN_TIMER, Context, Detector, fmt_min, fmt_min_zh
from detection.models import CheckIn
from detection.presence import ACTIVITY, INSIDE
from detection.state import NEVER, HomeState
from gateway.models import DeviceKind, MessageType, Reading


class CheckInDetector(Detector):
    """Resolves open check-in prompts: answered by activity, paged on help or silence."""

    name: ClassVar[str] = "checkin"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset(
        (k, t) for k in DeviceKind if k is not DeviceKind.GATEWAY for t in (MessageType.EVENT, MessageType.TELEMETRY)
    )
    only_on_flags: ClassVar[bool] = True
    timer_names: ClassVar[tuple[str, ...]] = (CHECKIN_TIMER,)

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Activity after the prompt answers it; a call-button press is "help"."""
        if home.checkin_ms == NEVER or t < home.checkin_ms:
            return
        if r.kind is DeviceKind.CALL_BUTTON and r.event == "press":
            ctx.cancel(home, CHECKIN_TIMER)
            self._page(ctx, home, t, "help")
            return
        if not flags & (ACTIVITY | INSIDE):
            return
        ctx.cancel(home, CHECKIN_TIMER)
        for key in home.checkin_keys:
            if key:
                home.open.pop(key, None)
        types = tuple(a.type.value for a in home.checkin_alerts)
        ctx.checkins.append(
            CheckIn(
                site=home.site,
                time_ms=t,
                what="answered",
                types=types,
                prompt_ms=home.checkin_ms,
                detail=home.last_activity_src,
            )
        )
        home.day.fine_labels += 1
        home.checkin_alerts = []
        home.checkin_keys = []
        home.checkin_ms = NEVER

    def on_timer(self, ctx: Context, home: HomeState, name: str, due: int) -> None:
        """No answer within the window: page."""
        if home.checkin_ms != NEVER:
            self._page(ctx, home, due, "none")

    @staticmethod
    def _page(ctx: Context, home: HomeState, t: int, answer: str) -> None:
        prompt = home.checkin_ms
        waited = (t - prompt) / 60_000
        at = hhmm(ctx.local_min(prompt))
        if answer == "help":
            en, zh = f" Check-in at {at}: the elder asked for help.", f" {at} 询问老人：老人按键求助。"
        else:
            en = f" Check-in at {at}: no answer within {fmt_min(waited)}."
            zh = f" {at} 已询问老人：{fmt_min_zh(waited)}内无应答。"
        for a in home.checkin_alerts:
            if home.site_offline:
                continue
            ev = dict(a.evidence)
            ev["checkin_prompt"] = at
            ev["checkin_answer"] = answer
            ctx.page(
                home,
                msgspec.structs.replace(
                    a, time_ms=t, explanation=a.explanation + en, explanation_zh=a.explanation_zh + zh, evidence=ev
                ),
            )
        ctx.checkins.append(
            CheckIn(
                site=home.site,
                time_ms=t,
                what="paged",
                types=tuple(a.type.value for a in home.checkin_alerts),
                prompt_ms=prompt,
                detail=answer,
            )
        )
        home.checkin_alerts = []
        home.checkin_keys = []
        home.checkin_ms = NEVER
