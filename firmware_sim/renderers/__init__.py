"""Device firmware and delivery: renders one home's plan into wire messages, one local day at a time.

Each device samples the elder's state timeline at its own cadence (vectorised with numpy where the volume
is), numbers its messages with a per-device ``seq`` in device-time order, stamps them with its own clock
(which may be skewed), and hands them to the radio/gateway/broker path, which loses, duplicates, delays
and reorders them, buffers events during an internet outage, and loses everything during a reboot.
One renderer per device kind (``gateway.py``, ``mattress.py``, ``wristband.py``, ``door.py``, ``motion.py``,
``smoke.py``, ``call_button.py``) over the shared state of ``home.py``.
"""

from __future__ import annotations

import math

import numpy as np

from firmware_sim.delivery import LIFE_SAFETY_RETRY_MS, QUEUE_FLUSH_MS
from firmware_sim.plan import Plan
from firmware_sim.renderers import call_button, door, gas, gateway, mattress, motion, smoke, wristband
from firmware_sim.renderers.home import EVENT, GATEWAY, LIFE_SAFETY, MALFORMED, TELEMETRY, Home, Out
from firmware_sim.wire import WireMessage

RENDERERS = (gateway, mattress, wristband, door, motion, smoke, call_button)
"""Device renderers in the order they draw from the home's random stream (the order is part of the seed)."""


class HomeRenderer(Home):
    """Renders one home's :class:`~firmware_sim.plan.Plan` into delivered messages, day by day, in order of days.

    The gas detector renders and is delivered from random streams of its own, after every other device: adding it
    left the other devices' messages of a seed byte-identical.
    """

    def __init__(self, *, plan: Plan, rng: np.random.Generator, mattress_cadence_s: float) -> None:
        super().__init__(plan=plan, rng=rng, mattress_cadence_s=mattress_cadence_s)
        self.gas = gas.GasDevice(plan)

    def render(self, c0: int, c1: int) -> tuple[list[int], list[str], list[bytes]]:
        """Messages whose device time is in ``[c0, c1)``, as delivered: (received ms, topic, payload).

        Chunks are consecutive and divide local days (a whole day is fastest; live mode uses minutes).
        """
        out = Out()
        for device in RENDERERS:
            device.render(self, out, c0, c1)
        for m in self.plan.malformed:
            if c0 <= m.sent_ms < c1:
                out.add(m.sent_ms, WireMessage(m.topic, m.payload), MALFORMED)
        recv, topics, payloads = self._deliver(out)
        gas_out = Out()
        gas.render(self, self.gas, gas_out, c0, c1)
        if gas_out.true:
            g_recv, g_topics, g_payloads = self._deliver(gas_out, rng=self.gas.rng)
            return recv + g_recv, topics + g_topics, payloads + g_payloads
        return recv, topics, payloads

    def _deliver(self, out: Out, *, rng: np.random.Generator | None = None) -> tuple[list[int], list[str], list[bytes]]:
        rng, f = (self.rng if rng is None else rng), self.faults
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
