"""The door contact: open/close as the elder leaves and comes back or someone visits, status with tamper."""

from __future__ import annotations

import numpy as np

from firmware_sim.models import (
    ABSENT,
)
from firmware_sim.renderers.home import EVENT, RELIABLE, TELEMETRY, Home, Out
from firmware_sim.wire import encode_device_status, encode_door_event


def render(home: Home, out: Out, c0: int, c1: int) -> None:
    """Messages of this device with device time in ``[c0, c1)``, added to ``out``."""
    dev, rng, w = home.dev["door"], home.rng, home.wire
    events: list[tuple[int, int, str]] = []
    i0 = int(np.searchsorted(home.seg_t, c0, side="left"))
    i1 = int(np.searchsorted(home.seg_t, c1, side="left"))
    for i in range(max(i0, 1), i1):
        before = int(home.seg_s[i - 1]) in ABSENT
        after = int(home.seg_s[i]) in ABSENT
        if before != after:
            ta = int(home.seg_t[i])
            # Leaving: the door opens as the state changes; coming back: it opens just before.
            t_open = ta if after else ta - int(rng.integers(2000, 8000))
            events.append((t_open, 0, "open"))
            events.append((t_open + int(rng.integers(3000, 15000)), 1, "close"))
    for tp in home.plan.door_pulses:
        if c0 <= tp < c1:
            events.append((tp, 0, "open"))
            events.append((tp + int(rng.integers(5000, 40000)), 1, "close"))
    for th in home.grid(c0, c1, home.hb["door"], home.hb_phase["door"]).tolist():
        events.append((th, 2, "status"))
    for a, b in home.fx.tamper.get("door", ()):
        for tt in (a, b):
            if c0 <= tt < c1:
                events.append((tt, 3, "status"))
    events.sort()
    for te, _, what in events:
        if home.offline("door", te):
            continue
        ts1 = home.ts("door", te)
        if what == "status":
            tamper = any(a <= te < b for a, b in home.fx.tamper.get("door", ()))
            level = home.battery("door", te)
            msg = encode_device_status(
                **w.stamp(dev),
                kind="door",
                ts=ts1,
                battery=level,
                battery_v=2.4 + 0.6 * level / 100,
                tamper=tamper,
                rssi=home.rssi_now("door"),
                fw=home.fw["door"],
            )
            out.add(te, msg, RELIABLE if tamper else TELEMETRY)
        else:
            out.add(te, encode_door_event(**w.stamp(dev), ts=ts1, event="open" if what == "open" else "close"), EVENT)
