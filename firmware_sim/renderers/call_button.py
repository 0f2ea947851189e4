"""The call button: presses and cancels (life-safety), status."""

from __future__ import annotations

from firmware_sim.renderers.home import LIFE_SAFETY, TELEMETRY, Home, Out
from firmware_sim.wire import encode_call_button_event, encode_device_status


def render(home: Home, out: Out, c0: int, c1: int) -> None:
    """Messages of this device with device time in ``[c0, c1)``, added to ``out``."""
    dev, w = home.dev["call_button"], home.wire
    items: list[tuple[int, int, str]] = [(te, 0, what) for te, what in home.fx.button_events if c0 <= te < c1]
    items += [
        (th, 2, "status") for th in home.grid(c0, c1, home.hb["call_button"], home.hb_phase["call_button"]).tolist()
    ]
    items.sort()
    for te, _, what in items:
        if home.offline("call_button", te):
            continue
        ts1 = home.ts("call_button", te)
        if what == "status":
            msg = encode_device_status(
                **w.stamp(dev),
                kind="call_button",
                ts=ts1,
                battery=home.battery("call_button", te),
                rssi=home.rssi_now("call_button"),
            )
            out.add(te, msg, TELEMETRY)
        else:
            out.add(
                te,
                encode_call_button_event(**w.stamp(dev), ts=ts1, event="press" if what == "press" else "cancel"),
                LIFE_SAFETY,
            )
