"""``eldercare bench detect``: readings/s through the detection core and the cost of one timer pass.

Two measurements, each against a naive baseline in the same run:

1. **Detector throughput**: pre-decoded readings of simulated homes (so decoding is not measured) through
   :meth:`Engine.process_many`, versus a naive engine that hands every reading to every detector.
2. **Timer tick over many homes**: one event-time second of timers for ``homes`` homes (each with the timers a
   home really arms: inactivity, not-up, offline per device, day boundary, silence), popped from the heap, versus
   scanning every home's deadlines in Python and a vectorised numpy scan of a deadline array.

Wall-clock numbers depend on the machine; the ratios are what the docs compare.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import numpy as np

from detection.config import DetectConfig
from detection.detectors import default_detectors
from detection.detectors.base import Context, Detector
from detection.engine import Engine
from detection.evaluate import simulated
from detection.presence import observe
from detection.state import DeviceState
from detection.timers import TimerQueue
from gateway.contract import decode_message
from gateway.errors import DecodeError
from gateway.models import Reading


class BenchResult(msgspec.Struct, kw_only=True):
    """Numbers printed by ``eldercare bench detect`` and recorded in docs/benchmarks.md."""

    readings: int
    engine_readings_per_s: float
    naive_readings_per_s: float
    decode_and_detect_per_s: float
    homes: int
    timers: int
    heap_tick_ms: float
    python_scan_tick_ms: float
    numpy_scan_tick_ms: float
    alerts: int

    def lines(self) -> list[str]:
        """Human-readable summary with ratios."""
        return [
            f"detector throughput: {self.engine_readings_per_s:,.0f} readings/s over {self.readings:,} decoded"
            f" readings ({self.alerts} alerts); naive all-detectors baseline {self.naive_readings_per_s:,.0f}/s"
            f" → ×{self.engine_readings_per_s / max(self.naive_readings_per_s, 1e-9):.2f}",
            f"decode + detect: {self.decode_and_detect_per_s:,.0f} messages/s",
            f"timer tick over {self.homes:,} homes ({self.timers:,} armed timers), one event-time second:"
            f" heap {self.heap_tick_ms:.3f} ms, numpy scan {self.numpy_scan_tick_ms:.3f} ms"
            f" (×{self.numpy_scan_tick_ms / max(self.heap_tick_ms, 1e-9):.0f}),"
            f" Python scan {self.python_scan_tick_ms:.1f} ms"
            f" (×{self.python_scan_tick_ms / max(self.heap_tick_ms, 1e-9):.0f})",
        ]


class NaiveEngine(Engine):
    """Baseline: every reading goes to every detector (no routing by kind/type, no flag filter)."""

    def _process(self, ctx: Context, r: Reading) -> None:
        home = self.homes.get(r.site)
        if home is None:
            home = self._new_home(r.site, r.time_ms)
        dev = home.devices.get(r.device)
        if dev is None:
            dev = home.devices[r.device] = DeviceState(kind=r.kind, last_seen_ms=r.time_ms)
        t = r.time_ms
        if t >= dev.last_seen_ms:
            dev.last_seen_ms = t
        home.last_seen_ms = max(home.last_seen_ms, t)
        flags = observe(ctx, home, r, t)
        for det in self.detectors:
            if (r.kind, r.type) in det.inputs:
                det.on_reading(ctx, home, r, t, flags)


def _best(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _tick_bench(homes: int, config: DetectConfig, seed: int) -> tuple[int, float, float, float]:
    rng = np.random.default_rng(seed)
    now = 1_772_380_800_000
    names = ("inact", "not_up", "day", "site", "off:mat1", "off:band1", "off:door1", "off:pir1")
    q = TimerQueue()
    dues = now + rng.integers(1_000, 86_400_000, size=(homes, len(names)))
    sites = [f"h{i:06d}" for i in range(homes)]
    for i, site in enumerate(sites):
        row = dues[i].tolist()
        for j, name in enumerate(names):
            q.schedule(site, name, row[j])
    n_timers = len(q)
    seconds = 200

    def heap() -> None:
        for s in range(1, seconds + 1):
            q.pop_due(now + s * 1000)

    heap_s = _best(heap, 1) / seconds
    flat = dues.ravel().copy()
    deadlines = {site: dues[i].tolist() for i, site in enumerate(sites)}

    def numpy_scan() -> None:
        for s in range(1, 6):
            t = now + s * 1000
            due = np.flatnonzero(flat <= t)
            flat[due] = np.iinfo(np.int64).max

    numpy_s = _best(numpy_scan, 1) / 5

    def python_scan() -> None:
        t = now + 1000
        for _site, row in deadlines.items():
            for j in range(len(row)):
                if row[j] <= t:
                    row[j] = 1 << 62

    python_s = _best(python_scan, 1)
    return n_timers, heap_s * 1000, python_s * 1000, numpy_s * 1000


def bench_detect(
    *,
    homes: int = 20,
    days: int = 2,
    tick_homes: int = 100_000,
    seed: int = 7,
    config: DetectConfig | None = None,
    detectors: Sequence[Detector] | None = None,
) -> BenchResult:
    """Run both measurements; ``homes × days`` simulated homes feed the throughput part."""
    cfg = config or DetectConfig()
    registry, messages, end_ms = simulated(homes=homes, days=days, seed=seed, mix="realistic")
    readings: list[Reading] = []
    for t, topic, payload in messages:
        try:
            readings.append(decode_message(topic, payload, received_ms=t, directory=registry))
        except DecodeError:
            continue
    alerts = 0

    def engine_run() -> None:
        nonlocal alerts
        eng = Engine(registry=registry, config=cfg, detectors=detectors)
        eng.ensure_homes(readings[0].received_ms)
        alerts = len(eng.process_many(readings)) + len(eng.advance(end_ms))

    def naive_run() -> None:
        eng = NaiveEngine(registry=registry, config=cfg, detectors=detectors or default_detectors(cfg))
        eng.ensure_homes(readings[0].received_ms)
        eng.process_many(readings)

    def decode_run() -> None:
        eng = Engine(registry=registry, config=cfg, detectors=detectors)
        eng.ensure_homes(messages[0][0])
        for t, topic, payload in messages:
            try:
                eng.process(decode_message(topic, payload, received_ms=t, directory=registry))
            except DecodeError:
                continue

    engine_s = _best(engine_run, 3)
    naive_s = _best(naive_run, 2)
    decode_s = _best(decode_run, 1)
    n_timers, heap_ms, python_ms, numpy_ms = _tick_bench(tick_homes, cfg, seed)
    return BenchResult(
        readings=len(readings),
        engine_readings_per_s=len(readings) / engine_s,
        naive_readings_per_s=len(readings) / naive_s,
        decode_and_detect_per_s=len(messages) / decode_s,
        homes=tick_homes,
        timers=n_timers,
        heap_tick_ms=heap_ms,
        python_scan_tick_ms=python_ms,
        numpy_scan_tick_ms=numpy_ms,
        alerts=alerts,
    )
