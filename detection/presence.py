"""Shared presence tracking: in bed or not, last sign of activity, at home or out, and the day's summary.

Runs before the detectors on every reading and returns flags describing what the reading meant, so each
detector reacts to transitions (bed exit, door opened, came back) without re-deriving them. It also feeds the
current :class:`~detection.baseline.DaySummary` (quiet spells per block of the day, wake time, bedtime, night
vitals) that the baselines are later fitted on.
"""

from __future__ import annotations

from typing import Final

from detection.baseline import block_of
from detection.detectors.base import MIN_MS, Context
from detection.state import NEVER, HomeState
from gateway.models import DeviceKind, MessageType, Reading

ACTIVITY: Final = 1
"""The elder did something (anywhere)."""
INSIDE: Final = 2
"""Someone is inside the home (motion, bed, button), not the door itself."""
BED_ENTER: Final = 4
BED_EXIT: Final = 8
DOOR_OPEN: Final = 16
DOOR_CLOSE: Final = 32
RETURNED: Final = 64
"""The elder was out and is back."""

_TELEMETRY: Final = MessageType.TELEMETRY
_MATTRESS: Final = DeviceKind.MATTRESS
_MOTION: Final = DeviceKind.MOTION
_DOOR: Final = DeviceKind.DOOR
_WRISTBAND: Final = DeviceKind.WRISTBAND
_CALL: Final = DeviceKind.CALL_BUTTON
_SMOKE: Final = DeviceKind.SMOKE


def confirm_up(ctx: Context, home: HomeState, t: int) -> bool:
    """Mark the elder up for the day if the current out-of-bed spell began in the morning and lasted long enough.

    Returns True if the elder is (now) confirmed up on the care day of ``t``.
    """
    day = ctx.care_day(t)
    if home.up_day == day:
        return True
    start = home.out_of_bed_since_ms
    if home.in_bed or start == NEVER or ctx.care_day(start) != day:
        return False
    m = ctx.local_min(start)
    if ctx.config.morning_start_min <= m < ctx.config.day_boundary_min and t - start >= ctx.config.up_confirm_s * 1000:
        home.up_day = day
        home.up_ms = start
        home.day.wake_min = round(m, 1)
        return True
    return False


def _bed(ctx: Context, home: HomeState, entering: bool, t: int) -> int:
    if entering:
        confirm_up(ctx, home, t)
        home.in_bed = True
        home.bed_since_ms = t
        m = ctx.local_min(t)
        if home.day.bed_min is None and (m >= 19 * 60 or m < ctx.config.morning_start_min):
            home.day.bed_min = round((m - ctx.config.day_boundary_min) % 1440, 1)
        return BED_ENTER | INSIDE
    home.in_bed = False
    home.out_of_bed_since_ms = t
    return BED_EXIT | INSIDE


