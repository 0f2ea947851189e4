"""The mattress: vectorised samples (occupancy, heart and breathing rate, movement), bed events, apneas, status."""

from __future__ import annotations

import math

import numpy as np

from firmware_sim.models import (
    IN_BED,
    MINUTE_MS,
    State,
)
from firmware_sim.renderers.home import EVENT, HR_OFFSET, IS_BED, RELIABLE, RR_OFFSET, TELEMETRY, Home, Out
from firmware_sim.wire import (
    MattressEvent,
    encode_apnea,
    encode_device_status,
    encode_mattress_batch,
    encode_mattress_event,
    topic,
)


def render(home: Home, out: Out, c0: int, c1: int) -> None:
    """Messages of this device with device time in ``[c0, c1)``, added to ``out``."""
    dev, rng = home.dev["mattress"], home.rng
    t = home.grid(c0, c1, home.mat_cad, home.mat_phase)
    t = t + rng.integers(0, 300, size=t.size)
    for a, b in home.fx.offline.get("mattress", ()):
        t = t[(t < a) | (t >= b)]
    st = home.states(t)
    occ = IS_BED[st]
    n = t.size
    hr = home.rest_hr(t) + HR_OFFSET[st] + 3 * np.sin(t / (90 * MINUTE_MS) * 2 * math.pi) + rng.normal(0, 1.2, n)
    rr = home.p.rest_rr + RR_OFFSET[st] + rng.normal(0, 0.6, n)
    home.vitals_override(t, hr, rr)
    move = np.where(st == State.BED_AWAKE, rng.integers(5, 25, n), rng.geometric(0.5, n) - 1)
    turning = rng.random(n) < 0.03
    move = np.where(turning, rng.integers(20, 60, n), move)
    hr = np.rint(np.clip(hr, 25, 220) * 10) / 10
    rr = np.rint(np.clip(rr, 4, 40) * 10) / 10
    # Occupancy events at state changes that cross the bed boundary, a few seconds after the change.
    ev_t: list[int] = []
    ev_msgs: list[tuple[str, float]] = []
    i0 = int(np.searchsorted(home.seg_t, c0, side="left"))
    i1 = int(np.searchsorted(home.seg_t, c1, side="left"))
    for i in range(max(i0, 1), i1):
        before = int(home.seg_s[i - 1]) in IN_BED
        after = int(home.seg_s[i]) in IN_BED
        if before != after:
            te = int(home.seg_t[i]) + int(rng.integers(1000, 5000))
            if not home.offline("mattress", te):
                ev_t.append(te)
                ev_msgs.append(("in_bed" if after else "out_of_bed", 0.0))
    for ta, dur in home.fx.apneas:
        if c0 <= ta < c1 and not home.offline("mattress", ta):
            ev_t.append(ta)
            ev_msgs.append(("apnea", dur))
    for ts_ in home.grid(c0, c1, home.hb["mattress"], home.hb_phase["mattress"]).tolist():
        if not home.offline("mattress", ts_):
            ev_t.append(ts_)
            ev_msgs.append(("status", 0.0))
    all_t = np.concatenate([t, np.array(ev_t, dtype=np.int64)])
    order = np.argsort(all_t, kind="stable")
    seq = np.empty(all_t.size, dtype=np.int64)
    seq[order] = home.wire.reserve(dev, all_t.size) + np.arange(all_t.size)
    ts = home.ts_arr("mattress", t)
    payloads = encode_mattress_batch(
        site=home.site,
        device=dev,
        seqs=seq[:n].tolist(),
        ts=ts.tolist(),
        occupied=occ.tolist(),
        hr=hr.tolist(),
        rr=rr.tolist(),
        movement=move.tolist(),
    )
    tel_topic = topic(home.site, "mattress", dev, "telemetry")
    t_list = t.tolist()
    out.true.extend(t_list)
    out.release.extend(t_list)
    out.topics.extend([tel_topic] * n)
    out.payloads.extend(payloads)
    out.cls.extend([TELEMETRY] * n)
    site = home.site
    for te, (what, dur), s in zip(ev_t, ev_msgs, seq[n:].tolist(), strict=True):
        ts1 = home.ts("mattress", te)
        if what == "status":
            msg = encode_device_status(
                site=site,
                kind="mattress",
                device=dev,
                seq=s,
                ts=ts1,
                rssi=home.rssi_now("mattress"),
                fw=home.fw["mattress"],
            )
            out.add(te, msg, TELEMETRY)
        elif what == "apnea":
            out.add(te, encode_apnea(site=site, device=dev, seq=s, ts=ts1, duration_s=dur), RELIABLE)
        else:
            event: MattressEvent = "in_bed" if what == "in_bed" else "out_of_bed"
            out.add(te, encode_mattress_event(site=site, device=dev, seq=s, ts=ts1, event=event), EVENT)
