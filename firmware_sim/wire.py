"""Pure encoders for every message of the telemetry contract v1, as a device or home gateway sends it.

This module is the simulator's only knowledge of the wire: topics ``ec/v1/{site}/{kind}/{device}/{type}``
and JSON payloads. It deliberately re-states the contract instead of importing the backend, so a change
on either side that breaks compatibility is caught by the round-trip test in ``tests/sim``.

Every device payload carries ``seq`` (per device, strictly increasing) and ``ts`` (device clock, epoch ms).
:class:`HomeWire` keeps the per-device counters of one home; the module-level ``encode_*`` functions are
pure and take ``site``, ``device`` and ``seq`` explicitly, which :meth:`HomeWire.stamp` supplies:

>>> w = HomeWire(site="h0001", gateway="gw-h0001")
>>> encode_door_event(**w.stamp("door1"), ts=1000, event="open")
WireMessage(topic='ec/v1/h0001/door/door1/event', payload=b'{"event":"open","seq":1,"ts":1000}', retain=False)
>>> encode_door_event(**w.stamp("door1"), ts=2000, event="close").payload
b'{"event":"close","seq":2,"ts":2000}'
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple, TypedDict

import msgspec

PREFIX: Final = "ec/v1"
"""Topic prefix of contract v1."""

Kind = Literal["mattress", "wristband", "door", "smoke", "gas", "call_button", "motion", "gateway"]
KINDS: Final[tuple[Kind, ...]] = ("mattress", "wristband", "door", "smoke", "gas", "call_button", "motion", "gateway")
MessageType = Literal["telemetry", "event", "status", "cmd"]

MattressEvent = Literal["in_bed", "out_of_bed"]
WristbandEvent = Literal["sos", "removed", "worn"]
DoorEvent = Literal["open", "close"]
SmokeEvent = Literal["test", "silence", "clear"]
GasEvent = Literal["test", "silence", "clear"]
CallButtonEvent = Literal["press", "cancel"]

WILL_PAYLOAD: Final = b'{"online":false}'
"""Last Will the broker publishes (retained) when a gateway disappears without a clean disconnect."""

_ENCODE: Final = msgspec.json.Encoder()

JsonValue = bool | int | float | str | None


class WireMessage(NamedTuple):
    """One MQTT publication: topic, exact payload bytes, and whether the broker keeps it (retained).

    A NamedTuple rather than a Struct so it unpacks as ``topic, payload`` where callers want a plain pair.
    """

    topic: str
    payload: bytes
    retain: bool = False


def topic(site: str, kind: Kind, device: str, mtype: MessageType) -> str:
    """Build a contract topic.

    >>> topic("h1", "mattress", "mat1", "telemetry")
    'ec/v1/h1/mattress/mat1/telemetry'
    """
    return f"{PREFIX}/{site}/{kind}/{device}/{mtype}"


def status_topic(site: str, gateway: str) -> str:
    """Retained status topic of a home gateway, also its Last Will topic."""
    return topic(site, "gateway", gateway, "status")


def command_filter(site: str) -> str:
    """Topic filter covering every downstream command to any device of one home."""
    return f"{PREFIX}/{site}/+/+/cmd"


def _r1(value: float) -> float:
    # One decimal is what real devices report; it also keeps payloads short and byte-stable.
    return round(float(value), 1)


def _payload(fields: dict[str, JsonValue]) -> bytes:
    return _ENCODE.encode({k: v for k, v in fields.items() if v is not None})


def _event_payload(event: str, seq: int, ts: int, extra: dict[str, JsonValue] | None = None) -> bytes:
    # The tag goes first: msgspec (and most decoders) resolve a tagged union fastest that way.
    body: dict[str, JsonValue] = {"event": event, "seq": seq, "ts": ts}
    if extra:
        body.update(extra)
    return _payload(body)


def encode_mattress_telemetry(
    *,
    site: str,
    device: str,
    seq: int,
    ts: int,
    occupied: bool,
    hr: float | None = None,
    rr: float | None = None,
    movement: int | None = None,
) -> WireMessage:
    """Mattress periodic sample (every 10–30 s); hr/rr omitted when out of bed."""
    body: dict[str, JsonValue] = {"seq": seq, "ts": ts, "occupied": occupied}
    if hr is not None:
        body["hr"] = _r1(hr)
    if rr is not None:
        body["rr"] = _r1(rr)
    if movement is not None:
        body["movement"] = int(movement)
    return WireMessage(topic(site, "mattress", device, "telemetry"), _payload(body))


def encode_mattress_event(*, site: str, device: str, seq: int, ts: int, event: MattressEvent) -> WireMessage:
    """Mattress occupancy change, sent immediately."""
    return WireMessage(topic(site, "mattress", device, "event"), _event_payload(event, seq, ts))


def encode_apnea(*, site: str, device: str, seq: int, ts: int, duration_s: float) -> WireMessage:
    """Breathing pause detected by the mattress."""
    return WireMessage(
        topic(site, "mattress", device, "event"), _event_payload("apnea", seq, ts, {"duration_s": _r1(duration_s)})
    )


def encode_wristband_telemetry(
    *,
    site: str,
    device: str,
    seq: int,
    ts: int,
    worn: bool,
    hr: float | None = None,
    spo2: float | None = None,
    steps: int | None = None,
    skin_temp: float | None = None,
    battery: int | None = None,
) -> WireMessage:
    """Wristband vitals sample (every 1–10 min); vitals omitted when not worn."""
    body: dict[str, JsonValue] = {
        "seq": seq,
        "ts": ts,
        "worn": worn,
        "hr": None if hr is None else _r1(hr),
        "spo2": None if spo2 is None else _r1(spo2),
        "steps": steps,
        "skin_temp": None if skin_temp is None else _r1(skin_temp),
        "battery": battery,
    }
    return WireMessage(topic(site, "wristband", device, "telemetry"), _payload(body))


def encode_wristband_event(*, site: str, device: str, seq: int, ts: int, event: WristbandEvent) -> WireMessage:
    """Wristband SOS key, band removed, band put on."""
    return WireMessage(topic(site, "wristband", device, "event"), _event_payload(event, seq, ts))


def encode_fall(*, site: str, device: str, seq: int, ts: int, confidence: float) -> WireMessage:
    """Fall detected by the wristband, with the detector's confidence 0–1."""
    conf = round(min(max(float(confidence), 0.0), 1.0), 2)
    return WireMessage(topic(site, "wristband", device, "event"), _event_payload("fall", seq, ts, {"confidence": conf}))


