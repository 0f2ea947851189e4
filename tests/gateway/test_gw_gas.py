"""Gas detector codec (燃气报警器): every event, the heartbeat, ranges, and arbitrary valid alarms."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.contract import decode_message
from gateway.errors import DecodeError, Reason
from gateway.models import DeviceKind, MessageType

NOW = 1_767_261_000_000
EVENT = "ec/v1/h1/gas/gas1/event"


@pytest.mark.parametrize(
    ("payload", "event", "fields"),
    [
        ({"event": "alarm", "lel": 18, "valve_closed": True}, "alarm", {"lel": 18, "valve_closed": True}),
        ({"event": "alarm"}, "alarm", {}),
        ({"event": "test"}, "test", {}),
        ({"event": "silence"}, "silence", {}),
        ({"event": "clear"}, "clear", {}),
        ({"event": "fault", "code": "F02"}, "fault", {"code": "F02"}),
    ],
)
def test_every_gas_event_decodes(payload: dict[str, object], event: str, fields: dict[str, object]) -> None:
    r = decode_message(EVENT, json.dumps({**payload, "seq": 7, "ts": NOW}).encode(), received_ms=NOW)
    assert (r.kind, r.type, r.event, r.fields, r.seq) == (DeviceKind.GAS, MessageType.EVENT, event, fields, 7)
    assert r.is_life_safety is (event == "alarm")


def test_gas_heartbeat() -> None:
    body = b'{"seq": 9, "ts": 1767261000000, "mains": true, "tamper": false, "rssi": -64}'
    r = decode_message("ec/v1/h1/gas/gas1/status", body, received_ms=NOW)
    assert r.fields == {"mains": True, "tamper": False, "rssi": -64} and r.event is None


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (EVENT, b'{"event":"alarm","seq":1,"ts":1,"lel":101}', Reason.OUT_OF_RANGE),
        (EVENT, b'{"event":"alarm","seq":1,"ts":1,"lel":"high"}', Reason.BAD_SCHEMA),
        (EVENT, b'{"event":"leak","seq":1,"ts":1}', Reason.BAD_SCHEMA),
        (EVENT, b'{"event":"alarm","seq":1}', Reason.BAD_SCHEMA),
        (EVENT, b'{"event":"alarm",', Reason.BAD_JSON),
        ("ec/v1/h1/gas/gas1/telemetry", b'{"seq":1,"ts":1}', Reason.UNSUPPORTED_TYPE),
        ("ec/v1/h1/gas/gas1/status", b'{"seq":1,"ts":1,"battery":120}', Reason.OUT_OF_RANGE),
    ],
)
def test_bad_gas_payloads_get_a_reason(topic: str, payload: bytes, reason: Reason) -> None:
    with pytest.raises(DecodeError) as info:
        decode_message(topic, payload, received_ms=NOW)
    assert info.value.reason is reason


@given(
    seq=st.integers(0, 2**53),
    lel=st.none() | st.integers(0, 100),
    valve=st.none() | st.booleans(),
    skew=st.integers(-60_000, 60_000),
)
def test_any_valid_alarm_round_trips(seq: int, lel: int | None, valve: bool | None, skew: int) -> None:
    body = {"event": "alarm", "seq": seq, "ts": NOW + skew, "lel": lel, "valve_closed": valve}
    r = decode_message(EVENT, json.dumps(body).encode(), received_ms=NOW)
    assert r.seq == seq and r.ts_ms == NOW + skew and r.is_life_safety and not r.clock_skewed
    expected = {k: v for k, v in (("lel", lel), ("valve_closed", valve)) if v is not None}
    assert r.fields == expected
