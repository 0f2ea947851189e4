"""The kitchen gas detector (燃气报警器): alarms and clears, faults, test presses, a mains-powered heartbeat.

It draws from a random stream of its own (seeded by the plan), never from the home's: the other devices' messages
of a seed stay byte-identical with it.
"""

from __future__ import annotations

import numpy as np

from firmware_sim.models import GAS_DEVICE, HOUR_MS
from firmware_sim.plan import Plan
from firmware_sim.renderers.home import EVENT, LIFE_SAFETY, RELIABLE, TELEMETRY, Home, Out
from firmware_sim.wire import encode_device_status, encode_gas_alarm, encode_gas_event, encode_gas_fault


class GasDevice:
    """The detector's own state: random stream, heartbeat period and phase, clock offset, signal level."""

    def __init__(self, plan: Plan) -> None:
        self.rng = np.random.Generator(np.random.PCG64(plan.gas_seed))
        self.hb = int(self.rng.uniform(2, 6) * HOUR_MS)
        self.phase = int(self.rng.integers(0, self.hb))
        self.clock = int(self.rng.normal(0, 800))
        self.rssi = int(self.rng.integers(-85, -50))


def render(home: Home, g: GasDevice, out: Out, c0: int, c1: int) -> None:
    """Messages of the gas detector with device time in ``[c0, c1)``, added to ``out``."""
    w = home.wire
    items: list[tuple[int, int, str, tuple[int, bool] | str | None]] = [
        (te, 0, what, arg) for te, what, arg in home.fx.gas_events if c0 <= te < c1
    ]
    items += [(th, 2, "status", None) for th in home.grid(c0, c1, g.hb, g.phase).tolist()]
    items.sort(key=lambda x: (x[0], x[1]))
    for te, _, what, arg in items:
        ts = max(0, te + g.clock)
        if what == "alarm" and isinstance(arg, tuple):
            lel, valve = arg
            out.add(te, encode_gas_alarm(**w.stamp(GAS_DEVICE), ts=ts, lel=lel, valve_closed=valve), LIFE_SAFETY)
        elif what == "fault":
            out.add(te, encode_gas_fault(**w.stamp(GAS_DEVICE), ts=ts, code=str(arg)), RELIABLE)
        elif what == "clear":
            out.add(te, encode_gas_event(**w.stamp(GAS_DEVICE), ts=ts, event="clear"), EVENT)
        elif what == "test":
            out.add(te, encode_gas_event(**w.stamp(GAS_DEVICE), ts=ts, event="test"), EVENT)
        else:
            rssi = int(np.clip(g.rssi + g.rng.integers(-4, 5), -120, -20))
            msg = encode_device_status(**w.stamp(GAS_DEVICE), kind="gas", ts=ts, rssi=rssi, fw="gas-1.2.0")
            out.add(te, msg, TELEMETRY)
