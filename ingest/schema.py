"""How a :class:`~gateway.models.Reading` is stored: one measurement per device kind (see docs/storage.md).

* measurement: the device kind (``mattress``, ``wristband``, ``door``, ``smoke``, ``call_button``, ``motion``,
  ``gateway``);
* tags (all bounded): ``site``, ``device``, ``type`` (telemetry/event/status) and, for events, ``event``;
* fields: the reading's values as decoded, plus ``seq`` (integer), ``received_ms`` (integer, backend clock),
  ``clock_skewed`` (boolean) and, only when the device clock was off, ``device_ts_ms`` (its own timestamp);
* time: :attr:`Reading.time_ms` in nanoseconds plus ``seq mod 10^6`` (:func:`point_time_ns`), written with
  ``precision=ns``.

A redelivered reading (same device, same ``seq``, same device timestamp) maps to the same measurement,
tag set and timestamp, so InfluxDB overwrites the point instead of adding one: rewriting is idempotent. Two
*different* readings of one device in the same millisecond (a buffered upload after a clock reset, stamped with
the receive time) differ in ``seq`` and so in the sub-millisecond part: each keeps its own point (issue 13, R4).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from gateway.models import DeviceKind, MessageType, Reading
from ingest.lineprotocol import encode_fields, series_key

PRECISION: Final = "ns"
"""Timestamp precision of every point written: milliseconds (the contract's) plus a sub-millisecond sequence."""

SUB_MS: Final = 1_000_000
"""Nanoseconds per millisecond: the room below each millisecond that the device's ``seq`` fills."""

TAG_KEYS: Final = ("site", "device", "type", "event")
"""The only tags: each has a bounded set of values (provisioned ids, enums)."""

EXTRA_FIELDS: Final = ("seq", "received_ms", "clock_skewed", "device_ts_ms")
"""Fields added to every reading's own values."""

MEASUREMENTS: Final[dict[DeviceKind, str]] = {kind: kind.value for kind in DeviceKind}
"""Measurement name of each device kind."""

_SeriesId = tuple[DeviceKind, str, str, MessageType, str | None]
_SERIES_CACHE: dict[_SeriesId, str] = {}
_SERIES_CACHE_MAX: Final = 200_000


def measurement_of(kind: DeviceKind) -> str:
    """Measurement holding the readings of one device kind."""
    return MEASUREMENTS[kind]


def _series(reading: Reading) -> str:
    ident = (reading.kind, reading.site, reading.device, reading.type, reading.event)
    prefix = _SERIES_CACHE.get(ident)
    if prefix is None:
        prefix = series_key(
            MEASUREMENTS[reading.kind],
            {"site": reading.site, "device": reading.device, "type": reading.type.value, "event": reading.event},
        )
        if len(_SERIES_CACHE) >= _SERIES_CACHE_MAX:
            _SERIES_CACHE.clear()
        _SERIES_CACHE[ident] = prefix
    return prefix


def point_fields(reading: Reading) -> dict[str, bool | int | float | str]:
    """All fields stored for a reading: its values plus the bookkeeping fields."""
    fields: dict[str, bool | int | float | str] = dict(reading.fields)
    if reading.seq is not None:
        fields["seq"] = reading.seq
    fields["received_ms"] = reading.received_ms
    fields["clock_skewed"] = reading.clock_skewed
    if reading.clock_skewed:
        fields["device_ts_ms"] = reading.ts_ms
    return fields


def point_time_ns(reading: Reading) -> int:
    """The point's timestamp: the reading's millisecond in nanoseconds, plus its ``seq`` below the millisecond.

    Querying with ``epoch=ms`` gives back :attr:`Reading.time_ms`; a redelivered copy gets the same time.

    >>> from gateway.models import DeviceKind, MessageType, Reading
    >>> point_time_ns(Reading("h1", DeviceKind.DOOR, "d1", MessageType.EVENT, 1_000_042, 5, 5, {}))
    5000042
    """
    seq = reading.seq
    return reading.time_ms * SUB_MS + (seq % SUB_MS if seq is not None else 0)


def to_line(reading: Reading) -> str:
    """Encode one reading as a line of line protocol (nanosecond timestamp, :func:`point_time_ns`)."""
    return f"{_series(reading)} {encode_fields(point_fields(reading))} {point_time_ns(reading)}"


def to_lines(readings: Iterable[Reading]) -> list[str]:
    """Encode readings, one line each, in order."""
    series = _series
    fields_of = point_fields
    encode = encode_fields
    sub_ms = SUB_MS
    return [
        f"{series(r)} {encode(fields_of(r))} {r.time_ms * sub_ms + (r.seq % sub_ms if r.seq is not None else 0)}"
        for r in readings
    ]


def topic_of_line(line: str) -> str:
    """Best-effort contract topic of a line this module wrote (for dead-letter entries of rejected points)."""
    head = line.split(" ", 1)[0]
    measurement, _, rest = head.partition(",")
    tags = dict(part.partition("=")[::2] for part in rest.split(",") if "=" in part)
    site, device, mtype = tags.get("site"), tags.get("device"), tags.get("type")
    if site and device and mtype:
        return f"ec/v1/{site}/{measurement}/{device}/{mtype}"
    return f"influx/{measurement}"


# -- retention and downsampling (InfluxDB 1.x continuous queries) ----------------------------------------

RAW_RETENTION: Final = "raw"
"""Retention policy receiving every reading (the database default)."""

DOWNSAMPLED_RETENTION: Final = "downsampled"
"""Retention policy holding the hourly aggregates written by the continuous queries."""

DOWNSAMPLED_FIELDS: Final[dict[DeviceKind, tuple[str, ...]]] = {
    DeviceKind.MATTRESS: ("hr", "rr", "movement"),
    DeviceKind.WRISTBAND: ("hr", "spo2", "skin_temp", "steps"),
    DeviceKind.MOTION: ("count",),
}
"""Numeric telemetry fields aggregated per hour (mean, min, max, count)."""


def quote_ident(name: str) -> str:
    r"""Quote an InfluxQL identifier (database, retention policy, measurement, field).

    >>> quote_ident('a"b')
    '"a\\"b"'
    """
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def continuous_queries(*, db: str, interval: str = "1h") -> list[tuple[str, str]]:
    """``(name, CREATE CONTINUOUS QUERY ...)`` statements that downsample raw readings into hourly points.

    Telemetry gets mean/min/max/count per field; events are counted per event name, so the console can
    show years of "door openings per hour" after the raw events have expired.
    """
    out: list[tuple[str, str]] = []
    db_q = quote_ident(db)
    target = f"{db_q}.{quote_ident(DOWNSAMPLED_RETENTION)}"
    source = f"{db_q}.{quote_ident(RAW_RETENTION)}"
    for kind, fields in DOWNSAMPLED_FIELDS.items():
        m = measurement_of(kind)
        selects = ", ".join(
            f"{agg}({quote_ident(f)}) AS {quote_ident(f'{f}_{agg}')}"
            for f in fields
            for agg in ("mean", "min", "max", "count")
        )
        name = f"cq_{m}_{interval}"
        out.append(
            (
                name,
                f"CREATE CONTINUOUS QUERY {quote_ident(name)} ON {db_q} BEGIN SELECT {selects} "
                f"INTO {target}.{quote_ident(m + '_' + interval)} FROM {source}.{quote_ident(m)} "
                f'WHERE "type" = \'telemetry\' GROUP BY time({interval}), "site", "device" END',
            )
        )
    for kind in DeviceKind:
        if kind is DeviceKind.GATEWAY:
            continue  # the home gateway sends status only
        m = measurement_of(kind)
        name = f"cq_{m}_events_{interval}"
        out.append(
            (
                name,
                f"CREATE CONTINUOUS QUERY {quote_ident(name)} ON {db_q} BEGIN SELECT count({quote_ident('seq')}) "
                f"AS {quote_ident('events')} INTO {target}.{quote_ident(f'{m}_events_{interval}')} "
                f"FROM {source}.{quote_ident(m)} WHERE \"type\" = 'event' "
                f'GROUP BY time({interval}), "site", "device", "event" END',
            )
        )
    return out
