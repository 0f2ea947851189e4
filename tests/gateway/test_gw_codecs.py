"""Every decoder: a valid example of every message, and each class of error with its reason."""

from __future__ import annotations

import pytest

from firmware_sim import wire
from firmware_sim.wire import HomeWire, WireMessage
from gateway.codecs import DECODERS
from gateway.contract import decode_message, parse_topic
from gateway.errors import DecodeError, Reason
from gateway.models import DeviceKind, MessageType
from gateway.provisioning import SiteDevices, StaticDirectory

NOW = 1_750_000_000_000
SITE = "h1"
DIRECTORY = StaticDirectory(
    [
        SiteDevices(
            site=SITE,
            gateway="gw-h1",
            devices={
                "mat1": DeviceKind.MATTRESS,
                "band1": DeviceKind.WRISTBAND,
                "door1": DeviceKind.DOOR,
                "smoke1": DeviceKind.SMOKE,
                "gas1": DeviceKind.GAS,
                "btn1": DeviceKind.CALL_BUTTON,
                "pir1": DeviceKind.MOTION,
            },
        )
    ]
)


def examples() -> list[tuple[WireMessage, dict[str, object], str | None]]:
    w = HomeWire(site=SITE, gateway="gw-h1")
    return [
        (
            wire.encode_mattress_telemetry(**w.stamp("mat1"), ts=NOW, occupied=True, hr=61, rr=13.5, movement=2),
            {"occupied": True, "hr": 61.0, "rr": 13.5, "movement": 2},
            None,
        ),
        (wire.encode_mattress_telemetry(**w.stamp("mat1"), ts=NOW, occupied=False), {"occupied": False}, None),
        (wire.encode_mattress_event(**w.stamp("mat1"), ts=NOW, event="in_bed"), {}, "in_bed"),
        (wire.encode_mattress_event(**w.stamp("mat1"), ts=NOW, event="out_of_bed"), {}, "out_of_bed"),
        (wire.encode_apnea(**w.stamp("mat1"), ts=NOW, duration_s=15), {"duration_s": 15.0}, "apnea"),
        (
            wire.encode_wristband_telemetry(
                **w.stamp("band1"), ts=NOW, worn=True, hr=70, spo2=96, steps=10, skin_temp=33, battery=5
            ),
            {"worn": True, "hr": 70.0, "spo2": 96.0, "steps": 10, "skin_temp": 33.0, "battery": 5},
            None,
        ),
        (wire.encode_wristband_event(**w.stamp("band1"), ts=NOW, event="sos"), {}, "sos"),
        (wire.encode_wristband_event(**w.stamp("band1"), ts=NOW, event="removed"), {}, "removed"),
        (wire.encode_wristband_event(**w.stamp("band1"), ts=NOW, event="worn"), {}, "worn"),
        (wire.encode_fall(**w.stamp("band1"), ts=NOW, confidence=0.8), {"confidence": 0.8}, "fall"),
        (wire.encode_door_event(**w.stamp("door1"), ts=NOW, event="open"), {}, "open"),
        (wire.encode_door_event(**w.stamp("door1"), ts=NOW, event="close"), {}, "close"),
        (
            wire.encode_door_event(**w.stamp("door1"), ts=NOW, event="open", room="kitchen"),
            {"room": "kitchen"},
            "open",
        ),
        (wire.encode_smoke_alarm(**w.stamp("smoke1"), ts=NOW, level=30), {"level": 30}, "alarm"),
        (wire.encode_smoke_alarm(**w.stamp("smoke1"), ts=NOW), {}, "alarm"),
        (wire.encode_smoke_event(**w.stamp("smoke1"), ts=NOW, event="test"), {}, "test"),
        (wire.encode_smoke_event(**w.stamp("smoke1"), ts=NOW, event="silence"), {}, "silence"),
        (wire.encode_smoke_event(**w.stamp("smoke1"), ts=NOW, event="clear"), {}, "clear"),
        (wire.encode_smoke_fault(**w.stamp("smoke1"), ts=NOW, code="E1"), {"code": "E1"}, "fault"),
        (wire.encode_gas_alarm(**w.stamp("gas1"), ts=NOW, lel=20), {"lel": 20}, "alarm"),
        (wire.encode_gas_event(**w.stamp("gas1"), ts=NOW, event="test"), {}, "test"),
        (wire.encode_gas_event(**w.stamp("gas1"), ts=NOW, event="clear"), {}, "clear"),
        (wire.encode_gas_fault(**w.stamp("gas1"), ts=NOW, code="F1"), {"code": "F1"}, "fault"),
        (wire.encode_device_status(**w.stamp("gas1"), kind="gas", ts=NOW, rssi=-60), {"rssi": -60}, None),
        (wire.encode_call_button_event(**w.stamp("btn1"), ts=NOW, event="press"), {}, "press"),
        (wire.encode_call_button_event(**w.stamp("btn1"), ts=NOW, event="cancel"), {}, "cancel"),
        (
            wire.encode_motion_telemetry(**w.stamp("pir1"), ts=NOW, count=3, window_s=60, room="hall"),
            {"count": 3, "window_s": 60, "room": "hall"},
            None,
        ),
        (wire.encode_motion_event(**w.stamp("pir1"), ts=NOW, room="bathroom"), {"room": "bathroom"}, "motion"),
        (wire.encode_device_status(**w.stamp("mat1"), kind="mattress", ts=NOW, rssi=-70), {"rssi": -70}, None),
        (wire.encode_device_status(**w.stamp("band1"), kind="wristband", ts=NOW, battery=50), {"battery": 50}, None),
        (
            wire.encode_device_status(**w.stamp("door1"), kind="door", ts=NOW, battery=3, battery_v=2.7, tamper=True),
            {"battery": 3, "battery_v": 2.7, "tamper": True},
            None,
        ),
        (
            wire.encode_device_status(**w.stamp("smoke1"), kind="smoke", ts=NOW, temp=21.5, fw="s-2"),
            {"temp": 21.5, "fw": "s-2"},
            None,
        ),
        (wire.encode_device_status(**w.stamp("btn1"), kind="call_button", ts=NOW, battery=99), {"battery": 99}, None),
        (wire.encode_device_status(**w.stamp("pir1"), kind="motion", ts=NOW, battery=1), {"battery": 1}, None),
        (
            wire.encode_gateway_online(**w.gateway_stamp(), ts=NOW, fw="gw-1", uptime_s=5),
            {"online": True, "fw": "gw-1", "uptime_s": 5},
            None,
        ),
        (wire.encode_gateway_offline(**w.gateway_stamp(), ts=NOW), {"online": False}, None),
        (wire.gateway_will(site=w.site, gateway=w.gateway), {"online": False}, None),
    ]


