"""The smoke detector: alarms, silence/clear, faults, the odd test press, status with temperature and tamper."""

from __future__ import annotations

from firmware_sim.models import (
    ABSENT,
    HOUR_MS,
    State,
)
from firmware_sim.renderers.home import EVENT, LIFE_SAFETY, RELIABLE, TELEMETRY, Home, Out
from firmware_sim.wire import (
    SmokeEvent,
    encode_device_status,
    encode_smoke_alarm,
    encode_smoke_event,
    encode_smoke_fault,
)


def render(home: Home, out: Out, c0: int, c1: int) -> None:
    """Messages of this device with device time in ``[c0, c1)``, added to ``out``."""
    dev, rng, w = home.dev["smoke"], home.rng, home.wire
    items: list[tuple[int, int, str, int | str | None]] = []
    for te, what, arg in home.fx.smoke_events:
        if c0 <= te < c1:
            items.append((te, 0, what, arg))
    if home.midnight(c0):
        # Now and then the elder presses the detector's test button, once in a day at most.
        home.smoke_test_at = None
        if rng.random() < 0.02:
            tt = c0 + int(rng.uniform(10, 18) * HOUR_MS)
            if home.state(tt) not in ABSENT:
                home.smoke_test_at = tt
    if home.smoke_test_at is not None and c0 <= home.smoke_test_at < c1:
        items.append((home.smoke_test_at, 0, "test", None))
    for th in home.grid(c0, c1, home.hb["smoke"], home.hb_phase["smoke"]).tolist():
        items.append((th, 2, "status", None))
    for a, b in home.fx.tamper.get("smoke", ()):
        for tt in (a, b):
            if c0 <= tt < c1:
                items.append((tt, 3, "status", None))
    items.sort(key=lambda x: (x[0], x[1]))
    for te, _, what, arg in items:
        if home.offline("smoke", te):
            continue
        ts1 = home.ts("smoke", te)
        if what == "alarm":
            out.add(
                te,
                encode_smoke_alarm(**w.stamp(dev), ts=ts1, level=int(arg) if isinstance(arg, int) else None),
                LIFE_SAFETY,
            )
        elif what == "fault":
            out.add(te, encode_smoke_fault(**w.stamp(dev), ts=ts1, code=str(arg)), RELIABLE)
        elif what in ("silence", "clear", "test"):
            ev: SmokeEvent = "silence" if what == "silence" else "clear" if what == "clear" else "test"
            out.add(te, encode_smoke_event(**w.stamp(dev), ts=ts1, event=ev), EVENT)
        else:
            tamper = any(a <= te < b for a, b in home.fx.tamper.get("smoke", ()))
            state = home.state(te)
            temp = home.smoke_temp + (4.0 if state is State.KITCHEN else 0.0) + float(rng.normal(0, 0.4))
            msg = encode_device_status(
                **w.stamp(dev),
                kind="smoke",
                ts=ts1,
                battery=home.battery("smoke", te),
                tamper=tamper,
                rssi=home.rssi_now("smoke"),
                fw=home.fw["smoke"],
                temp=temp,
            )
            out.add(te, msg, RELIABLE if tamper else TELEMETRY)
