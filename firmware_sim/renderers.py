"""Device firmware and delivery: renders one home's plan into wire messages, one local day at a time.

Each device samples the elder's state timeline at its own cadence (vectorised with numpy where the volume
is), numbers its messages with a per-device ``seq`` in device-time order, stamps them with its own clock
(which may be skewed), and hands them to the radio/gateway/broker path, which loses, duplicates, delays
and reorders them, buffers events during an internet outage, and loses everything during a reboot.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from firmware_sim.delivery import LIFE_SAFETY_RETRY_MS, QUEUE_FLUSH_MS
from firmware_sim.models import (
    ABSENT,
    DAY_MS,
    HOUR_MS,
    IN_BED,
    MINUTE_MS,
    TZ_OFFSET_MS,
    Mix,
    State,
)
from firmware_sim.plan import Plan
from firmware_sim.wire import (
    HomeWire,
    MattressEvent,
    SmokeEvent,
    WireMessage,
    encode_apnea,
    encode_device_status,
    encode_mattress_batch,
    encode_mattress_event,
    gateway_online_payload,
    gateway_will,
    status_topic,
    topic,
    wristband_telemetry_payload,
)

# Transport classes: how hard the device/gateway tries to deliver.
TELEMETRY: Final = 0
EVENT: Final = 1
LIFE_SAFETY: Final = 2
GATEWAY: Final = 3
MALFORMED: Final = 4
"""A malformed message from the ground truth: delivered exactly once (planned clear of outages)."""
RELIABLE: Final = 5
"""An alarm-type report (sensor fault, tamper, apnea): acknowledged and retried by the device, so never lost on
the radio (an ordinary event is); the ground truth can then expect the alert it carries."""

KEEPALIVE_MS: Final = 30_000
WILL_DELAY_MS: Final = KEEPALIVE_MS * 3 // 2
"""The broker publishes the Last Will 1.5 keep-alive periods after the gateway went silent."""
GATEWAY_HEARTBEAT_MS: Final = 240_000
"""The gateway re-publishes its retained online status every 4 min (contract: silence > 5 min is offline)."""
MOTION_WINDOW_S: Final = 600
BAND_BUFFER: Final = 12
"""Samples a wristband keeps while out of range, uploaded when it is back home."""

_IS_BED: Final = np.array([s in IN_BED for s in State], dtype=bool)
"""Lookup table by state (``np.isin`` costs ~250 µs a call, a table lookup ~1 µs)."""
_IS_ABSENT: Final = np.array([s in ABSENT for s in State], dtype=bool)
_HR_OFFSET: Final = np.array([-9, -6, -2, 8, 10, 8, 20, 15, 5, 2], dtype=np.float64)
_RR_OFFSET: Final = np.array([-2.0, -1.5, 0, 2, 2, 2, 4, 3, 1, 0.5], dtype=np.float64)
_STEPS_PER_MIN: Final = np.array([0, 0, 0, 12, 8, 10, 60, 0, 30, 1], dtype=np.float64)
_PIR_PER_MIN: Final = np.array([0, 0, 0, 2.5, 0.8, 0.3, 0, 0, 0, 0.6], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Faults:
    """Delivery fault rates of a home (per message)."""

    loss: float
    duplicate: float
    late: float


FAULTS: Final[dict[Mix, Faults]] = {
    Mix.NORMAL: Faults(loss=0.002, duplicate=0.001, late=0.001),
    Mix.INCIDENT_RICH: Faults(loss=0.003, duplicate=0.002, late=0.002),
    Mix.DEVICE_FAULTY: Faults(loss=0.03, duplicate=0.01, late=0.01),
}


class _Out:
    """Messages of one home and one day before delivery: device time order per device, any order overall."""

    __slots__ = ("cls", "payloads", "release", "topics", "true")

    def __init__(self) -> None:
        self.true: list[int] = []
        self.release: list[int] = []
        self.topics: list[str] = []
        self.payloads: list[bytes] = []
        self.cls: list[int] = []

    def add(self, true_ms: int, msg: WireMessage, cls: int, release: int | None = None) -> None:
        self.true.append(true_ms)
        self.release.append(true_ms if release is None else release)
        self.topics.append(msg.topic)
        self.payloads.append(msg.payload)
        self.cls.append(cls)


class HomeRenderer:
    """Renders one home's :class:`Plan` into delivered messages, day by day, in order of days."""

    def __init__(self, *, plan: Plan, rng: np.random.Generator, mattress_cadence_s: float) -> None:
        self.plan = plan
        self.rng = rng
        self.spec = plan.spec
        self.site = plan.spec.site
        self.dev = plan.spec.devices
        self.p = plan.spec.profile
        self.fx = plan.effects
        self.faults = FAULTS[plan.spec.mix]
        self.seg_t, self.seg_s = plan.arrays()
        self.seg_t_list: list[int] = self.seg_t.tolist()
        self.seg_s_list: list[int] = self.seg_s.tolist()
        self.wire = HomeWire(site=self.site, gateway=self.spec.gateway)
        self.mat_cad = int(mattress_cadence_s * 1000)
        self.mat_phase = int(rng.integers(0, self.mat_cad))
        self.band_cad = int(rng.choice([60_000, 120_000, 300_000, 600_000], p=[0.1, 0.2, 0.5, 0.2]))
        self.band_phase = int(rng.integers(0, self.band_cad))
        self.hb = {k: int(rng.uniform(1, 5) * HOUR_MS) for k in ("door", "smoke", "call_button")}
        self.hb["motion"] = 4 * HOUR_MS
        self.hb["mattress"] = HOUR_MS
        self.hb["wristband"] = 4 * HOUR_MS
        self.hb_phase = {k: int(rng.integers(0, v)) for k, v in self.hb.items()}
        self.rssi = {k: int(rng.integers(-85, -50)) for k in self.dev}
        self.clock = {k: int(rng.normal(0, 800)) for k in self.dev}
        self.fw = {"mattress": "mat-1.3.0", "wristband": "band-5.0.2", "door": "door-2.1", "smoke": "smk-3.0.4"}
        self.gw_phase = int(rng.integers(0, GATEWAY_HEARTBEAT_MS))
        self.gw_boot = plan.start_ms - int(rng.uniform(1, 30) * DAY_MS)
        self.band_level = float(rng.uniform(60, 100))
        self.band_buffer: list[tuple[int, WireMessage, int]] = []
        self.smoke_temp = float(rng.uniform(17, 24))
        self.worn_t = np.array([w[0] for w in plan.worn], dtype=np.int64)
        self.worn_v = np.array([w[1] for w in plan.worn], dtype=bool)
        rest_drift = np.cumsum(rng.normal(0, 0.25, size=plan.days + 2))
        self.rest_drift = rest_drift - rest_drift.mean()
        # Firmware state carried from one chunk to the next within a local day (chunks may be shorter than a day).
        self.steps_base = 0
        self.motion_prev = 1
        self.smoke_test_at: int | None = None

    # -- helpers ---------------------------------------------------------------------------------------------

    def _states(self, t: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.seg_t, t, side="right") - 1
        states: np.ndarray = self.seg_s[np.maximum(idx, 0)]
        return states

    def _state(self, t: int) -> State:
        return State(self.seg_s_list[max(bisect.bisect_right(self.seg_t_list, t) - 1, 0)])

    def _offline(self, kind: str, t: int) -> bool:
        return any(a <= t < b for a, b in self.fx.offline.get(kind, ()))

    def _ts(self, kind: str, t: int) -> int:
        skew = self.fx.skew.get(kind)
        extra = skew[1] if skew is not None and t >= skew[0] else 0
        return max(0, t + self.clock[kind] + extra)

    def _ts_arr(self, kind: str, t: np.ndarray) -> np.ndarray:
        out = t + self.clock[kind]
        skew = self.fx.skew.get(kind)
        if skew is not None:
            out = out + np.where(t >= skew[0], skew[1], 0)
        clipped: np.ndarray = np.maximum(out, 0)
        return clipped

    def _rest_hr(self, t: np.ndarray) -> np.ndarray:
        day = np.clip((t - self.plan.start_ms) // DAY_MS, 0, len(self.rest_drift) - 1)
        hr: np.ndarray = self.p.rest_hr + self.rest_drift[day]
        trend = self.fx.hr_trend
        if trend is not None:
            a, b, delta = trend
            hr = hr + delta * np.clip((t - a) / (b - a), 0, 1)
        return hr

    def _vitals_override(self, t: np.ndarray, hr: np.ndarray, rr: np.ndarray) -> None:
        for a, b, v_hr, v_rr in self.fx.vitals:
            m = (t >= a) & (t < b)
            if m.any():
                hr[m] = v_hr + self.rng.normal(0, 1.5, size=int(m.sum()))
                if v_rr is not None:
                    rr[m] = v_rr

    def _battery(self, kind: str, t: int) -> int:
        level, drain = self.fx.battery[kind]
        return int(max(0.0, min(100.0, level - drain * (t - self.plan.start_ms) / DAY_MS)))

    @staticmethod
    def _midnight(t: int) -> bool:
        return (t + TZ_OFFSET_MS) % DAY_MS == 0

    def _grid(self, c0: int, c1: int, period: int, phase: int) -> np.ndarray:
        first = c0 + (phase - c0) % period
        return np.arange(first, c1, period, dtype=np.int64)

    # -- rendering --------------------------------------------------------------------------------------------

    def render(self, c0: int, c1: int) -> tuple[list[int], list[str], list[bytes]]:
        """Messages whose device time is in ``[c0, c1)``, as delivered: (received ms, topic, payload).

        Chunks are consecutive and divide local days (a whole day is fastest; live mode uses minutes).
        """
        out = _Out()
        self._gateway(out, c0, c1)
        self._mattress(out, c0, c1)
        self._wristband(out, c0, c1)
        self._door(out, c0, c1)
        self._motion(out, c0, c1)
        self._smoke(out, c0, c1)
        self._button(out, c0, c1)
        for m in self.plan.malformed:
            if c0 <= m.sent_ms < c1:
                out.add(m.sent_ms, WireMessage(m.topic, m.payload), MALFORMED)
        return self._deliver(out)

    def _gateway(self, out: _Out, c0: int, c1: int) -> None:
        w = self.wire
        if c0 == self.plan.start_ms:
            out.add(c0, w.gateway_online(ts=c0, fw="gw-2.4.1", uptime_s=(c0 - self.gw_boot) // 1000), GATEWAY)
        down = self.fx.outages
        status = status_topic(self.site, self.spec.gateway)
        gw, boot = self.spec.gateway, self.gw_boot
        for t in self._grid(c0, c1, GATEWAY_HEARTBEAT_MS, self.gw_phase).tolist():
            if down and any(a <= t < b for a, b, _ in down):
                continue
            payload = gateway_online_payload(seq=w.next_seq(gw), ts=t, fw="gw-2.4.1", uptime_s=(t - boot) // 1000)
            out.add(t, WireMessage(status, payload, retain=True), GATEWAY)
        for a, b, why in down:
            if c0 <= a < c1 and b - a > WILL_DELAY_MS:
                will_at = a + WILL_DELAY_MS + int(self.rng.integers(0, 5000))
                out.add(a, gateway_will(site=self.site, gateway=self.spec.gateway), GATEWAY, release=will_at)
            if c0 <= b < c1:
                if why == "reboot":
                    self.gw_boot = b - 15_000
                out.add(b, w.gateway_online(ts=b, fw="gw-2.4.1", uptime_s=(b - self.gw_boot) // 1000), GATEWAY)

    def _mattress(self, out: _Out, c0: int, c1: int) -> None:
        dev, rng = self.dev["mattress"], self.rng
        t = self._grid(c0, c1, self.mat_cad, self.mat_phase)
        t = t + rng.integers(0, 300, size=t.size)
        for a, b in self.fx.offline.get("mattress", ()):
            t = t[(t < a) | (t >= b)]
        st = self._states(t)
        occ = _IS_BED[st]
        n = t.size
        hr = self._rest_hr(t) + _HR_OFFSET[st] + 3 * np.sin(t / (90 * MINUTE_MS) * 2 * math.pi) + rng.normal(0, 1.2, n)
        rr = self.p.rest_rr + _RR_OFFSET[st] + rng.normal(0, 0.6, n)
        self._vitals_override(t, hr, rr)
        move = np.where(st == State.BED_AWAKE, rng.integers(5, 25, n), rng.geometric(0.5, n) - 1)
        turning = rng.random(n) < 0.03
        move = np.where(turning, rng.integers(20, 60, n), move)
        hr = np.rint(np.clip(hr, 25, 220) * 10) / 10
        rr = np.rint(np.clip(rr, 4, 40) * 10) / 10
        # Occupancy events at state changes that cross the bed boundary, a few seconds after the change.
        ev_t: list[int] = []
        ev_msgs: list[tuple[str, float]] = []
        i0 = int(np.searchsorted(self.seg_t, c0, side="left"))
        i1 = int(np.searchsorted(self.seg_t, c1, side="left"))
        for i in range(max(i0, 1), i1):
            before = int(self.seg_s[i - 1]) in IN_BED
            after = int(self.seg_s[i]) in IN_BED
            if before != after:
                te = int(self.seg_t[i]) + int(rng.integers(1000, 5000))
                if not self._offline("mattress", te):
                    ev_t.append(te)
                    ev_msgs.append(("in_bed" if after else "out_of_bed", 0.0))
        for ta, dur in self.fx.apneas:
            if c0 <= ta < c1 and not self._offline("mattress", ta):
                ev_t.append(ta)
                ev_msgs.append(("apnea", dur))
        for ts_ in self._grid(c0, c1, self.hb["mattress"], self.hb_phase["mattress"]).tolist():
            if not self._offline("mattress", ts_):
                ev_t.append(ts_)
                ev_msgs.append(("status", 0.0))
        all_t = np.concatenate([t, np.array(ev_t, dtype=np.int64)])
        order = np.argsort(all_t, kind="stable")
        seq = np.empty(all_t.size, dtype=np.int64)
        seq[order] = self.wire.reserve(dev, all_t.size) + np.arange(all_t.size)
        ts = self._ts_arr("mattress", t)
        payloads = encode_mattress_batch(
            site=self.site,
            device=dev,
            seqs=seq[:n].tolist(),
            ts=ts.tolist(),
            occupied=occ.tolist(),
            hr=hr.tolist(),
            rr=rr.tolist(),
            movement=move.tolist(),
        )
        tel_topic = topic(self.site, "mattress", dev, "telemetry")
        t_list = t.tolist()
        out.true.extend(t_list)
        out.release.extend(t_list)
        out.topics.extend([tel_topic] * n)
        out.payloads.extend(payloads)
        out.cls.extend([TELEMETRY] * n)
        site = self.site
        for te, (what, dur), s in zip(ev_t, ev_msgs, seq[n:].tolist(), strict=True):
            ts1 = self._ts("mattress", te)
            if what == "status":
                msg = encode_device_status(
                    site=site,
                    kind="mattress",
                    device=dev,
                    seq=s,
                    ts=ts1,
                    rssi=self._rssi("mattress"),
                    fw=self.fw["mattress"],
                )
                out.add(te, msg, TELEMETRY)
            elif what == "apnea":
                out.add(te, encode_apnea(site=site, device=dev, seq=s, ts=ts1, duration_s=dur), RELIABLE)
            else:
                event: MattressEvent = "in_bed" if what == "in_bed" else "out_of_bed"
                out.add(te, encode_mattress_event(site=site, device=dev, seq=s, ts=ts1, event=event), EVENT)

    def _rssi(self, kind: str) -> int:
        return int(np.clip(self.rssi[kind] + self.rng.integers(-4, 5), -120, -20))

    def _worn(self, t: int) -> bool:
        i = int(np.searchsorted(self.worn_t, t, side="right")) - 1
        return bool(self.worn_v[max(i, 0)])

    def _wristband(self, out: _Out, c0: int, c1: int) -> None:  # noqa: C901 - one device's whole firmware
        dev, rng, w = self.dev["wristband"], self.rng, self.wire
        grid = self._grid(c0, c1, self.band_cad, self.band_phase)
        fast = [self._grid(max(a, c0), min(b, c1), 60_000, 0) for a, b in self.fx.fast_band if a < c1 and b > c0]
        t = np.unique(np.concatenate([grid, *fast])) if fast else grid
        st = self._states(t)
        hr = self._rest_hr(t) + _HR_OFFSET[st] + rng.normal(0, 3, t.size)
        rr = np.zeros(t.size)
        self._vitals_override(t, hr, rr)
        hr_l: list[float] = (np.rint(np.clip(hr, 25, 220) * 10) / 10).tolist()
        spo2_l: list[float] = (np.rint(np.clip(rng.normal(96.5, 1.0, t.size), 88, 100) * 10) / 10).tolist()
        skin_l: list[float] = (np.rint(np.clip(rng.normal(33.2, 0.5, t.size), 28, 37) * 10) / 10).tolist()
        tel_topic = topic(self.site, "wristband", dev, "telemetry")
        items: list[tuple[int, int, str, float]] = []  # (time, order at equal time, what, argument)
        for i, ti in enumerate(t.tolist()):
            items.append((ti, 1, "tel", float(i)))
        for tw, worn in zip(self.worn_t.tolist(), self.worn_v.tolist(), strict=True):
            if c0 <= tw < c1 and tw > self.plan.start_ms:
                items.append((tw, 0, "worn" if worn else "removed", 0.0))
        for te, what, conf in self.fx.band_events:
            if c0 <= te < c1:
                items.append((te, 0, what, conf))
        for th in self._grid(c0, c1, self.hb["wristband"], self.hb_phase["wristband"]).tolist():
            items.append((th, 2, "status", 0.0))
        items.sort(key=lambda x: (x[0], x[1]))
        times = np.array([x[0] for x in items], dtype=np.int64)
        states = self._states(times)
        worn_idx = np.maximum(np.searchsorted(self.worn_t, times, side="right") - 1, 0)
        worn_arr = self.worn_v[worn_idx]
        dt_min = np.diff(times, prepend=c0) / MINUTE_MS
        # Steps since local midnight (a chunk is one local day): only counted while the band is worn.
        if self._midnight(c0):
            self.steps_base = 0
        steps_np = self.steps_base + np.cumsum(rng.poisson(_STEPS_PER_MIN[states] * dt_min * worn_arr))
        if steps_np.size:
            self.steps_base = int(steps_np[-1])
        steps_arr = steps_np.tolist()
        absent_arr = _IS_ABSENT[states].tolist()
        worn_list = worn_arr.tolist()
        dt_list = dt_min.tolist()
        for k, (ti, _, kind, arg) in enumerate(items):
            worn = worn_list[k]
            absent = absent_arr[k]
            steps = int(steps_arr[k])
            if not worn and not absent:
                self.band_level = min(100.0, self.band_level + 1.5 * dt_list[k])
            else:
                self.band_level = max(3.0, self.band_level - 0.012 * dt_list[k])
            ts1 = self._ts("wristband", ti)
            battery = int(self.band_level)
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
                msg = w.device_status(
                    kind="wristband",
                    device=dev,
                    ts=ts1,
                    battery=battery,
                    rssi=self._rssi("wristband"),
                    fw=self.fw["wristband"],
                )
                cls = TELEMETRY
            elif kind == "fall":
                msg = w.fall(device=dev, ts=ts1, confidence=arg)
                cls = LIFE_SAFETY
            elif kind == "sos":
                msg = w.wristband_event(device=dev, ts=ts1, event="sos")
                cls = LIFE_SAFETY
            else:
                msg = w.wristband_event(device=dev, ts=ts1, event="worn" if kind == "worn" else "removed")
                cls = EVENT
            if absent:
                # Out of range of the home gateway: the band keeps the last few samples and uploads them later.
                self.band_buffer.append((ti, msg, cls))
                del self.band_buffer[:-BAND_BUFFER]
                continue
            if self.band_buffer:
                for k, (tb, mb, cb) in enumerate(self.band_buffer):
                    out.add(tb, mb, cb, release=ti + k * 1000)
                self.band_buffer.clear()
            out.add(ti, msg, cls, release=ti + len(self.band_buffer) * 1000)

    def _door(self, out: _Out, c0: int, c1: int) -> None:
        dev, rng, w = self.dev["door"], self.rng, self.wire
        events: list[tuple[int, int, str]] = []
        i0 = int(np.searchsorted(self.seg_t, c0, side="left"))
        i1 = int(np.searchsorted(self.seg_t, c1, side="left"))
        for i in range(max(i0, 1), i1):
            before = int(self.seg_s[i - 1]) in ABSENT
            after = int(self.seg_s[i]) in ABSENT
            if before != after:
                ta = int(self.seg_t[i])
                # Leaving: the door opens as the state changes; coming back: it opens just before.
                t_open = ta if after else ta - int(rng.integers(2000, 8000))
                events.append((t_open, 0, "open"))
                events.append((t_open + int(rng.integers(3000, 15000)), 1, "close"))
        for tp in self.plan.door_pulses:
            if c0 <= tp < c1:
                events.append((tp, 0, "open"))
                events.append((tp + int(rng.integers(5000, 40000)), 1, "close"))
        for th in self._grid(c0, c1, self.hb["door"], self.hb_phase["door"]).tolist():
            events.append((th, 2, "status"))
        for a, b in self.fx.tamper.get("door", ()):
            for tt in (a, b):
                if c0 <= tt < c1:
                    events.append((tt, 3, "status"))
        events.sort()
        for te, _, what in events:
            if self._offline("door", te):
                continue
            ts1 = self._ts("door", te)
            if what == "status":
                tamper = any(a <= te < b for a, b in self.fx.tamper.get("door", ()))
                level = self._battery("door", te)
                msg = w.device_status(
                    kind="door",
                    device=dev,
                    ts=ts1,
                    battery=level,
                    battery_v=2.4 + 0.6 * level / 100,
                    tamper=tamper,
                    rssi=self._rssi("door"),
                    fw=self.fw["door"],
                )
                out.add(te, msg, RELIABLE if tamper else TELEMETRY)
            else:
                out.add(te, w.door_event(device=dev, ts=ts1, event="open" if what == "open" else "close"), EVENT)

    def _motion(self, out: _Out, c0: int, c1: int) -> None:
        dev, rng, w = self.dev["motion"], self.rng, self.wire
        room = "living"
        # Windows ending in the chunk, except at local midnight (the day's first window ends at 00:10).
        ends = self._grid(c0 + 1 if self._midnight(c0) else c0, c1, MOTION_WINDOW_S * 1000, 0)
        sub = np.linspace(0.05, 0.95, 6)
        pts = ends[:, None] - ((1 - sub) * MOTION_WINDOW_S * 1000).astype(np.int64)[None, :]
        rates = _PIR_PER_MIN[self._states(pts.ravel())].reshape(pts.shape)
        if self.p.living == "couple":
            local_min = ((pts + TZ_OFFSET_MS) % DAY_MS) / MINUTE_MS
            rates = rates + np.where((local_min > 7 * 60) & (local_min < 21.5 * 60), 0.8, 0.0)
            # The spouse is no witness of a long lie (never scheduled in couple homes), so this is safe.
        counts = rng.poisson(rates.mean(axis=1) * MOTION_WINDOW_S / 60)
        items: list[tuple[int, int, str, int]] = []
        prev = 1 if self._midnight(c0) else self.motion_prev
        for k, (te, c) in enumerate(zip(ends.tolist(), counts.tolist(), strict=True)):
            if c > 0 and prev == 0:
                j = int(np.argmax(rates[k] > 0))
                items.append((int(pts[k, j]), 0, "event", 0))
            items.append((te, 1, "tel", int(c)))
            prev = int(c)
        self.motion_prev = prev
        for th in self._grid(c0, c1, self.hb["motion"], self.hb_phase["motion"]).tolist():
            items.append((th, 2, "status", 0))
        items.sort()
        for te, _, what, c in items:
            if self._offline("motion", te):
                continue
            ts1 = self._ts("motion", te)
            if what == "tel":
                out.add(
                    te, w.motion_telemetry(device=dev, ts=ts1, count=c, window_s=MOTION_WINDOW_S, room=room), TELEMETRY
                )
            elif what == "event":
                out.add(te, w.motion_event(device=dev, ts=ts1, room=room), EVENT)
            else:
                msg = w.device_status(
                    kind="motion", device=dev, ts=ts1, battery=self._battery("motion", te), rssi=self._rssi("motion")
                )
                out.add(te, msg, TELEMETRY)

    def _smoke(self, out: _Out, c0: int, c1: int) -> None:
        dev, rng, w = self.dev["smoke"], self.rng, self.wire
        items: list[tuple[int, int, str, int | str | None]] = []
        for te, what, arg in self.fx.smoke_events:
            if c0 <= te < c1:
                items.append((te, 0, what, arg))
        if self._midnight(c0):
            # Now and then the elder presses the detector's test button, once in a day at most.
            self.smoke_test_at = None
            if rng.random() < 0.02:
                tt = c0 + int(rng.uniform(10, 18) * HOUR_MS)
                if self._state(tt) not in ABSENT:
                    self.smoke_test_at = tt
        if self.smoke_test_at is not None and c0 <= self.smoke_test_at < c1:
            items.append((self.smoke_test_at, 0, "test", None))
        for th in self._grid(c0, c1, self.hb["smoke"], self.hb_phase["smoke"]).tolist():
            items.append((th, 2, "status", None))
        for a, b in self.fx.tamper.get("smoke", ()):
            for tt in (a, b):
                if c0 <= tt < c1:
                    items.append((tt, 3, "status", None))
        items.sort(key=lambda x: (x[0], x[1]))
        for te, _, what, arg in items:
            if self._offline("smoke", te):
                continue
            ts1 = self._ts("smoke", te)
            if what == "alarm":
                out.add(
                    te, w.smoke_alarm(device=dev, ts=ts1, level=int(arg) if isinstance(arg, int) else None), LIFE_SAFETY
                )
            elif what == "fault":
                out.add(te, w.smoke_fault(device=dev, ts=ts1, code=str(arg)), RELIABLE)
            elif what in ("silence", "clear", "test"):
                ev: SmokeEvent = "silence" if what == "silence" else "clear" if what == "clear" else "test"
                out.add(te, w.smoke_event(device=dev, ts=ts1, event=ev), EVENT)
            else:
                tamper = any(a <= te < b for a, b in self.fx.tamper.get("smoke", ()))
                state = self._state(te)
                temp = self.smoke_temp + (4.0 if state is State.KITCHEN else 0.0) + float(rng.normal(0, 0.4))
                msg = w.device_status(
                    kind="smoke",
                    device=dev,
                    ts=ts1,
                    battery=self._battery("smoke", te),
                    tamper=tamper,
                    rssi=self._rssi("smoke"),
                    fw=self.fw["smoke"],
                    temp=temp,
                )
                out.add(te, msg, RELIABLE if tamper else TELEMETRY)

    def _button(self, out: _Out, c0: int, c1: int) -> None:
        dev, w = self.dev["call_button"], self.wire
        items: list[tuple[int, int, str]] = [(te, 0, what) for te, what in self.fx.button_events if c0 <= te < c1]
        items += [
            (th, 2, "status")
            for th in self._grid(c0, c1, self.hb["call_button"], self.hb_phase["call_button"]).tolist()
        ]
        items.sort()
        for te, _, what in items:
            if self._offline("call_button", te):
                continue
            ts1 = self._ts("call_button", te)
            if what == "status":
                msg = w.device_status(
                    kind="call_button",
                    device=dev,
                    ts=ts1,
                    battery=self._battery("call_button", te),
                    rssi=self._rssi("call_button"),
                )
                out.add(te, msg, TELEMETRY)
            else:
                out.add(
                    te,
                    w.call_button_event(device=dev, ts=ts1, event="press" if what == "press" else "cancel"),
                    LIFE_SAFETY,
                )

    # -- delivery ---------------------------------------------------------------------------------------------

    def _deliver(self, out: _Out) -> tuple[list[int], list[str], list[bytes]]:
        rng, f = self.rng, self.faults
        n = len(out.true)
        release = np.array(out.release, dtype=np.int64)
        cls = np.array(out.cls, dtype=np.int8)
        latency = np.minimum(rng.lognormal(math.log(150), 0.6, n), 5000).astype(np.int64)
        recv = release + latency
        u = rng.random(n)
        keep = np.where(cls == TELEMETRY, u >= f.loss, np.where(cls == EVENT, u >= f.loss / 2, True))
        radio = (cls != GATEWAY) & (cls != MALFORMED)  # device messages through the radio and the gateway
        late = (rng.random(n) < f.late) & radio
        recv = np.where(late, recv + rng.integers(5_000, 120_000, n), recv)
        dup = (rng.random(n) < np.where(cls == LIFE_SAFETY, 3 * f.duplicate, f.duplicate)) & radio
        dup_delay = rng.integers(300, 3000, n)
        for a, b, why in self.fx.outages:
            inside = (release >= a) & (release < b) & radio
            if not inside.any():
                continue
            if why == "reboot":
                # Lost, except life-safety events: the device retries them until the gateway is back.
                retried = inside & (cls == LIFE_SAFETY)
                recv = np.where(retried, b + LIFE_SAFETY_RETRY_MS + latency, recv)
                keep &= ~inside | retried
            else:
                # The gateway stays up during an internet outage: it queues events and drops telemetry.
                keep &= ~(inside & (cls == TELEMETRY))
                queued = inside & (cls != TELEMETRY)
                recv = np.where(queued, b + QUEUE_FLUSH_MS + np.cumsum(queued) * 50, recv)
        idx = np.flatnonzero(keep)
        didx = np.flatnonzero(keep & dup)
        topics, payloads = out.topics, out.payloads
        both = np.concatenate([idx, didx]).tolist()
        r_out: list[int] = np.concatenate([recv[idx], recv[didx] + dup_delay[didx]]).tolist()
        t_out = [topics[i] for i in both]
        p_out = [payloads[i] for i in both]
        return r_out, t_out, p_out