@pytest.mark.parametrize(("message", "fields", "event"), examples(), ids=lambda v: getattr(v, "topic", None))
def test_every_message_decodes(message: WireMessage, fields: dict[str, object], event: str | None) -> None:
    reading = decode_message(message.topic, message.payload, received_ms=NOW + 1, directory=DIRECTORY)
    topic = parse_topic(message.topic)
    assert (reading.site, reading.kind, reading.device, reading.type) == (
        topic.site,
        topic.kind,
        topic.device,
        topic.type,
    )
    assert reading.fields == fields and reading.event == event
    assert reading.received_ms == NOW + 1 and not reading.clock_skewed
    if message.payload == b'{"online":false}':  # the broker-sent Will has no seq/ts: received time is its time
        assert reading.seq is None and reading.time_ms == NOW + 1
    else:
        assert reading.ts_ms == reading.time_ms == NOW and reading.seq is not None and reading.seq >= 1


def test_every_kind_has_a_decoder_and_an_example() -> None:
    assert set(DECODERS) == set(DeviceKind)
    assert {parse_topic(m.topic).kind for m, _, _ in examples()} == set(DeviceKind)


def test_life_safety_events_are_flagged() -> None:
    flagged = {
        (r.kind, r.event)
        for m, _, _ in examples()
        if (r := decode_message(m.topic, m.payload, received_ms=NOW)).is_life_safety
    }
    assert flagged == {
        (DeviceKind.WRISTBAND, "sos"),
        (DeviceKind.WRISTBAND, "fall"),
        (DeviceKind.SMOKE, "alarm"),
        (DeviceKind.GAS, "alarm"),
        (DeviceKind.CALL_BUTTON, "press"),
    }