def encode_door_event(
    *, site: str, device: str, seq: int, ts: int, event: DoorEvent, room: str | None = None
) -> WireMessage:
    """Door contact opened or closed (``room``: optional, ``entrance`` for the front door)."""
    return WireMessage(topic(site, "door", device, "event"), _event_payload(event, seq, ts, {"room": room}))


def encode_smoke_alarm(*, site: str, device: str, seq: int, ts: int, level: int | None = None) -> WireMessage:
    """Smoke alarm sounding (life-safety)."""
    return WireMessage(topic(site, "smoke", device, "event"), _event_payload("alarm", seq, ts, {"level": level}))


def encode_smoke_event(*, site: str, device: str, seq: int, ts: int, event: SmokeEvent) -> WireMessage:
    """Smoke detector test, silence or clear."""
    return WireMessage(topic(site, "smoke", device, "event"), _event_payload(event, seq, ts))


def encode_smoke_fault(*, site: str, device: str, seq: int, ts: int, code: str | None = None) -> WireMessage:
    """Smoke detector sensor fault with a device-specific code."""
    return WireMessage(topic(site, "smoke", device, "event"), _event_payload("fault", seq, ts, {"code": code}))


def encode_gas_alarm(
    *, site: str, device: str, seq: int, ts: int, lel: int | None = None, valve_closed: bool | None = None
) -> WireMessage:
    """Gas leak alarm sounding (life-safety); ``lel`` in % of the lower explosive limit."""
    extra: dict[str, JsonValue] = {"lel": lel, "valve_closed": valve_closed}
    return WireMessage(topic(site, "gas", device, "event"), _event_payload("alarm", seq, ts, extra))


