"""Line-protocol encoder: byte-for-byte equal to influxdb_client's Point serialisation (the oracle)."""

from __future__ import annotations

import math
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client import Point, WritePrecision

from gateway.models import DeviceKind, MessageType, Reading
from ingest.errors import LineProtocolError
from ingest.lineprotocol import INT64_MAX, INT64_MIN, encode_fields, encode_point, escape_key, format_value
from ingest.schema import to_line, to_lines, topic_of_line

UNREPRESENTABLE = "\\\n\r\t"
ident_chars = st.characters(exclude_characters=UNREPRESENTABLE, exclude_categories=("Cs", "Cc"))
identifiers = st.text(ident_chars, min_size=1, max_size=12)
measurements = identifiers.filter(lambda s: not s.startswith("#"))
tag_values = st.one_of(st.none(), st.text(ident_chars, max_size=12))
field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=INT64_MIN, max_value=INT64_MAX),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
times = st.one_of(st.none(), st.integers(min_value=-(2**62), max_value=2**62))


def oracle(measurement: str, tags: dict[str, str | None], fields: dict[str, object], time: int | None) -> str:
    point = Point(measurement)
    for k, v in tags.items():
        point.tag(k, v)
    for k, v in fields.items():
        point.field(k, v)
    if time is not None:
        point.time(time, WritePrecision.MS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(point.to_line_protocol())


@settings(max_examples=600, deadline=None)
@given(
    measurement=measurements,
    tags=st.dictionaries(identifiers, tag_values, max_size=5),
    fields=st.dictionaries(identifiers, field_values, min_size=1, max_size=6),
    time=times,
)
def test_matches_influxdb_client_byte_for_byte(
    measurement: str, tags: dict[str, str | None], fields: dict[str, object], time: int | None
) -> None:
    expected = oracle(measurement, tags, fields, time)
    if expected == "":  # every field absent or non-finite: the oracle writes nothing, we refuse
        with pytest.raises(LineProtocolError):
            encode_point(measurement, tags, fields, time)  # type: ignore[arg-type]
        return
    assert encode_point(measurement, tags, fields, time).encode() == expected.encode()  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=40))
def test_string_fields_carry_anything(value: str) -> None:
    assert encode_fields({"s": value}) == oracle("m", {}, {"s": value}, None).split(" ", 1)[1]


@pytest.mark.parametrize("bad", ["a\\b", "line\nbreak", "cr\r", "tab\t", "\\", "nul\x00", "del\x7f"])
@pytest.mark.parametrize("part", ["measurement", "tag key", "tag value", "field key"])
def test_refuses_what_influxdb_cannot_store_unchanged(bad: str, part: str) -> None:
    args: dict[str, object] = {"measurement": "m", "tags": {"t": "v"}, "fields": {"f": 1}}
    if part == "measurement":
        args["measurement"] = bad
    elif part == "tag key":
        args["tags"] = {bad: "v"}
    elif part == "tag value":
        args["tags"] = {"t": bad}
    else:
        args["fields"] = {bad: 1}
    with pytest.raises(LineProtocolError) as info:
        encode_point(**args)  # type: ignore[arg-type]
    assert info.value.value == bad


def test_other_refusals() -> None:
    with pytest.raises(LineProtocolError):
        encode_point("#comment", {}, {"f": 1})
    with pytest.raises(LineProtocolError):
        encode_point("", {}, {"f": 1})
    with pytest.raises(LineProtocolError):
        format_value(2**63)
    with pytest.raises(LineProtocolError):
        format_value("\ud800")
    with pytest.raises(LineProtocolError):
        encode_fields({"f": math.nan})


def test_value_types() -> None:
    assert format_value(True) == "true"
    assert format_value(False) == "false"
    assert format_value(0) == "0i"
    assert format_value(-(2**63)) == "-9223372036854775808i"
    assert format_value(72.0) == "72"
    assert format_value(1e16) == "1e+16"
    assert format_value(-0.5) == "-0.5"
    assert format_value('a "b" \\ c\nd') == '"a \\"b\\" \\\\ c\nd"'
    assert escape_key("ä ö=ü,") == "ä\\ ö\\=ü\\,"


def _reading(**kw: object) -> Reading:
    base: dict[str, object] = dict(
        site="h1",
        kind=DeviceKind.MATTRESS,
        device="mat1",
        type=MessageType.TELEMETRY,
        seq=42,
        ts_ms=1_700_000_000_123,
        received_ms=1_700_000_000_200,
        fields={"occupied": True, "hr": 61.5, "rr": 14.0, "movement": 3},
    )
    base.update(kw)
    return Reading(**base)  # type: ignore[arg-type]


def test_reading_to_point() -> None:
    r = _reading()
    expected = oracle(
        "mattress",
        {"site": "h1", "device": "mat1", "type": "telemetry"},
        {**r.fields, "seq": 42, "received_ms": r.received_ms, "clock_skewed": False},
        r.ts_ms * 1_000_000 + 42,  # nanoseconds: the millisecond, then the seq below it
    )
    assert to_line(r) == expected
    assert to_lines([r, r]) == [expected, expected]
    assert topic_of_line(expected) == "ec/v1/h1/mattress/mat1/telemetry"


def test_event_tag_and_skewed_clock() -> None:
    r = _reading(kind=DeviceKind.DOOR, device="d1", type=MessageType.EVENT, event="open", fields={}, clock_skewed=True)
    line = to_line(r)
    assert line.startswith("door,device=d1,event=open,site=h1,type=event ")
    assert "device_ts_ms=1700000000123i" in line
    assert line.endswith(f" {r.received_ms * 1_000_000 + 42}")


def test_redelivery_maps_to_same_point() -> None:
    first = _reading()
    again = _reading(received_ms=first.received_ms + 5000)
    key = lambda line: (line.split(" ")[0], line.rsplit(" ", 1)[1])  # noqa: E731
    assert key(to_line(first)) == key(to_line(again))