def observe(ctx: Context, home: HomeState, r: Reading, t: int) -> int:
    """Update the home's shared presence state with one reading; return what it meant as flags."""
    kind = r.kind
    ev = r.event
    flags = 0
    was_in_bed = home.in_bed
    inside_from = t
    room = ""
    if kind is _MATTRESS:
        room = "bedroom"
        home.has_mattress = True
        # A reading older than the newest this mattress already gave (QoS 1 re-sends, a cluster's nodes) is
        # history: it must not move the elder in or out of bed (measured on the 3-node cluster: a late "occupied"
        # put an elder who had got up back in bed, and the night bed exit never paged).
        mat = home.devices.get(r.device)
        if mat is not None and t < mat.last_reading_ms:
            pass  # stale: neither a bed change nor a night vital-sign sample of the day's summary
        elif r.type is _TELEMETRY:
            occ = r.fields.get("occupied")
            if occ is not None and bool(occ) is not home.in_bed:
                flags = _bed(ctx, home, bool(occ), t)
            elif occ and ctx.is_night(t):
                day = home.day
                hr = r.fields.get("hr")
                if hr is not None:
                    day.hr_sum += float(hr)
                    day.hr_n += 1
                rr = r.fields.get("rr")
                if rr is not None:
                    day.rr_sum += float(rr)
                    day.rr_n += 1
        elif ev == "in_bed":
            if not home.in_bed:
                flags = _bed(ctx, home, True, t)
        elif ev == "out_of_bed" and home.in_bed:
            flags = _bed(ctx, home, False, t)
    elif kind is _MOTION:
        if ev == "motion":
            flags = INSIDE
        elif r.type is _TELEMETRY and int(r.fields.get("count", 0)) > 0:
            flags = INSIDE
            inside_from = t - int(r.fields.get("window_s", 0)) * 1000
        if flags:
            dev = home.devices.get(r.device)
            room = str(r.fields.get("room") or (dev.room if dev is not None else "") or "")
    elif kind is _DOOR:
        dev = home.devices.get(r.device)
        if dev is not None and dev.inside:
            # A contact inside the home (a cupboard, the fridge, an interior door): someone is in that room.
            if ev in ("open", "close"):
                flags = INSIDE
                room = dev.room or ""
        elif ev == "open":
            home.door_open_ms = t
            flags = DOOR_OPEN | ACTIVITY
        elif ev == "close":
            home.door_close_ms = t
            flags = DOOR_CLOSE | ACTIVITY
    elif kind is _WRISTBAND:
        if r.type is _TELEMETRY:
            steps = r.fields.get("steps")
            if steps is not None:
                dev = home.devices.get(r.device)
                if dev is not None:
                    s = int(steps)
                    if dev.last_steps != NEVER and s > dev.last_steps:
                        flags = ACTIVITY
                    dev.last_steps = s
        elif ev == "sos":
            flags = ACTIVITY
    elif kind is _CALL:
        if ev is not None:
            flags = INSIDE
            dev = home.devices.get(r.device)
            room = (dev.room if dev is not None else "") or ""
    elif kind is _SMOKE and ev == "silence":  # someone pressed hush; a `test` may be a self-test or an installer
        flags = INSIDE
    if not flags:
        return 0
    if flags & INSIDE:
        flags |= ACTIVITY
        home.last_inside_ms = t
        if inside_from > home.inside_start_ms:
            home.inside_start_ms = inside_from
    if home.away and (flags & DOOR_OPEN or (flags & INSIDE and inside_from > home.away_since_ms)):
        home.away = False
        out_min = (t - home.away_since_ms) / MIN_MS
        day = home.day
        if day.out_max_min is None or out_min > day.out_max_min:
            day.out_max_min = round(out_min, 1)
        back = round((ctx.local_min(t) - ctx.config.day_boundary_min) % 1440, 1)
        if day.back_min is None or back > day.back_min:
            day.back_min = back
        flags |= RETURNED
    elif flags & ACTIVITY:
        prev = home.last_activity_ms
        if prev != NEVER and not was_in_bed and not home.away and t > prev and home.site_offline_since_ms < prev:
            gap = (t - prev) / MIN_MS
            if gap >= 1.0:
                b = block_of(ctx.local_min(prev))
                gaps = home.day.max_gap_min
                cur = gaps[b]
                if cur is None or gap > cur:
                    gaps[b] = round(gap, 1)
                if home.last_room:
                    per_room = home.day.room_gap_min.get(home.last_room)
                    if per_room is None:
                        per_room = home.day.room_gap_min[home.last_room] = [None] * len(gaps)
                    cur = per_room[b]
                    if cur is None or gap > cur:
                        per_room[b] = round(gap, 1)
    if flags & ACTIVITY and t >= home.last_activity_ms:
        home.last_activity_ms = t
        home.last_activity_src = f"{kind.value}/{r.device}" + (f" {ev}" if ev else "")
        home.day.activity += 1
        if flags & INSIDE:
            home.last_room = room
        if not home.has_mattress and flags & INSIDE and room != "bedroom":
            # "Up" needs evidence of leaving the bedroom: bedroom motion at 04:42 is someone awake in bed.
            day_i = ctx.care_day(t)
            m = ctx.local_min(t)
            if home.up_day != day_i and ctx.config.morning_start_min <= m < ctx.config.day_boundary_min:
                home.up_day = day_i
                home.up_ms = t
                home.day.wake_min = round(m, 1)
    return flags