def encode_gas_event(*, site: str, device: str, seq: int, ts: int, event: GasEvent) -> WireMessage:
    """Gas detector test, silence or clear."""
    return WireMessage(topic(site, "gas", device, "event"), _event_payload(event, seq, ts))


def encode_gas_fault(*, site: str, device: str, seq: int, ts: int, code: str | None = None) -> WireMessage:
    """Gas detector sensor fault with a device-specific code."""
    return WireMessage(topic(site, "gas", device, "event"), _event_payload("fault", seq, ts, {"code": code}))


def encode_call_button_event(*, site: str, device: str, seq: int, ts: int, event: CallButtonEvent) -> WireMessage:
    """Emergency call button pressed or the press cancelled."""
    return WireMessage(topic(site, "call_button", device, "event"), _event_payload(event, seq, ts))


def encode_motion_telemetry(
    *, site: str, device: str, seq: int, ts: int, count: int, window_s: int, room: str | None = None
) -> WireMessage:
    """PIR trigger count over the last ``window_s`` seconds."""
    body: dict[str, JsonValue] = {"seq": seq, "ts": ts, "count": int(count), "window_s": int(window_s), "room": room}
    return WireMessage(topic(site, "motion", device, "telemetry"), _payload(body))


def encode_motion_event(*, site: str, device: str, seq: int, ts: int, room: str | None = None) -> WireMessage:
    """Motion detected (at most once per hold-off time)."""
    return WireMessage(topic(site, "motion", device, "event"), _event_payload("motion", seq, ts, {"room": room}))


def encode_device_status(
    *,
    site: str,
    kind: Kind,
    device: str,
    seq: int,
    ts: int,
    battery: int | None = None,
    battery_v: float | None = None,
    tamper: bool | None = None,
    rssi: int | None = None,
    fw: str | None = None,
    temp: float | None = None,
) -> WireMessage:
    """Heartbeat/status of a battery device; ``temp`` only for smoke detectors."""
    body: dict[str, JsonValue] = {
        "seq": seq,
        "ts": ts,
        "battery": battery,
        "battery_v": None if battery_v is None else round(float(battery_v), 2),
        "tamper": tamper,
        "rssi": rssi,
        "fw": fw,
        "temp": None if temp is None else _r1(temp),
    }
    return WireMessage(topic(site, kind, device, "status"), _payload(body))


def encode_gateway_online(
    *, site: str, gateway: str, seq: int, ts: int, fw: str | None = None, uptime_s: int | None = None
) -> WireMessage:
    """Retained ``online: true`` status a gateway publishes on every (re)connect."""
    body: dict[str, JsonValue] = {"online": True, "seq": seq, "ts": ts, "fw": fw, "uptime_s": uptime_s}
    return WireMessage(status_topic(site, gateway), _payload(body), retain=True)


def encode_gateway_offline(*, site: str, gateway: str, seq: int, ts: int) -> WireMessage:
    """Retained ``online: false`` a gateway publishes itself before a clean shutdown."""
    return WireMessage(status_topic(site, gateway), _payload({"online": False, "seq": seq, "ts": ts}), retain=True)


def gateway_will(*, site: str, gateway: str) -> WireMessage:
    """The Last Will as the broker publishes it: no seq, no ts, just ``{"online":false}``."""
    return WireMessage(status_topic(site, gateway), WILL_PAYLOAD, retain=True)


class Stamp(TypedDict):
    """Who sends a device message and its sequence number (``encode_x(**wire.stamp(device), ts=..., ...)``)."""

    site: str
    device: str
    seq: int


