"""Device offline, from an expected-silence model per device kind: declared cadence, tightened by what was learned.

One rule, :func:`offline_limit_ms`, used by this detector and by the console's device list
(``dashboards/device_report.py``), so both call a device offline at the same silence:

- **event-driven kinds** (PIR, door contact, smoke detector, call button) report on change plus a sparse heartbeat.
  Their liveness comes from the heartbeat, never from the person: the limit is ``offline_event_cadences`` × the
  declared heartbeat + ``offline_event_grace_s`` (a PIR: 2 h 05 min, a door contact: 12 h 05 min), tightened to
  the same multiple of the longest gap *between heartbeats* once ``offline_learn_min_gaps`` were seen. Gaps between
  events are the person's rhythm and are not learned from (a storm of events once collapsed a door's limit to
  15 min and raised 991 alerts a month on one real home). A healthy PIR that sees nobody stays online.
- **periodic kinds** (mattress, wristband): ``max(offline_cadences × cadence, offline_min_s)``, tightened to
  ``offline_learned_factor`` × the longest healthy gap. A wristband: at least 4 h, and not while the elder is out.
  A band that fell silent within :data:`BAND_GONE_MS` of a front-door opening went out with its wearer, even when
  someone else keeps the home from looking empty (a visitor, family): it is offline 12 h after that opening
  (``wristband_out_with_wearer_s``), or its usual limit after the door opens again (a return).

The timer is lazy: each message updates ``last_seen_ms`` only.
"""

from __future__ import annotations

from typing import ClassVar

from detection.baseline import hhmm
from detection.config import DetectConfig
from detection.detectors.base import MIN_MS, Context, Detector, fmt_min, fmt_min_zh
from detection.models import AlertType, Severity
from detection.presence import DOOR_OPEN
from detection.state import NEVER, DeviceState, HomeState
from gateway.models import EXPECTED_CADENCE_S, DeviceKind, MessageType, Reading

PREFIX = "off:"
BAND_HEARD_MS = EXPECTED_CADENCE_S[DeviceKind.WRISTBAND] * 1000 + 5 * MIN_MS
"""A band heard this recently when the front door opens was in the home then (its cadence + 5 min)."""
BAND_GONE_MS = 10 * MIN_MS
"""...and one whose last message came at most this long after that opening went out through it (radio range)."""
EVENT_DRIVEN = frozenset({DeviceKind.DOOR, DeviceKind.MOTION, DeviceKind.SMOKE, DeviceKind.GAS, DeviceKind.CALL_BUTTON})


def offline_limit_ms(kind: DeviceKind, config: DetectConfig, *, max_gap_ms: int = 0, n_gaps: int = 0) -> int:
    """Silence after which a device of ``kind`` is offline (the one rule; see the module docstring).

    ``max_gap_ms`` / ``n_gaps``: the longest healthy gap learned so far (between heartbeats for event-driven kinds).

    >>> c = DetectConfig()
    >>> offline_limit_ms(DeviceKind.MOTION, c) // 60_000, offline_limit_ms(DeviceKind.DOOR, c) // 60_000
    (125, 725)
    >>> offline_limit_ms(DeviceKind.MOTION, c, max_gap_ms=1_800_000, n_gaps=12) // 60_000
    65
    """
    c = config
    cad_ms = EXPECTED_CADENCE_S[kind] * 1000
    floor = c.offline_min_s * 1000
    if kind in EVENT_DRIVEN:
        base = int(cad_ms * c.offline_event_cadences) + c.offline_event_grace_s * 1000
        if n_gaps >= c.offline_learn_min_gaps and max_gap_ms > 0:
            learned = int(max_gap_ms * c.offline_event_cadences) + c.offline_event_grace_s * 1000
            return max(floor, min(base, learned))
        return max(floor, base)
    base = max(int(cad_ms * c.offline_cadences), floor)
    if kind is DeviceKind.WRISTBAND:
        return max(base, c.wristband_offline_min_s * 1000)
    if n_gaps >= c.offline_learn_min_gaps:
        learned = int(max_gap_ms * c.offline_learned_factor)
        return max(floor, min(base, learned))
    return base


