"""The wristband: vitals and steps, worn/removed, SOS and fall events, its battery, a buffer while out of range."""

from __future__ import annotations

import numpy as np

from firmware_sim.models import (
    MINUTE_MS,
)
from firmware_sim.renderers.home import (
    BAND_BUFFER,
    EVENT,
    HR_OFFSET,
    IS_ABSENT,
    LIFE_SAFETY,
    STEPS_PER_MIN,
    TELEMETRY,
    Home,
    Out,
)
from firmware_sim.wire import (
    WireMessage,
    encode_device_status,
    encode_fall,
    encode_wristband_event,
    topic,
    wristband_telemetry_payload,
)


def render(home: Home, out: Out, c0: int, c1: int) -> None:  # noqa: C901 - one device's whole firmware
    """Messages of this device with device time in ``[c0, c1)``, added to ``out``."""
    dev, rng, w = home.dev["wristband"], home.rng, home.wire
    grid = home.grid(c0, c1, home.band_cad, home.band_phase)
    fast = [home.grid(max(a, c0), min(b, c1), 60_000, 0) for a, b in home.fx.fast_band if a < c1 and b > c0]
    t = np.unique(np.concatenate([grid, *fast])) if fast else grid
    st = home.states(t)
    hr = home.rest_hr(t) + HR_OFFSET[st] + rng.normal(0, 3, t.size)
    rr = np.zeros(t.size)
    home.vitals_override(t, hr, rr)
    hr_l: list[float] = (np.rint(np.clip(hr, 25, 220) * 10) / 10).tolist()
    spo2_l: list[float] = (np.rint(np.clip(rng.normal(96.5, 1.0, t.size), 88, 100) * 10) / 10).tolist()
    skin_l: list[float] = (np.rint(np.clip(rng.normal(33.2, 0.5, t.size), 28, 37) * 10) / 10).tolist()
    tel_topic = topic(home.site, "wristband", dev, "telemetry")
    items: list[tuple[int, int, str, float]] = []  # (time, order at equal time, what, argument)
    for i, ti in enumerate(t.tolist()):
        items.append((ti, 1, "tel", float(i)))
    for tw, worn in zip(home.worn_t.tolist(), home.worn_v.tolist(), strict=True):
        if c0 <= tw < c1 and tw > home.plan.start_ms:
            items.append((tw, 0, "worn" if worn else "removed", 0.0))
    for te, what, conf in home.fx.band_events:
        if c0 <= te < c1:
            items.append((te, 0, what, conf))
    for th in home.grid(c0, c1, home.hb["wristband"], home.hb_phase["wristband"]).tolist():
        items.append((th, 2, "status", 0.0))
    items.sort(key=lambda x: (x[0], x[1]))
    times = np.array([x[0] for x in items], dtype=np.int64)
    states = home.states(times)
    worn_idx = np.maximum(np.searchsorted(home.worn_t, times, side="right") - 1, 0)
    worn_arr = home.worn_v[worn_idx]
    dt_min = np.diff(times, prepend=c0) / MINUTE_MS
    # Steps since local midnight (a chunk is one local day): only counted while the band is worn.
    if home.midnight(c0):
        home.steps_base = 0
    steps_np = home.steps_base + np.cumsum(rng.poisson(STEPS_PER_MIN[states] * dt_min * worn_arr))
    if steps_np.size:
        home.steps_base = int(steps_np[-1])
    steps_arr = steps_np.tolist()
    absent_arr = IS_ABSENT[states].tolist()
    worn_list = worn_arr.tolist()
    dt_list = dt_min.tolist()
    for k, (ti, _, kind, arg) in enumerate(items):
        worn = worn_list[k]
        absent = absent_arr[k]
        steps = int(steps_arr[k])
        if not worn and not absent:
            home.band_level = min(100.0, home.band_level + 1.5 * dt_list[k])
        else:
            home.band_level = max(3.0, home.band_level - 0.012 * dt_list[k])
        ts1 = home.ts("wristband", ti)
        battery = int(home.band_level)
        if kind == "tel":
            i = int(arg)
            payload = wristband_telemetry_payload(
                seq=w.next_seq(dev),
                ts=ts1,
                worn=worn,
                hr=hr_l[i],
                spo2=spo2_l[i],
                steps=steps,
                skin_temp=skin_l[i],
                battery=battery,
            )
            msg = WireMessage(tel_topic, payload)
            cls = TELEMETRY
        elif kind == "status":
            msg = encode_device_status(
                **w.stamp(dev),
                kind="wristband",
                ts=ts1,
                battery=battery,
                rssi=home.rssi_now("wristband"),
                fw=home.fw["wristband"],
            )
            cls = TELEMETRY
        elif kind == "fall":
            msg = encode_fall(**w.stamp(dev), ts=ts1, confidence=arg)
            cls = LIFE_SAFETY
        elif kind == "sos":
            msg = encode_wristband_event(**w.stamp(dev), ts=ts1, event="sos")
            cls = LIFE_SAFETY
        else:
            msg = encode_wristband_event(**w.stamp(dev), ts=ts1, event="worn" if kind == "worn" else "removed")
            cls = EVENT
        if absent:
            # Out of range of the home gateway: the band keeps the last few samples and uploads them later.
            home.band_buffer.append((ti, msg, cls))
            del home.band_buffer[:-BAND_BUFFER]
            continue
        if home.band_buffer:
            for k, (tb, mb, cb) in enumerate(home.band_buffer):
                out.add(tb, mb, cb, release=ti + k * 1000)
            home.band_buffer.clear()
        out.add(ti, msg, cls, release=ti + len(home.band_buffer) * 1000)
