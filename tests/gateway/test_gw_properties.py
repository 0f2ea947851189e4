"""Property tests: whatever arrives, every decoder either returns a reading or raises the typed DecodeError."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.codecs import DECODERS
from gateway.contract import UPLINK_TYPES, decode_message, parse_topic
from gateway.errors import DecodeError
from gateway.models import DeviceKind, Reading

NOW = 1_750_000_000_000
TOPICS = [f"ec/v1/h1/{k.value}/d1/{t.value}" for k in DeviceKind for t in UPLINK_TYPES]

# Field names the schemas know, so generated objects often get past the envelope into type and range checks.
KNOWN = [
    "seq",
    "ts",
    "event",
    "occupied",
    "hr",
    "rr",
    "movement",
    "duration_s",
    "worn",
    "spo2",
    "steps",
    "skin_temp",
    "battery",
    "battery_v",
    "tamper",
    "rssi",
    "fw",
    "confidence",
    "level",
    "lel",
    "valve_closed",
    "mains",
    "code",
    "temp",
    "count",
    "window_s",
    "room",
    "online",
    "uptime_s",
]
EVENTS = [
    "in_bed",
    "out_of_bed",
    "apnea",
    "fall",
    "sos",
    "removed",
    "worn",
    "open",
    "close",
    "alarm",
    "test",
    "silence",
    "clear",
    "fault",
    "press",
    "cancel",
    "motion",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(EVENTS),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
objects = st.dictionaries(st.sampled_from(KNOWN) | st.text(max_size=8), json_values, max_size=10)


def check(topic: str, payload: bytes) -> Reading | None:
    try:
        reading = decode_message(topic, payload, received_ms=NOW)
    except DecodeError as exc:
        assert exc.topic == topic and exc.detail
        return None
    assert isinstance(reading, Reading)
    return reading


@pytest.mark.parametrize("topic", TOPICS)
@given(payload=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_decode_error(topic: str, payload: bytes) -> None:
    check(topic, payload)


@pytest.mark.parametrize("topic", TOPICS)
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(obj=objects | json_values)
def test_arbitrary_json_raises_only_decode_error(topic: str, obj: Any) -> None:
    reading = check(topic, json.dumps(obj).encode())
    if reading is not None:
        # Whatever passed is well-formed: typed seq/ts, fields only of the contract's scalar types.
        assert reading.seq is None or 0 <= reading.seq <= 2**53
        assert reading.ts_ms >= 0
        assert all(isinstance(v, bool | int | float | str) for v in reading.fields.values())


@given(
    obj=st.fixed_dictionaries({"seq": st.integers(), "ts": st.integers()}, optional={"event": st.sampled_from(EVENTS)}),
    extra=objects,
)
def test_envelopes_with_noise_decode_or_fail_typed(obj: dict[str, Any], extra: dict[str, Any]) -> None:
    payload = json.dumps({**extra, **obj}).encode()
    for topic in TOPICS:
        check(topic, payload)


@given(
    topic=st.text(max_size=80)
    | st.lists(st.sampled_from(["ec", "v1", "h1", "door", "d1", "event", "", "+", "#"]), max_size=8).map("/".join),
    payload=st.binary(max_size=50),
)
def test_arbitrary_topics_raise_only_decode_error(topic: str, payload: bytes) -> None:
    check(topic, payload)


@pytest.mark.parametrize("kind", list(DeviceKind))
@given(payload=st.binary(max_size=200))
def test_each_registered_decoder_directly(kind: DeviceKind, payload: bytes) -> None:
    for mtype in UPLINK_TYPES:
        topic = parse_topic(f"ec/v1/h1/{kind.value}/d1/{mtype.value}")
        with contextlib.suppress(DecodeError):
            DECODERS[kind](topic, payload, received_ms=NOW, max_skew_ms=1)