class OfflineDetector(Detector):
    """DEVICE_OFFLINE at last message + limit; the next message clears it."""

    name: ClassVar[str] = "offline"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset(
        (k, t)
        for k in DeviceKind
        if k is not DeviceKind.GATEWAY
        for t in (MessageType.EVENT, MessageType.TELEMETRY, MessageType.STATUS)
    )
    timer_names: ClassVar[tuple[str, ...]] = (PREFIX,)

    def limit_ms(self, dev: DeviceState) -> int:
        """Silence after which this device counts as offline (:func:`offline_limit_ms`)."""
        return offline_limit_ms(dev.kind, self.config, max_gap_ms=dev.max_gap_ms, n_gaps=dev.n_gaps)

    def on_start(self, ctx: Context, home: HomeState, t: int) -> None:
        """Arm every registered device from the moment the home is first seen (a device may never speak)."""
        for name, dev in home.devices.items():
            if dev.kind is not DeviceKind.GATEWAY:
                if dev.last_seen_ms < t:
                    dev.last_seen_ms = t
                ctx.schedule(home, PREFIX + name, dev.last_seen_ms + self.limit_ms(dev))
                dev.offline_armed = True

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Clear an offline device; keep its timer armed."""
        if flags & DOOR_OPEN:
            for band in home.devices.values():
                if band.kind is DeviceKind.WRISTBAND and t - band.last_seen_ms <= BAND_HEARD_MS:
                    band.left_door_ms = t
        dev = home.devices.get(r.device)
        if dev is None:
            return
        if dev.left_door_ms != NEVER and t > dev.left_door_ms + BAND_GONE_MS:  # (set on wristbands only)
            dev.left_door_ms = NEVER  # heard again after going out: its timer runs from this message again
            dev.offline_armed = False
        if dev.offline:
            dev.offline = False
            ctx.clear(
                home,
                PREFIX + r.device,
                AlertType.DEVICE_OFFLINE,
                t,
                f"{dev.kind.value} {r.device} is reporting again.",
                f"设备 {r.device} 已恢复上报。",
                device=r.device,
            )
        if not dev.offline_armed or dev.n_gaps == self.config.offline_learn_min_gaps:
            # (re-)arm; once, when enough gaps are seen, the learned (tighter) limit replaces the declared one
            dev.offline_armed = True
            ctx.schedule(home, PREFIX + r.device, dev.last_seen_ms + self.limit_ms(dev))

    def on_timer(self, ctx: Context, home: HomeState, name: str, due: int) -> None:
        """Alert, or re-arm at the real deadline."""
        device = name[len(PREFIX) :]
        dev = home.devices.get(device)
        if dev is not None:
            dev.offline_armed = False
        if dev is None or dev.offline or home.site_offline:
            return
        limit = self.limit_ms(dev)
        if home.away and dev.kind is DeviceKind.WRISTBAND:
            dev.offline_armed = True
            ctx.schedule(home, name, due + limit)  # the band went out with the elder; look again later
            return
        start, out = dev.last_seen_ms, NEVER
        if dev.left_door_ms != NEVER and dev.last_seen_ms <= dev.left_door_ms + BAND_GONE_MS:
            out = dev.left_door_ms  # a wristband silent since it went out through the front door
            if home.door_open_ms > max(out, dev.last_seen_ms):  # the door opened again: a return?
                start = home.door_open_ms
            else:
                start, limit = out, self.config.wristband_out_with_wearer_s * 1000
        real_due = max(start + limit, dev.settle_ms)
        if real_due > due:
            dev.offline_armed = True
            ctx.schedule(home, name, real_due)
            return
        dev.offline = True
        cad = EXPECTED_CADENCE_S[dev.kind]
        since = hhmm(ctx.local_min(dev.last_seen_ms))
        went, went_zh = "", ""
        if out != NEVER:
            went = f"; it went quiet when the front door opened at {hhmm(ctx.local_min(out))} (out with its wearer?)"
            went_zh = f"；入户门 {hhmm(ctx.local_min(out))} 打开后即无消息（可能随老人外出）"
        ctx.emit(
            home,
            AlertType.DEVICE_OFFLINE,
            Severity.WARNING,
            due,
            f"{dev.kind.value} {device} silent for {fmt_min((due - dev.last_seen_ms) / MIN_MS)} since"
            f" {since} (declared cadence {fmt_min(cad / 60)},"
            f" longest healthy gap seen {fmt_min(dev.max_gap_ms / MIN_MS)} over {dev.n_gaps} gaps"
            f"{' between heartbeats' if dev.kind in EVENT_DRIVEN else ''}){went};"
            " the rest of the home is online.",
            f"设备 {device}（{dev.kind.value}）自 {since} 起已 "
            f"{fmt_min_zh((due - dev.last_seen_ms) / MIN_MS)} 无消息（标称上报间隔 {fmt_min_zh(cad / 60)}）{went_zh}，"
            "该户其他设备在线。",
            device=device,
            evidence={
                "kind": dev.kind.value,
                "limit_min": round(limit / MIN_MS, 1),
                "cadence_s": cad,
                "from_ms": start,  # the limit runs from here: the last message, or a front-door opening
            },
            key=name,
        )
