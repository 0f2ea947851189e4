"""The motion sensor: PIR counts per 10-minute window, a motion event when activity starts, status."""

from __future__ import annotations

import numpy as np

from firmware_sim.models import (
    DAY_MS,
    MINUTE_MS,
    TZ_OFFSET_MS,
)
from firmware_sim.renderers.home import EVENT, MOTION_WINDOW_S, PIR_PER_MIN, TELEMETRY, Home, Out
from firmware_sim.wire import encode_device_status, encode_motion_event, encode_motion_telemetry


def render(home: Home, out: Out, c0: int, c1: int) -> None:
    """Messages of this device with device time in ``[c0, c1)``, added to ``out``."""
    dev, rng, w = home.dev["motion"], home.rng, home.wire
    room = "living"
    # Windows ending in the chunk, except at local midnight (the day's first window ends at 00:10).
    ends = home.grid(c0 + 1 if home.midnight(c0) else c0, c1, MOTION_WINDOW_S * 1000, 0)
    sub = np.linspace(0.05, 0.95, 6)
    pts = ends[:, None] - ((1 - sub) * MOTION_WINDOW_S * 1000).astype(np.int64)[None, :]
    rates = PIR_PER_MIN[home.states(pts.ravel())].reshape(pts.shape)
    if home.p.living == "couple":
        local_min = ((pts + TZ_OFFSET_MS) % DAY_MS) / MINUTE_MS
        rates = rates + np.where((local_min > 7 * 60) & (local_min < 21.5 * 60), 0.8, 0.0)
        # The spouse is no witness of a long lie (never scheduled in couple homes), so this is safe.
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
    for th in home.grid(c0, c1, home.hb["motion"], home.hb_phase["motion"]).tolist():
        items.append((th, 2, "status", 0))
    items.sort()
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
