"""The demo home: one message of every kind the contract knows, for smoke tests and ``eldercare up``."""

from __future__ import annotations

from firmware_sim import wire
from firmware_sim.people import STANDARD_DEVICES
from firmware_sim.wire import HomeWire, WireMessage


def demo_home_messages(
    *, site: str = "h0001", gateway: str | None = None, ts: int, include_will: bool = True
) -> list[WireMessage]:
    """Every message kind of contract v1 for one home, time-stamped from ``ts`` on (1 s apart).

    Order: gateway online, then telemetry, events and status of each device kind, then (optionally)
    the Last Will payload as the broker would publish it.
    """
    gw = gateway or f"gw-{site}"
    w = HomeWire(site=site, gateway=gw)
    d = STANDARD_DEVICES  # as in the example in docs/registry.md
    out: list[WireMessage] = []
    t = ts

    def at() -> int:
        nonlocal t
        t += 1000
        return t

    out.append(wire.encode_gateway_online(**w.gateway_stamp(), ts=at(), fw="gw-2.4.1", uptime_s=12))
    out.append(wire.encode_mattress_event(**w.stamp(d["mattress"]), ts=at(), event="in_bed"))
    out.append(
        wire.encode_mattress_telemetry(**w.stamp(d["mattress"]), ts=at(), occupied=True, hr=62.0, rr=14.0, movement=3)
    )
    out.append(wire.encode_apnea(**w.stamp(d["mattress"]), ts=at(), duration_s=12.5))
    out.append(wire.encode_mattress_event(**w.stamp(d["mattress"]), ts=at(), event="out_of_bed"))
    out.append(wire.encode_mattress_telemetry(**w.stamp(d["mattress"]), ts=at(), occupied=False))
    out.append(wire.encode_device_status(**w.stamp(d["mattress"]), kind="mattress", ts=at(), rssi=-61, fw="mat-1.3.0"))
    band = d["wristband"]
    out.append(
        wire.encode_wristband_telemetry(
            **w.stamp(band), ts=at(), worn=True, hr=74.0, spo2=97.0, steps=1234, skin_temp=33.1, battery=80
        )
    )
    out.append(wire.encode_fall(**w.stamp(band), ts=at(), confidence=0.93))
    out.append(wire.encode_wristband_event(**w.stamp(band), ts=at(), event="sos"))
    out.append(wire.encode_wristband_event(**w.stamp(band), ts=at(), event="removed"))
    out.append(wire.encode_wristband_telemetry(**w.stamp(band), ts=at(), worn=False, battery=79))
    out.append(wire.encode_wristband_event(**w.stamp(band), ts=at(), event="worn"))
    out.append(
        wire.encode_device_status(**w.stamp(band), kind="wristband", ts=at(), battery=79, rssi=-70, fw="band-5.0.2")
    )
    out.append(wire.encode_door_event(**w.stamp(d["door"]), ts=at(), event="open"))
    out.append(wire.encode_door_event(**w.stamp(d["door"]), ts=at(), event="close"))
    out.append(
        wire.encode_device_status(
            **w.stamp(d["door"]), kind="door", ts=at(), battery=91, battery_v=2.98, tamper=False, rssi=-75
        )
    )
    smoke = d["smoke"]
    out.append(wire.encode_smoke_event(**w.stamp(smoke), ts=at(), event="test"))
    out.append(wire.encode_smoke_alarm(**w.stamp(smoke), ts=at(), level=12))
    out.append(wire.encode_smoke_event(**w.stamp(smoke), ts=at(), event="silence"))
    out.append(wire.encode_smoke_event(**w.stamp(smoke), ts=at(), event="clear"))
    out.append(wire.encode_smoke_fault(**w.stamp(smoke), ts=at(), code="E03"))
    out.append(
        wire.encode_device_status(
            **w.stamp(smoke), kind="smoke", ts=at(), battery=88, tamper=False, rssi=-68, temp=23.5
        )
    )
    out.append(wire.encode_call_button_event(**w.stamp(d["call_button"]), ts=at(), event="press"))
    out.append(wire.encode_call_button_event(**w.stamp(d["call_button"]), ts=at(), event="cancel"))
    out.append(
        wire.encode_device_status(**w.stamp(d["call_button"]), kind="call_button", ts=at(), battery=95, rssi=-66)
    )
    out.append(wire.encode_motion_telemetry(**w.stamp(d["motion"]), ts=at(), count=7, window_s=300, room="living"))
    out.append(wire.encode_motion_event(**w.stamp(d["motion"]), ts=at(), room="living"))
    out.append(wire.encode_device_status(**w.stamp(d["motion"]), kind="motion", ts=at(), battery=84, rssi=-72))
    out.append(wire.encode_gateway_offline(**w.gateway_stamp(), ts=at()))
    if include_will:
        out.append(wire.gateway_will(site=site, gateway=gw))
    return out
