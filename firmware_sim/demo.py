"""The demo home: one message of every kind the contract knows, for smoke tests and ``eldercare up``."""

from __future__ import annotations

from typing import Final

from firmware_sim.wire import HomeWire, WireMessage, gateway_will

DEMO_DEVICES: Final[dict[str, str]] = {
    "mattress": "mat1",
    "wristband": "band1",
    "door": "door1",
    "smoke": "smoke1",
    "call_button": "btn1",
    "motion": "pir1",
}
"""Device ids of a standard home, matching the example in docs/registry.md."""


def demo_home_messages(
    *, site: str = "h0001", gateway: str | None = None, ts: int, include_will: bool = True
) -> list[WireMessage]:
    """Every message kind of contract v1 for one home, time-stamped from ``ts`` on (1 s apart).

    Order: gateway online, then telemetry, events and status of each device kind, then (optionally)
    the Last Will payload as the broker would publish it.
    """
    gw = gateway or f"gw-{site}"
    w = HomeWire(site=site, gateway=gw)
    d = DEMO_DEVICES
    out: list[WireMessage] = []
    t = ts

    def at() -> int:
        nonlocal t
        t += 1000
        return t

    out.append(w.gateway_online(ts=at(), fw="gw-2.4.1", uptime_s=12))
    out.append(w.mattress_event(device=d["mattress"], ts=at(), event="in_bed"))
    out.append(w.mattress_telemetry(device=d["mattress"], ts=at(), occupied=True, hr=62.0, rr=14.0, movement=3))
    out.append(w.apnea(device=d["mattress"], ts=at(), duration_s=12.5))
    out.append(w.mattress_event(device=d["mattress"], ts=at(), event="out_of_bed"))
    out.append(w.mattress_telemetry(device=d["mattress"], ts=at(), occupied=False))
    out.append(w.device_status(kind="mattress", device=d["mattress"], ts=at(), rssi=-61, fw="mat-1.3.0"))
    band = d["wristband"]
    out.append(
        w.wristband_telemetry(
            device=band, ts=at(), worn=True, hr=74.0, spo2=97.0, steps=1234, skin_temp=33.1, battery=80
        )
    )
    out.append(w.fall(device=band, ts=at(), confidence=0.93))
    out.append(w.wristband_event(device=band, ts=at(), event="sos"))
    out.append(w.wristband_event(device=band, ts=at(), event="removed"))
    out.append(w.wristband_telemetry(device=band, ts=at(), worn=False, battery=79))
    out.append(w.wristband_event(device=band, ts=at(), event="worn"))
    out.append(w.device_status(kind="wristband", device=band, ts=at(), battery=79, rssi=-70, fw="band-5.0.2"))
    out.append(w.door_event(device=d["door"], ts=at(), event="open"))
    out.append(w.door_event(device=d["door"], ts=at(), event="close"))
    out.append(
        w.device_status(kind="door", device=d["door"], ts=at(), battery=91, battery_v=2.98, tamper=False, rssi=-75)
    )
    smoke = d["smoke"]
    out.append(w.smoke_event(device=smoke, ts=at(), event="test"))
    out.append(w.smoke_alarm(device=smoke, ts=at(), level=12))
    out.append(w.smoke_event(device=smoke, ts=at(), event="silence"))
    out.append(w.smoke_event(device=smoke, ts=at(), event="clear"))
    out.append(w.smoke_fault(device=smoke, ts=at(), code="E03"))
    out.append(w.device_status(kind="smoke", device=smoke, ts=at(), battery=88, tamper=False, rssi=-68, temp=23.5))
    out.append(w.call_button_event(device=d["call_button"], ts=at(), event="press"))
    out.append(w.call_button_event(device=d["call_button"], ts=at(), event="cancel"))
    out.append(w.device_status(kind="call_button", device=d["call_button"], ts=at(), battery=95, rssi=-66))
    out.append(w.motion_telemetry(device=d["motion"], ts=at(), count=7, window_s=300, room="living"))
    out.append(w.motion_event(device=d["motion"], ts=at(), room="living"))
    out.append(w.device_status(kind="motion", device=d["motion"], ts=at(), battery=84, rssi=-72))
    out.append(w.gateway_offline(ts=at()))
    if include_will:
        out.append(gateway_will(site=site, gateway=gw))
    return out