def test_a_wrong_device_clock_is_flagged_and_the_received_time_used() -> None:
    late = decode_message("ec/v1/h1/door/d1/event", b'{"event":"open","seq":1,"ts":1000}', received_ms=NOW)
    assert late.clock_skewed and late.ts_ms == 1000 and late.time_ms == NOW
    slightly = decode_message(
        "ec/v1/h1/door/d1/event", b'{"event":"open","seq":1,"ts":%d}' % (NOW + 60_000), received_ms=NOW
    )
    assert not slightly.clock_skewed and slightly.time_ms == NOW + 60_000
    strict = decode_message(
        "ec/v1/h1/door/d1/event",
        b'{"event":"open","seq":1,"ts":%d}' % (NOW + 60_000),
        received_ms=NOW,
        max_skew_ms=1000,
    )
    assert strict.clock_skewed


def test_unknown_extra_fields_are_ignored() -> None:
    r = decode_message(
        "ec/v1/h1/mattress/m/telemetry",
        b'{"seq":1,"ts":1,"occupied":true,"hr":60,"future_field":{"x":[1,2]},"v2":"yes"}',
        received_ms=NOW,
    )
    assert r.fields == {"occupied": True, "hr": 60.0}


BAD: list[tuple[str, bytes, Reason]] = [
    ("ec/v2/h1/door/d1/event", b"{}", Reason.BAD_TOPIC),
    ("ec/v1/h1/door/d1", b"{}", Reason.BAD_TOPIC),
    ("ec/v1/h1/door/d1/event/x", b"{}", Reason.BAD_TOPIC),
    ("ec/v1/h 1/door/d1/event", b"{}", Reason.BAD_TOPIC),
    ("ec/v1/h1/door//event", b"{}", Reason.BAD_TOPIC),
    ("ec/v1/h1/fridge/d1/event", b"{}", Reason.BAD_TOPIC),
    ("ec/v1/h1/door/d1/gossip", b"{}", Reason.BAD_TOPIC),
    ("ec/v1/h1/door/d1/cmd", b"{}", Reason.UNSUPPORTED_TYPE),
    ("ec/v1/h1/door/d1/telemetry", b'{"seq":1,"ts":1}', Reason.UNSUPPORTED_TYPE),
    ("ec/v1/h1/smoke/s1/telemetry", b'{"seq":1,"ts":1}', Reason.UNSUPPORTED_TYPE),
    ("ec/v1/h1/call_button/b1/telemetry", b'{"seq":1,"ts":1}', Reason.UNSUPPORTED_TYPE),
    ("ec/v1/h1/gateway/g1/event", b'{"online":true}', Reason.UNSUPPORTED_TYPE),
    ("ec/v1/h1/door/d1/event", b"", Reason.BAD_JSON),
    ("ec/v1/h1/door/d1/event", b"\xff\xfe", Reason.BAD_JSON),
    ("ec/v1/h1/door/d1/event", b'{"event":"open","seq":1,"ts":1', Reason.BAD_JSON),
    ("ec/v1/h1/gateway/g1/status", b"online", Reason.BAD_JSON),
    ("ec/v1/h1/door/d1/event", b"[]", Reason.BAD_SCHEMA),
    ("ec/v1/h1/door/d1/event", b'{"event":"open","ts":1}', Reason.BAD_SCHEMA),
    ("ec/v1/h1/door/d1/event", b'{"event":"slam","seq":1,"ts":1}', Reason.BAD_SCHEMA),
    ("ec/v1/h1/door/d1/event", b'{"seq":1,"ts":1}', Reason.BAD_SCHEMA),
    ("ec/v1/h1/door/d1/event", b'{"event":"open","seq":1.5,"ts":1}', Reason.BAD_SCHEMA),
    ("ec/v1/h1/mattress/m/telemetry", b'{"seq":1,"ts":1,"occupied":"yes"}', Reason.BAD_SCHEMA),
    ("ec/v1/h1/mattress/m/telemetry", b'{"seq":1,"ts":1}', Reason.BAD_SCHEMA),
    ("ec/v1/h1/gateway/g1/status", b'{"online":1}', Reason.BAD_SCHEMA),
    ("ec/v1/h1/door/d1/event", b'{"event":"open","seq":-1,"ts":1}', Reason.OUT_OF_RANGE),
    ("ec/v1/h1/door/d1/event", b'{"event":"open","seq":1,"ts":-5}', Reason.OUT_OF_RANGE),
    ("ec/v1/h1/door/d1/event", b'{"event":"open","seq":9007199254740993,"ts":1}', Reason.OUT_OF_RANGE),
    ("ec/v1/h1/door/d1/event", b'{"event":"open","seq":1,"ts":9007199254740993}', Reason.OUT_OF_RANGE),
    ("ec/v1/h1/gateway/g1/status", b'{"online":true,"seq":1,"ts":18446744073709551616}', Reason.OUT_OF_RANGE),
    ("ec/v1/h1/mattress/m/telemetry", b'{"seq":1,"ts":1,"occupied":true,"hr":301}', Reason.OUT_OF_RANGE),
    ("ec/v1/h1/mattress/m/telemetry", b'{"seq":1,"ts":1,"occupied":true,"rr":-1}', Reason.OUT_OF_RANGE),
    ("ec/v1/h1/mattress/m/event", b'{"event":"apnea","seq":1,"ts":1,"duration_s":601}', Reason.OUT_OF_RANGE),
    ("ec/v1/h1/wristband/w/telemetry", b'{"seq":1,"ts":1,"worn":true,"spo2":101}', Reason.OUT_OF_RANGE),
    ("ec/v1/h1/wristband/w/event", b'{"event":"fall","seq":1,"ts":1,"confidence":1.5}', Reason.OUT_OF_RANGE),
    ("ec/v1/h1/smoke/s/status", b'{"seq":1,"ts":1,"temp":200}', Reason.OUT_OF_RANGE),
    ("ec/v1/h1/door/d/status", b'{"seq":1,"ts":1,"battery":101}', Reason.OUT_OF_RANGE),
    ("ec/v1/h1/motion/p/telemetry", b'{"seq":1,"ts":1,"count":1,"window_s":0}', Reason.OUT_OF_RANGE),
    ("ec/v1/h1/gateway/g1/status", b'{"online":true,"seq":-1}', Reason.OUT_OF_RANGE),
    ("ec/v1/h1/door/d1/event", b'{"event":"open","seq":1,"ts":1,"pad":"' + b"x" * 5000 + b'"}', Reason.OVERSIZE),
]


