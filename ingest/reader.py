"""Small read API over InfluxQL ``/query`` for charts, baselines and restart recovery.

Every value from outside (site, device, event, time bounds) is a bound parameter (``$name`` in the
statement, values in the ``params`` JSON object, supported since InfluxDB 1.x); identifiers (measurement,
field names) cannot be bound, so they come only from the schema's enums or are checked against a strict
pattern and quoted.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

import msgspec

from gateway.models import DeviceKind, MessageType
from ingest.influx import InfluxClient, Series
from ingest.schema import TAG_KEYS, measurement_of, quote_ident

FIELD_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
"""Field names the reader accepts (every contract field matches)."""

AGGREGATES: Final = frozenset({"mean", "median", "min", "max", "count", "sum", "first", "last", "stddev", "spread"})
"""InfluxQL aggregate functions :meth:`InfluxReader.aggregate` may use."""

DURATION: Final = re.compile(r"[1-9][0-9]{0,5}(ms|s|m|h|d|w)")
"""An InfluxQL duration literal such as ``5m`` or ``1h``."""

ParamValue = str | int | float | bool


class StoredPoint(msgspec.Struct, frozen=True):
    """One stored reading as read back: time, its tags and its fields (the fields absent from it omitted)."""

    time_ms: int
    site: str
    device: str
    type: str
    event: str | None
    fields: dict[str, Any]


class Bucket(msgspec.Struct, frozen=True):
    """One time bucket of an aggregate: start of the bucket and the aggregated value (None if empty)."""

    time_ms: int
    value: float | None


def _field(name: str) -> str:
    if not FIELD_NAME.fullmatch(name):
        raise ValueError(f"not a field name: {name!r}")
    return quote_ident(name)


def _ns(ms: int) -> int:
    return int(ms) * 1_000_000


class InfluxReader:
    """Queries on the schema of :mod:`ingest.schema` (one measurement per device kind)."""

    def __init__(self, *, client: InfluxClient) -> None:
        self.client = client

    async def query(self, statement: str, params: Mapping[str, ParamValue] | None = None) -> list[Series]:
        """Run one InfluxQL statement with bound parameters; return its series (empty list for no data)."""
        results = await self.client.query(statement, params=params)
        return results[0].series if results else []

    @staticmethod
    def _where(
        *,
        site: str | None,
        device: str | None,
        mtype: MessageType | None,
        event: str | None,
        start_ms: int | None,
        end_ms: int | None,
    ) -> tuple[str, dict[str, ParamValue]]:
        clauses: list[str] = []
        params: dict[str, ParamValue] = {}
        for key, value in (("site", site), ("device", device), ("type", mtype), ("event", event)):
            if value is not None:
                clauses.append(f"{quote_ident(key)} = ${key}")
                params[key] = str(value)
        if start_ms is not None:
            clauses.append("time >= $start")
            params["start"] = _ns(start_ms)
        if end_ms is not None:
            clauses.append("time < $end")
            params["end"] = _ns(end_ms)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    async def points(
        self,
        kind: DeviceKind,
        *,
        site: str | None = None,
        device: str | None = None,
        mtype: MessageType | None = None,
        event: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[StoredPoint]:
        """Stored readings of one kind, filtered by tags and a half-open time range ``[start, end)``."""
        where, params = self._where(
            site=site, device=device, mtype=mtype, event=event, start_ms=start_ms, end_ms=end_ms
        )
        statement = f"SELECT * FROM {quote_ident(measurement_of(kind))}{where}"
        if newest_first:
            statement += " ORDER BY time DESC"
        if limit is not None:
            statement += " LIMIT $limit"
            params["limit"] = int(limit)
        out: list[StoredPoint] = []
        for series in await self.query(statement, params):
            for row in series.rows():
                tags = {k: row.pop(k, None) for k in TAG_KEYS}
                time_ms = int(row.pop("time"))
                out.append(
                    StoredPoint(
                        time_ms=time_ms,
                        site=str(tags["site"]),
                        device=str(tags["device"]),
                        type=str(tags["type"]),
                        event=tags["event"],
                        fields={k: v for k, v in row.items() if v is not None},
                    )
                )
        return out

    def point_chunks(
        self, kind: DeviceKind, *, start_ms: int, end_ms: int, chunk_size: int = 10_000
    ) -> AsyncGenerator[list[Series], None]:
        """Every stored reading of one kind in ``[start, end)``, oldest first, streamed ``chunk_size`` at a time.

        One query whatever the range (its cost is one pass over the kind's series, not one per window); rows
        follow the series' ``columns`` (``time`` first, then tags and fields by name).
        """
        where, params = self._where(site=None, device=None, mtype=None, event=None, start_ms=start_ms, end_ms=end_ms)
        statement = f"SELECT * FROM {quote_ident(measurement_of(kind))}{where}"
        return self.client.query_chunks(statement, params=params, chunk_size=chunk_size)

    async def values(
        self,
        kind: DeviceKind,
        field: str,
        *,
        site: str,
        device: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        mtype: MessageType | None = MessageType.TELEMETRY,
    ) -> list[tuple[int, Any]]:
        """``(time_ms, value)`` of one field, oldest first (e.g. a resident's heart rate over 24 h)."""
        where, params = self._where(site=site, device=device, mtype=mtype, event=None, start_ms=start_ms, end_ms=end_ms)
        statement = f"SELECT {_field(field)} FROM {quote_ident(measurement_of(kind))}{where}"
        return [(int(t), v) for s in await self.query(statement, params) for t, v in s.values if v is not None]

    async def aggregate(
        self,
        kind: DeviceKind,
        field: str,
        *,
        function: str,
        every: str,
        site: str,
        start_ms: int,
        end_ms: int,
        device: str | None = None,
        mtype: MessageType | None = MessageType.TELEMETRY,
    ) -> list[Bucket]:
        """One aggregate per ``every`` bucket in ``[start, end)`` (charts, baselines): ``mean`` of ``hr`` per 1h."""
        if function not in AGGREGATES:
            raise ValueError(f"unknown aggregate {function!r}; use one of {sorted(AGGREGATES)}")
        if not DURATION.fullmatch(every):
            raise ValueError(f"not an InfluxQL duration: {every!r}")
        where, params = self._where(site=site, device=device, mtype=mtype, event=None, start_ms=start_ms, end_ms=end_ms)
        statement = (
            f"SELECT {function}({_field(field)}) FROM {quote_ident(measurement_of(kind))}{where} GROUP BY time({every})"
        )
        return [
            Bucket(time_ms=int(t), value=None if v is None else float(v))
            for s in await self.query(statement, params)
            for t, v in s.values
        ]

    async def count(
        self,
        kind: DeviceKind,
        *,
        field: str = "received_ms",
        site: str | None = None,
        device: str | None = None,
        mtype: MessageType | None = None,
        event: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> int:
        """Number of stored readings (points with ``field``; every reading has ``received_ms``)."""
        where, params = self._where(
            site=site, device=device, mtype=mtype, event=event, start_ms=start_ms, end_ms=end_ms
        )
        statement = f"SELECT count({_field(field)}) FROM {quote_ident(measurement_of(kind))}{where}"
        series = await self.query(statement, params)
        return int(series[0].values[0][1]) if series and series[0].values else 0

    async def last_by_device(
        self, kind: DeviceKind, *, site: str, mtype: MessageType | None = None
    ) -> dict[str, StoredPoint]:
        """Newest stored reading of each device of a home (restart recovery: last seen, last seq, last state)."""
        where, params = self._where(site=site, device=None, mtype=mtype, event=None, start_ms=None, end_ms=None)
        statement = (
            f'SELECT * FROM {quote_ident(measurement_of(kind))}{where} GROUP BY "device" ORDER BY time DESC LIMIT 1'
        )
        out: dict[str, StoredPoint] = {}
        for series in await self.query(statement, params):
            device = (series.tags or {}).get("device", "")
            for row in series.rows()[:1]:
                time_ms = int(row.pop("time"))
                tags = {k: row.pop(k, None) for k in TAG_KEYS}
                out[device] = StoredPoint(
                    time_ms=time_ms,
                    site=str(tags["site"] or site),
                    device=device,
                    type=str(tags["type"]),
                    event=tags["event"],
                    fields={k: v for k, v in row.items() if v is not None},
                )
        return out

    async def devices(self, kind: DeviceKind, *, site: str) -> list[str]:
        """Device ids of a home that have readings of this kind."""
        statement = f'SHOW TAG VALUES FROM {quote_ident(measurement_of(kind))} WITH KEY = "device" WHERE "site" = $site'
        return sorted(str(v[1]) for s in await self.query(statement, {"site": site}) for v in s.values)

    async def raw(self, statement: str, params: Mapping[str, ParamValue] | None = None) -> Sequence[Series]:
        """Escape hatch for dashboards: any read-only statement, with bound parameters."""
        return await self.query(statement, params)


# ---------------------------------------------------------------------------------------------------- last seen
# The console's device list (dashboards/device_report.py) judges these with the offline detector's rule.

LOOKBACK_MS: Final = 7 * 86_400_000
"""How far back the last-seen query looks; older silence is reported as *unseen* (bounds the query's cost)."""
SITES_PER_QUERY: Final = 500
"""Sites per statement: one statement for any ordinary scope, a few for a whole city."""


@runtime_checkable
class LastSeenReader(Protocol):
    """The part of :class:`ingest.reader.InfluxReader` the last-seen query needs."""

    async def raw(self, statement: str, params: Mapping[str, ParamValue] | None = None) -> Sequence[Series]:
        """Run one read-only InfluxQL statement with bound parameters."""
        ...


@dataclass(frozen=True, slots=True)
class Seen:
    """The newest receive time and battery level of one device within the look-back window."""

    kind: str
    last_seen_ms: int
    battery_pct: int | None


def last_seen_statement(n_sites: int) -> str:
    """The InfluxQL of :func:`last_seen` for ``n_sites`` sites (values bound as ``$start``, ``$end``, ``$s0``…).

    Every measurement in one statement, grouped by site and device: the newest ``received_ms`` (the backend's
    receive clock, so a device with a wrong clock is still judged fairly) and the newest battery level.

    >>> last_seen_statement(2).split(" WHERE ")[1]
    'time >= $start AND time < $end AND ("site" = $s0 OR "site" = $s1) GROUP BY "site", "device"'
    """
    measurements = ",".join(quote_ident(measurement_of(k)) for k in DeviceKind)
    sites = " OR ".join(f'"site" = $s{i}' for i in range(n_sites))
    return (
        f'SELECT max("received_ms") AS "seen", last("battery") AS "battery" FROM {measurements} '
        f'WHERE time >= $start AND time < $end AND ({sites}) GROUP BY "site", "device"'
    )


async def last_seen(
    reader: LastSeenReader, sites: Iterable[str], *, now_ms: int, lookback_ms: int = LOOKBACK_MS
) -> dict[tuple[str, str], Seen]:
    """``(site, device) → Seen`` for every device of ``sites`` heard within ``lookback_ms`` before ``now_ms``.

    Raises:
        IngestError: InfluxDB is unreachable or refused the statement.
    """
    ordered = sorted(set(sites))
    chunks = [ordered[i : i + SITES_PER_QUERY] for i in range(0, len(ordered), SITES_PER_QUERY)]

    async def run(chunk: list[str]) -> Sequence[Series]:
        params: dict[str, ParamValue] = {"start": (now_ms - lookback_ms) * 1_000_000, "end": (now_ms + 1) * 1_000_000}
        params.update({f"s{i}": site for i, site in enumerate(chunk)})
        return await reader.raw(last_seen_statement(len(chunk)), params)

    out: dict[tuple[str, str], Seen] = {}
    for result in await asyncio.gather(*(run(c) for c in chunks)):
        for series in result:
            tags = series.tags or {}
            for row in series.rows()[:1]:
                if row.get("seen") is None:
                    continue
                battery = row.get("battery")
                key = (tags.get("site", ""), tags.get("device", ""))
                seen = Seen(series.name, int(row["seen"]), None if battery is None else int(battery))
                if key not in out or out[key].last_seen_ms < seen.last_seen_ms:
                    out[key] = seen
    return out
