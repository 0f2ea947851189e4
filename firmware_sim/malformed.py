"""Malformed messages, as cheap devices send them: the device-faulty mix's firmware and radio faults.

Each is planned once per home (its own random stream, so the rest of the scenario does not change), delivered
exactly once, and listed in the ground truth with the dead-letter reason the backend must give it:

=================  ==========================================================  ==================
fault              what the device sends                                       expected reason
=================  ==========================================================  ==================
``truncated``      a payload cut off mid-way (a lost radio frame)              ``bad_json``
``non_utf8``       1–4 bytes of line noise (0xF8–0xFF) before the JSON         ``bad_json``
``wrong_type``     a number or boolean sent as a string (``"seq":"812"``)      ``bad_schema``
``missing_field``  ``seq`` or ``ts`` left out                                  ``bad_schema``
``out_of_range``   status with ``battery: 255`` (0xFF, "unknown")               ``out_of_range``
``unknown_device`` a valid payload from an unregistered device id              ``unknown_device``
=================  ==========================================================  ==================

``unknown_device`` is refused only by a decoder that knows the registry (as the backend's does).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

import msgspec
import numpy as np

from firmware_sim.models import DAY_MS, MINUTE_MS, Malformed, Mix
from firmware_sim.plan import Plan
from firmware_sim.wire import (
    JsonValue,
    Kind,
    MessageType,
    encode_device_status,
    encode_door_event,
    encode_mattress_telemetry,
    encode_motion_telemetry,
    topic,
)

PER_DAY: Final[dict[Mix, float]] = {Mix.NORMAL: 0.0, Mix.INCIDENT_RICH: 0.0, Mix.DEVICE_FAULTY: 0.4}
"""Mean malformed messages per home and day, by mix."""

REASONS: Final[dict[str, str]] = {
    "truncated": "bad_json",
    "non_utf8": "bad_json",
    "wrong_type": "bad_schema",
    "missing_field": "bad_schema",
    "out_of_range": "out_of_range",
    "unknown_device": "unknown_device",
}
"""Fault → the backend's dead-letter reason (plain ``gateway.errors.Reason`` values; no backend import)."""

CHEAP_KINDS: Final[tuple[Kind, ...]] = ("mattress", "door", "motion", "smoke", "call_button")
"""Devices that send malformed messages (the wristband and the gateway validate before sending)."""

_MARGIN_MS: Final = 5 * MINUTE_MS
_ENC: Final = msgspec.json.Encoder()
_DEC: Final = msgspec.json.Decoder(dict[str, JsonValue])


def _base(kind: Kind, site: str, device: str, seq: int, ts: int, rng: np.random.Generator) -> tuple[MessageType, bytes]:
    """A well-formed message of the device, the starting point of every fault."""
    if kind == "mattress":
        msg = encode_mattress_telemetry(
            site=site,
            device=device,
            seq=seq,
            ts=ts,
            occupied=True,
            hr=float(rng.uniform(50, 90)),
            rr=float(rng.uniform(11, 20)),
            movement=int(rng.integers(0, 30)),
        )
        return "telemetry", msg.payload
    if kind == "door":
        return "event", encode_door_event(site=site, device=device, seq=seq, ts=ts, event="open").payload
    if kind == "motion":
        msg = encode_motion_telemetry(
            site=site, device=device, seq=seq, ts=ts, count=int(rng.integers(0, 12)), window_s=600, room="living"
        )
        return "telemetry", msg.payload
    status = encode_device_status(
        site=site, kind=kind, device=device, seq=seq, ts=ts, battery=int(rng.integers(40, 100)), rssi=-70
    )
    return "status", status.payload


def _corrupt(fault: str, payload: bytes, rng: np.random.Generator) -> bytes:
    if fault == "truncated":
        return payload[: int(rng.integers(1, len(payload) - 1))]
    if fault == "non_utf8":
        # 0xF8–0xFF never occur in UTF-8, and noise in front of the '{' is never valid JSON.
        return bytes(rng.integers(0xF8, 0x100, size=int(rng.integers(1, 5))).tolist()) + payload
    body = _DEC.decode(payload)
    if fault == "wrong_type":
        candidates = [k for k, v in body.items() if k != "event" and isinstance(v, bool | int | float)]
        name = candidates[int(rng.integers(len(candidates)))]
        value = body[name]
        body[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    elif fault == "missing_field":
        del body[("seq", "ts")[int(rng.integers(2))]]
    return _ENC.encode(body)


def plan_malformed(plan: Plan, rng: np.random.Generator) -> list[Malformed]:
    """The malformed messages of one home over the period (none outside the device-faulty mix).

    They are sent while the device is online and the gateway is up, so each is delivered exactly once.
    """
    spec = plan.spec
    rate = PER_DAY[spec.mix]
    if rate <= 0:
        return []
    fx = plan.effects
    end = plan.start_ms + plan.days * DAY_MS
    faults = list(REASONS)
    out: list[Malformed] = []
    for _ in range(int(rng.poisson(rate * plan.days))):
        kind = CHEAP_KINDS[int(rng.integers(len(CHEAP_KINDS)))]
        fault = faults[int(rng.integers(len(faults)))]
        t = int(rng.integers(plan.start_ms + _MARGIN_MS, end - _MARGIN_MS))
        blocked = [(a, b) for a, b, _ in fx.outages] + list(fx.offline.get(kind, ()))
        if any(a - _MARGIN_MS <= t < b + _MARGIN_MS for a, b in blocked):
            continue
        device = spec.devices[kind]
        if fault == "unknown_device":
            device = f"{device[:-1]}{int(rng.integers(2, 10))}"  # door1 → door7: a neighbour's or a reset device
        seq = int(rng.integers(1, 60_000))
        if fault == "out_of_range":
            mtype: MessageType = "status"
            payload = encode_device_status(
                site=spec.site, kind=kind, device=device, seq=seq, ts=t, battery=255, rssi=-70
            ).payload
        else:
            mtype, payload = _base(kind, spec.site, device, seq, t, rng)
            if fault != "unknown_device":
                payload = _corrupt(fault, payload, rng)
        out.append(
            Malformed(
                id="",
                site=spec.site,
                kind=kind,
                device=device,
                fault=fault,
                reason=REASONS[fault],
                sent_ms=t,
                topic=topic(spec.site, kind, device, mtype),
                payload=payload,
            )
        )
    out.sort(key=lambda m: m.sent_ms)
    return [replace(m, id=f"{spec.site}-m{i:03d}") for i, m in enumerate(out, start=1)]
