"""Resident charts from InfluxDB (via :class:`ingest.reader.InfluxReader`) with the learned baseline beside them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final, Protocol

from detection.baseline import Baseline
from detection.config import DetectConfig
from gateway.models import DeviceKind, MessageType
from ingest.reader import Bucket

RANGES: Final[dict[str, tuple[int, str]]] = {"24h": (86_400_000, "10m"), "7d": (7 * 86_400_000, "1h")}
"""Chart range → (length in ms, bucket width)."""


class ChartReader(Protocol):
    """The part of :class:`ingest.reader.InfluxReader` the charts use."""

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
        """One aggregate per bucket."""
        ...


BaselineLookup = Callable[[str], Baseline | None]
"""Site → its current baseline (the detection engine's), or None."""


def _band(median: float | None, mad: float | None, floor: float, ceiling: float, k: float) -> list[float] | None:
    if median is None:
        return None
    spread = (mad or 0.0) * k
    return [round(max(floor, median - spread), 1), round(min(ceiling, median + spread), 1)]


def _points(buckets: list[Bucket]) -> list[list[float | int | None]]:
    return [[b.time_ms, None if b.value is None else round(b.value, 2)] for b in buckets]


async def resident_charts(
    reader: ChartReader,
    *,
    site: str,
    range_key: str,
    now_ms: int,
    baseline: Baseline | None,
    config: DetectConfig | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Heart and breathing rate, bed occupancy, door and motion activity of one home, for one range.

    The vitals carry a ``band``: the elder's learned median ± ``trend_mads`` MADs when personal, else the fixed
    safety floors of :class:`~detection.config.DetectConfig`, so the chart shows what the detectors compare against.
    """
    cfg = config or DetectConfig()
    span, every = RANGES.get(range_key, RANGES["24h"])
    start = now_ms - span
    common: dict[str, Any] = {"every": every, "site": site, "start_ms": start, "end_ms": now_ms}
    hr, rr, bed, door, motion = await asyncio.gather(
        reader.aggregate(DeviceKind.MATTRESS, "hr", function="mean", **common),
        reader.aggregate(DeviceKind.MATTRESS, "rr", function="mean", **common),
        reader.aggregate(DeviceKind.MATTRESS, "occupied", function="last", **common),
        reader.aggregate(DeviceKind.DOOR, "received_ms", function="count", mtype=MessageType.EVENT, **common),
        reader.aggregate(DeviceKind.MOTION, "count", function="sum", **common),
    )
    personal = baseline is not None and baseline.personal
    hr_band = (
        _band(baseline.hr_med, baseline.hr_mad, cfg.hr_low, cfg.hr_high, cfg.trend_mads)
        if personal and baseline
        else None
    )
    rr_band = _band(baseline.rr_med, baseline.rr_mad, 4.0, 40.0, cfg.trend_mads) if personal and baseline else None
    names = {"hr": "hr", "rr": "rr", "bed": "bed", "door": "door", "motion": "motion", **(labels or {})}
    return {
        "site": site,
        "range": range_key if range_key in RANGES else "24h",
        "start_ms": start,
        "end_ms": now_ms,
        "baseline": {
            "personal": personal,
            "days": baseline.n_days if baseline else 0,
            "hr": hr_band or [cfg.hr_low, cfg.hr_high],
            "rr": rr_band,
        },
        "series": [
            {"name": names["hr"], "points": _points(hr), "axis": 0, "band": hr_band or [cfg.hr_low, cfg.hr_high]},
            {"name": names["rr"], "points": _points(rr), "axis": 0, "band": rr_band},
            {"name": names["bed"], "points": _points(bed), "axis": 1, "step": True},
            {"name": names["door"], "points": _points(door), "axis": 2, "bar": True},
            {"name": names["motion"], "points": _points(motion), "axis": 2, "bar": True},
        ],
    }


async def activity_ratios(
    reader: ChartReader, sites: list[str], *, now_ms: int, recent_days: int = 7, reference_days: int = 28
) -> dict[str, float]:
    """Per home: mean daily motion of the last ``recent_days`` over that of the ``reference_days`` before.

    Below 1 means the elder moves less than usual (a reason to visit sooner). Homes without reference data are
    left out rather than guessed.
    """
    day = 86_400_000
    split, start = now_ms - recent_days * day, now_ms - (recent_days + reference_days) * day

    async def total(site: str, lo: int, hi: int) -> float | None:
        buckets = await reader.aggregate(
            DeviceKind.MOTION, "count", function="sum", every="7d", site=site, start_ms=lo, end_ms=hi
        )
        values = [b.value for b in buckets if b.value is not None]
        return sum(values) if values else None

    async def ratio(site: str) -> tuple[str, float | None]:
        recent, reference = await asyncio.gather(total(site, split, now_ms), total(site, start, split))
        if not reference:
            return site, None
        return site, ((recent or 0.0) / recent_days) / (reference / reference_days)

    results = await asyncio.gather(*(ratio(s) for s in sites))
    return {site: r for site, r in results if r is not None}