class GatewayStamp(TypedDict):
    """The same for a home gateway's own status messages."""

    site: str
    gateway: str
    seq: int


class HomeWire:
    """Encoders of one home with per-device sequence counters (each device counts from ``start_seq + 1``).

    Not a domain value: it is the mutable firmware state of a home's devices, owned by one simulator or
    publisher, so it is a plain class.
    """

    __slots__ = ("_seq", "gateway", "site", "start_seq")

    def __init__(self, *, site: str, gateway: str, start_seq: int = 0) -> None:
        self.site = site
        self.gateway = gateway
        self.start_seq = start_seq
        self._seq: dict[str, int] = {}

    def next_seq(self, device: str) -> int:
        """Advance and return the next sequence number of ``device``."""
        value = self._seq.get(device, self.start_seq) + 1
        self._seq[device] = value
        return value

    def reserve(self, device: str, count: int) -> int:
        """Reserve ``count`` consecutive sequence numbers of ``device``; return the first."""
        first = self._seq.get(device, self.start_seq) + 1
        self._seq[device] = first + count - 1
        return first

    def reset_seq(self, device: str, *, to: int = 0) -> None:
        """Restart a device's counter, as firmware does after a battery change or reboot."""
        self._seq[device] = to

    def stamp(self, device: str) -> Stamp:
        """Site, device and the device's next ``seq``: the first arguments of every device encoder."""
        return {"site": self.site, "device": device, "seq": self.next_seq(device)}

    def gateway_stamp(self) -> GatewayStamp:
        """Site, gateway and the gateway's next ``seq``: the first arguments of the gateway status encoders."""
        return {"site": self.site, "gateway": self.gateway, "seq": self.next_seq(self.gateway)}


def encode_mattress_batch(
    *,
    site: str,
    device: str,
    seqs: list[int],
    ts: list[int],
    occupied: list[bool],
    hr: list[float],
    rr: list[float],
    movement: list[int],
) -> list[bytes]:
    """Many mattress samples at once, byte-identical to :func:`encode_mattress_telemetry` (the hot path).

    ``hr`` and ``rr`` must already be rounded to one decimal; out-of-bed samples carry only ``occupied``.
    """
    del site, device  # same topic for every sample; kept for symmetry with the single encoder
    return [
        (
            f'{{"seq":{s},"ts":{t},"occupied":true,"hr":{h!r},"rr":{r!r},"movement":{m}}}'
            if o
            else f'{{"seq":{s},"ts":{t},"occupied":false}}'
        ).encode()
        for s, t, o, h, r, m in zip(seqs, ts, occupied, hr, rr, movement, strict=True)
    ]


def wristband_telemetry_payload(
    *, seq: int, ts: int, worn: bool, hr: float, spo2: float, steps: int, skin_temp: float, battery: int
) -> bytes:
    """Payload of :func:`encode_wristband_telemetry`, byte-identical, for floats already rounded to one decimal.

    The per-sample hot path of the wristband (no dict, no encoder call); vitals are left out when not worn.
    """
    if worn:
        return (
            f'{{"seq":{seq},"ts":{ts},"worn":true,"hr":{hr!r},"spo2":{spo2!r},"steps":{steps},'
            f'"skin_temp":{skin_temp!r},"battery":{battery}}}'
        ).encode()
    return f'{{"seq":{seq},"ts":{ts},"worn":false,"steps":{steps},"battery":{battery}}}'.encode()


def gateway_online_payload(*, seq: int, ts: int, fw: str, uptime_s: int) -> bytes:
    """Payload of :func:`encode_gateway_online`, byte-identical (the gateway's 4-minute heartbeat hot path)."""
    return b'{"online":true,"seq":%d,"ts":%d,"fw":%s,"uptime_s":%d}' % (seq, ts, _ENCODE.encode(fw), uptime_s)
