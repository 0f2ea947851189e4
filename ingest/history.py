"""Stored readings turned back into :class:`~gateway.models.Reading` objects (detector restart recovery)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Final

from gateway.models import DeviceKind, FieldValue, MessageType, Reading
from ingest.reader import InfluxReader, StoredPoint
from ingest.schema import EXTRA_FIELDS

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
