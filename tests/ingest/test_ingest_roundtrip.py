"""Nasty strings written through the encoder come back unchanged from a real influxd; reader queries."""

from __future__ import annotations

import pytest

from gateway.models import DeviceKind, MessageType, Reading
from ingest.errors import PointsRejected, QueryError
from ingest.influx import InfluxClient
from ingest.lineprotocol import encode_point, join_lines
from ingest.reader import InfluxReader
from ingest.schema import quote_ident, to_lines

pytestmark = pytest.mark.integration

NASTY_IDENTIFIERS = [
    "plain",
    "with space",
    "comma,here",
    "equals=sign",
    'double"quote',
    "single'quote",
    "#hash",
    "a=b,c d",
    "  ",
    "ünïcödé",
    "中文 字符",
    "emoji 🧓🏻",
    "\u2028sep\ufeff",
    "=,",
]
NASTY_STRINGS = [
    *NASTY_IDENTIFIERS,
    "\x00nul\x01\x1f\x7f",
    "back\\slash",
    "trailing\\",
    "\\",
    '\\"',
    "new\nline",
    "crlf\r\n",
    "tab\there",
    "",
    "x" * 10_000,
    "all: ,= \"\\\n\t'#ü🧓",
]


async def test_nasty_strings_round_trip(influx: InfluxClient) -> None:
    lines = []
    for i, tag in enumerate(NASTY_IDENTIFIERS):
        fields: dict[str, str | int] = {"n": i, tag: i}
        for j, text in enumerate(NASTY_STRINGS):
            fields[f"s{j}"] = text
        lines.append(encode_point("m" + tag, {tag: tag, "t": tag}, fields, 1_000 + i))
    await influx.write(join_lines(lines), precision="ms")
    for i, tag in enumerate(NASTY_IDENTIFIERS):
        results = await influx.query(f'SELECT * FROM {quote_ident("m" + tag)} WHERE "t" = $t', params={"t": tag})
        (series,) = results[0].series
        assert series.name == "m" + tag
        (row,) = series.rows()
        assert row["time"] == 1_000 + i
        assert row["n"] == i
        assert tag in row  # the tag and the field of the same name both come back (as name, name_1)
        for j, text in enumerate(NASTY_STRINGS):
            assert row[f"s{j}"] == text, (tag, j)
    keys = await influx.query("SHOW MEASUREMENTS")
    assert sorted(v[0] for v in keys[0].series[0].values) == sorted("m" + t for t in NASTY_IDENTIFIERS)
    tag_keys = await influx.query(f"SHOW TAG KEYS FROM {quote_ident('m' + NASTY_IDENTIFIERS[3])}")
    assert sorted(v[0] for v in tag_keys[0].series[0].values) == sorted([NASTY_IDENTIFIERS[3], "t"])


async def test_bound_parameters_are_not_pasted(influx: InfluxClient) -> None:
    await influx.write(b"m,t=a f=1 1000\nm,t=b f=2 2000", precision="ms")
    evil = "a' OR t = 'b"
    results = await influx.query('SELECT * FROM "m" WHERE "t" = $t', params={"t": evil})
    assert results[0].series == []
    results = await influx.query('SELECT f FROM "m" WHERE time >= $start', params={"start": 1_500 * 1_000_000})
    assert results[0].series[0].values == [[2000, 2]]
    with pytest.raises(QueryError):
        await influx.query("SELEKT nonsense")


async def test_partial_write_is_reported(influx: InfluxClient) -> None:
    await influx.write(b"m f=1 1000", precision="ms")
    with pytest.raises(PointsRejected) as info:
        await influx.write(b"m f=2 2000\nm f=3i 3000\nm f=4 4000", precision="ms")
    assert "conflict" in info.value.message
    results = await influx.query('SELECT f FROM "m"')
    assert [r[0] for r in results[0].series[0].values] == [1000, 2000, 4000]


def _reading(device: str, seq: int, ts: int, **fields: float | int | bool) -> Reading:
    return Reading(
        site="h1",
        kind=DeviceKind.MATTRESS,
        device=device,
        type=MessageType.TELEMETRY,
        seq=seq,
        ts_ms=ts,
        received_ms=ts + 50,
        fields=dict(fields),
    )


async def test_reader_queries(influx: InfluxClient) -> None:
    t0 = 1_700_000_100_000  # a multiple of 5 min: GROUP BY time buckets start on the epoch grid
    readings = [_reading("mat1", i, t0 + i * 60_000, occupied=True, hr=60.0 + i, rr=14.5) for i in range(10)]
    readings += [_reading("mat2", i, t0 + i * 60_000, occupied=False) for i in range(3)]
    door = Reading(
        site="h1",
        kind=DeviceKind.DOOR,
        device="d1",
        type=MessageType.EVENT,
        seq=1,
        ts_ms=t0,
        received_ms=t0,
        fields={},
        event="open",
    )
    await influx.write(join_lines(to_lines([*readings, door])))
    reader = InfluxReader(client=influx)
    hr = await reader.values(DeviceKind.MATTRESS, "hr", site="h1", device="mat1", start_ms=t0, end_ms=t0 + 5 * 60_000)
    assert hr == [(t0 + i * 60_000, 60.0 + i) for i in range(5)]
    assert await reader.count(DeviceKind.MATTRESS, site="h1") == 13
    assert await reader.count(DeviceKind.MATTRESS, site="h1", device="mat2") == 3
    assert await reader.count(DeviceKind.MATTRESS, site="nobody") == 0
    pts = await reader.points(DeviceKind.DOOR, site="h1", event="open")
    assert [(p.device, p.event, p.fields["seq"]) for p in pts] == [("d1", "open", 1)]
    buckets = await reader.aggregate(
        DeviceKind.MATTRESS, "hr", function="mean", every="5m", site="h1", start_ms=t0, end_ms=t0 + 10 * 60_000
    )
    assert [b.value for b in buckets] == [62.0, 67.0]
    last = await reader.last_by_device(DeviceKind.MATTRESS, site="h1")
    assert last["mat1"].fields["seq"] == 9 and last["mat2"].fields["seq"] == 2
    assert last["mat1"].fields["hr"] == 69.0
    assert await reader.devices(DeviceKind.MATTRESS, site="h1") == ["mat1", "mat2"]
    with pytest.raises(ValueError):
        await reader.values(DeviceKind.MATTRESS, 'hr" FROM x', site="h1")


async def test_ensure_storage_is_idempotent(influx: InfluxClient) -> None:
    await influx.ensure_storage(raw_duration="30d")
    again = await influx.ensure_storage(raw_duration="60d")
    assert not any("CONTINUOUS" in s for s in again)
    policies = await influx.retention_policies()
    assert policies["raw"] == ("1440h0m0s", True)
    assert "downsampled" in policies
    names = await influx.continuous_query_names()
    assert "cq_mattress_1h" in names and "cq_door_events_1h" in names
