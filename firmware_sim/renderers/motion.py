"""The living-room PIR, event-driven or counting.

Event-driven (most homes, as real Zigbee PIRs report): a ``motion`` event per trigger after its blind time and a
status heartbeat every 50–60 min. Counting (the others): trigger counts per 10-minute window.
"""

from __future__ import annotations

import numpy as np

from firmware_sim.models import (
    DAY_MS,
    MINUTE_MS,
    TZ_OFFSET_MS,
)
from firmware_sim.renderers.home import EVENT, IS_ABSENT, MOTION_WINDOW_S, TELEMETRY, VISITOR_PIR_PER_MIN, Home, Out
from firmware_sim.wire import encode_device_status, encode_motion_event, encode_motion_telemetry


def _others(home: Home, pts: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Triggers by others than the elder: the spouse (couple homes, daytime), visitors while the elder is in."""
    if home.p.living == "couple":
        local_min = ((pts + TZ_OFFSET_MS) % DAY_MS) / MINUTE_MS
        rates = rates + np.where((local_min > 7 * 60) & (local_min < 21.5 * 60), 0.8, 0.0)
        # The spouse is no witness of a long lie (never scheduled in couple homes), so this is safe.
    if home.plan.visits:
        home_now = ~IS_ABSENT[home.states(pts)]
        for a, b in home.plan.visits:
            rates = rates + np.where((pts >= a) & (pts < b) & home_now, VISITOR_PIR_PER_MIN, 0.0)
        # Overrides of silent incidents drop visits in their window (Plan.override): the truth stays honest.
    for a, b in home.plan.sitter_visits:  # the empty home looked after during a long absence
        rates = rates + np.where((pts >= a) & (pts < b), VISITOR_PIR_PER_MIN, 0.0)
    return rates


def render(home: Home, out: Out, c0: int, c1: int) -> None:
    """Messages of this device with device time in ``[c0, c1)``, added to ``out``."""
    items = _events(home, c0, c1) if home.pir_events else _counts(home, c0, c1)
    for th in home.grid(c0, c1, home.hb["motion"], home.hb_phase["motion"]).tolist():
        items.append((th, 2, "status", 0))
    items.sort()
    dev, w, room = home.dev["motion"], home.wire, "living"
    for te, _, what, c in items:
        if home.offline("motion", te):
            continue
        ts1 = home.ts("motion", te)
        if what == "tel":
            out.add(
                te,
                encode_motion_telemetry(**w.stamp(dev), ts=ts1, count=c, window_s=MOTION_WINDOW_S, room=room),
                TELEMETRY,
            )
        elif what == "event":
            out.add(te, encode_motion_event(**w.stamp(dev), ts=ts1, room=room), EVENT)
        else:
            msg = encode_device_status(
                **w.stamp(dev), kind="motion", ts=ts1, battery=home.battery("motion", te), rssi=home.rssi_now("motion")
            )
            out.add(te, msg, TELEMETRY)


def _events(home: Home, c0: int, c1: int) -> list[tuple[int, int, str, int]]:
    """Event-driven firmware: one report at the first trigger of each blind-time slot that has one."""
    rng, slot = home.rng, home.pir_blind_ms
    starts = home.grid(c0, c1, slot, 0)
    mids = starts + slot // 2
    rates = _others(home, mids, home.pir_seen[home.states(mids)])
    n = rng.poisson(rates * slot / MINUTE_MS)
    hit = np.flatnonzero(n > 0)
    # The first of n uniform triggers in the slot: slot × (1 − U^(1/n)).
    first = (slot * (1.0 - rng.random(hit.size) ** (1.0 / n[hit]))).astype(np.int64)
    times = starts[hit] + first
    # The state may change inside a slot: nobody there at the trigger's own time (gone out, fallen), no report.
    there = _others(home, times, home.pir_seen[home.states(times)]) > 0
    return [(int(t), 0, "event", 0) for t in times[there].tolist()]


def _counts(home: Home, c0: int, c1: int) -> list[tuple[int, int, str, int]]:
    """Counting firmware: triggers per 10-min window, and a ``motion`` event when motion starts after a quiet one."""
    rng = home.rng
    # Windows ending in the chunk, except at local midnight (the day's first window ends at 00:10).
    ends = home.grid(c0 + 1 if home.midnight(c0) else c0, c1, MOTION_WINDOW_S * 1000, 0)
    sub = np.linspace(0.05, 0.95, 6)
    pts = ends[:, None] - ((1 - sub) * MOTION_WINDOW_S * 1000).astype(np.int64)[None, :]
    flat = pts.ravel()
    rates = _others(home, flat, home.pir_seen[home.states(flat)]).reshape(pts.shape)
    counts = rng.poisson(rates.mean(axis=1) * MOTION_WINDOW_S / 60)
    items: list[tuple[int, int, str, int]] = []
    prev = 1 if home.midnight(c0) else home.motion_prev
    for k, (te, c) in enumerate(zip(ends.tolist(), counts.tolist(), strict=True)):
        if c > 0 and prev == 0:
            j = int(np.argmax(rates[k] > 0))
            items.append((int(pts[k, j]), 0, "event", 0))
        items.append((te, 1, "tel", int(c)))
        prev = int(c)
    home.motion_prev = prev
    return items