@pytest.mark.parametrize(("topic", "payload", "reason"), BAD, ids=[f"{r.value}-{i}" for i, (_, _, r) in enumerate(BAD)])
def test_each_error_class_has_its_reason(topic: str, payload: bytes, reason: Reason) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_message(topic, payload, received_ms=NOW)
    assert caught.value.reason is reason
    assert caught.value.topic and caught.value.detail


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("ec/v1/h2/door/door1/event", Reason.UNKNOWN_SITE),
        ("ec/v1/h2/gateway/gw-h2/status", Reason.UNKNOWN_SITE),
        ("ec/v1/h1/door/door9/event", Reason.UNKNOWN_DEVICE),
        ("ec/v1/h1/smoke/door1/event", Reason.KIND_MISMATCH),
        ("ec/v1/h1/gateway/any-gw/status", Reason.UNKNOWN_DEVICE),
        ("ec/v1/h1/gateway/door1/status", Reason.KIND_MISMATCH),
        ("ec/v1/h1/door/gw-h1/event", Reason.KIND_MISMATCH),
    ],
)
def test_directory_refuses_unknown_sites_devices_and_wrong_kinds(topic: str, reason: Reason) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_message(topic, b'{"event":"open","seq":1,"ts":1,"online":false}', received_ms=NOW, directory=DIRECTORY)
    assert caught.value.reason is reason


def test_gateway_status_needs_the_homes_own_gateway_id() -> None:
    r = decode_message("ec/v1/h1/gateway/gw-h1/status", b'{"online":true}', received_ms=NOW, directory=DIRECTORY)
    assert r.fields == {"online": True} and r.kind is DeviceKind.GATEWAY and r.type is MessageType.STATUS
