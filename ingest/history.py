"""Stored readings turned back into :class:`~gateway.models.Reading` objects (detector restart recovery)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, Iterable, Sequence
from typing import Any, Final

from gateway.models import DeviceKind, FieldValue, MessageType, Reading
from ingest.influx import Series
from ingest.reader import InfluxReader, StoredPoint
from ingest.schema import EXTRA_FIELDS, TAG_KEYS

_CONVERT_ON_LOOP: Final = 2_000
"""Above this many points a query's answer is turned into readings in a worker thread."""


def reading_from_point(kind: DeviceKind, point: StoredPoint) -> Reading:
    """Rebuild the reading a stored point came from (inverse of :func:`ingest.schema.to_line`)."""
    fields = dict(point.fields)
    seq = fields.get("seq")
    received = fields.get("received_ms", point.time_ms)
    skewed = bool(fields.get("clock_skewed", False))
    device_ts = fields.get("device_ts_ms")
    values: dict[str, FieldValue] = {k: v for k, v in fields.items() if k not in EXTRA_FIELDS}
    return Reading(
        site=point.site,
        kind=kind,
        device=point.device,
        type=MessageType(point.type),
        seq=None if seq is None else int(seq),
        ts_ms=int(device_ts) if skewed and device_ts is not None else point.time_ms,
        received_ms=int(received),
        fields=values,
        event=point.event,
        clock_skewed=skewed,
    )


async def stored_readings(
    reader: InfluxReader, *, start_ms: int, end_ms: int | None = None, sites: Iterable[str] | None = None
) -> list[Reading]:
    """Every stored reading with event time in ``[start_ms, end_ms)``, in arrival order.

    With ``sites``, only those homes (one query per kind and home); otherwise every home (one query per kind).
    """
    wanted: list[str | None] = list(sites) if sites is not None else [None]
    out: list[Reading] = []
    for kind in DeviceKind:
        for site in wanted:
            points = await reader.points(kind, site=site, start_ms=start_ms, end_ms=end_ms)
            if len(points) > _CONVERT_ON_LOOP:
                # Tens of thousands of points take a few hundred ms to convert: off the event loop, so live
                # messages (a life-safety reading during a restart's recovery) are not held up behind them.
                out.extend(await asyncio.to_thread(_convert, kind, points))
            else:
                out.extend(reading_from_point(kind, p) for p in points)
    out.sort(key=lambda r: (r.received_ms, r.time_ms))
    return out


def _convert(kind: DeviceKind, points: list[StoredPoint]) -> list[Reading]:
    return [reading_from_point(kind, p) for p in points]


# ---------------------------------------------------------------------------------------------------- streaming
# Restart recovery at 10,000 homes (issue 13): one chunked query per device kind over the whole outage, read as
# the engine consumes it, instead of one query per kind and minute of event time. Each InfluxQL query pays a pass
# over every series of its measurement (20,000 at 10,000 homes), so 60 s windows multiplied that cost by the
# number of windows; a stream pays it once and holds one chunk per kind in memory.

CHUNK_POINTS: Final = 10_000
"""Points per chunk of a streamed answer (InfluxDB's ``chunk_size``): about 1 MB of JSON, decoded in a thread."""
_NOT_VALUES: Final = frozenset(("time", *TAG_KEYS, *EXTRA_FIELDS))


def _tag(row: list[Any], i: int | None, tags: dict[str, str], key: str) -> Any:
    return row[i] if i is not None else tags.get(key)


def readings_from_series(kind: DeviceKind, series: Sequence[Series]) -> list[Reading]:
    """Rebuild the readings of raw ``SELECT *`` rows; the same as :func:`reading_from_point` on each point.

    Works on the rows as the columns give them (no dictionary per row): a restart converts hundreds of thousands.
    """
    out: list[Reading] = []
    for s in series:
        col = {c: i for i, c in enumerate(s.columns)}
        ti = col["time"]
        site_i, device_i, type_i, event_i = (col.get(k) for k in TAG_KEYS)
        seq_i, received_i, skewed_i, device_ts_i = (col.get(k) for k in EXTRA_FIELDS)
        values = [(i, c) for c, i in col.items() if c not in _NOT_VALUES]
        tags = s.tags or {}

        for row in s.values:
            time_ms = int(row[ti])
            seq = row[seq_i] if seq_i is not None else None
            received = row[received_i] if received_i is not None else None
            skewed = bool(row[skewed_i]) if skewed_i is not None and row[skewed_i] is not None else False
            device_ts = row[device_ts_i] if device_ts_i is not None else None
            out.append(
                Reading(
                    site=str(_tag(row, site_i, tags, "site")),
                    kind=kind,
                    device=str(_tag(row, device_i, tags, "device")),
                    type=MessageType(str(_tag(row, type_i, tags, "type"))),
                    seq=None if seq is None else int(seq),
                    ts_ms=int(device_ts) if skewed and device_ts is not None else time_ms,
                    received_ms=time_ms if received is None else int(received),
                    fields={c: v for i, c in values if (v := row[i]) is not None},
                    event=_tag(row, event_i, tags, "event"),
                    clock_skewed=skewed,
                )
            )
    return out


async def stored_windows(
    reader: InfluxReader, *, start_ms: int, end_ms: int, window_ms: int, chunk_points: int = CHUNK_POINTS
) -> AsyncGenerator[tuple[int, list[Reading]], None]:
    """``(window_end_ms, readings)`` for consecutive windows of event time in ``[start_ms, end_ms)``.

    Each window holds every stored reading whose event time falls in it, in arrival order (as
    :func:`stored_readings` over that window); windows come oldest first, empty ones included. Memory is one
    window plus one chunk per device kind, whatever the range.

    Raises:
        IngestError: InfluxDB failed or refused a query (the caller may resume from the last window's end).
    """
    async with contextlib.AsyncExitStack() as stack:
        streams: dict[DeviceKind, AsyncGenerator[list[Series], None]] = {}
        for kind in DeviceKind:
            chunks = reader.point_chunks(kind, start_ms=start_ms, end_ms=end_ms, chunk_size=chunk_points)
            streams[kind] = await stack.enter_async_context(contextlib.aclosing(chunks))
        pending: dict[DeviceKind, deque[Reading]] = {kind: deque() for kind in DeviceKind}
        window_start = start_ms
        while window_start < end_ms:
            stop = min(window_start + window_ms, end_ms)
            window: list[Reading] = []
            for kind in DeviceKind:
                queue = pending[kind]
                # Rows come oldest first: read chunks until one reaches past this window, or the answer ends.
                while kind in streams and (not queue or queue[-1].time_ms < stop):
                    chunk = await anext(streams[kind], None)
                    if chunk is None:
                        del streams[kind]
                    elif len(chunk) == 1 and len(chunk[0].values) <= 200:
                        queue.extend(readings_from_series(kind, chunk))
                    else:
                        queue.extend(await asyncio.to_thread(readings_from_series, kind, chunk))
                while queue and queue[0].time_ms < stop:
                    window.append(queue.popleft())
            window.sort(key=lambda r: (r.received_ms, r.time_ms))
            yield stop, window
            window_start = stop
