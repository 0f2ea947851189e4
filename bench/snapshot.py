"""``eldercare bench snapshot``: the longest event-loop stall while the engine snapshot is saved, old vs sliced.

For each home count an engine is built with that many homes (the standard six devices each, every detector's
timers armed, one mattress reading per home, ``history_days`` archived care days per home) and its snapshot is
saved as the backend saves it, while a probe task on the same loop processes mattress readings of random homes
(so the copy-on-write path is exercised as in production):

* **old**: :meth:`Engine.snapshot` in one call on the loop, then write + fsync + rename in a thread (the
  backend's ``save_snapshot_async`` before slicing);
* **sliced**: :meth:`Engine.begin_snapshot` and :meth:`~detection.engine.SnapshotCapture.step` of about
  ``slice_ms`` each, the loop free as long again in between (the loop of
  :func:`eldercare.backend.snapshot_in_slices`, timed step by step), then the same write in a thread (the
  backend's current path).

Two numbers per save: the **stall**, how long the probe, having yielded, waits to run again (what a life-safety
reading arriving at that moment would wait, OS scheduling and the writer thread's share of the GIL included), and
the longest **on-loop step** of the snapshot itself (the one call for the old method, the capture's start or a
slice for the new one). The **floor** is the probe's longest stall over the same time with no snapshot at all:
on a shared machine the OS alone pauses a process for several milliseconds now and then. Both methods run
``repeat`` times, alternating, in the same process; the ratios are what the docs compare. The archived days are
shared objects (the encoder walks each home's list all the same), which keeps 100,000 homes within a few GB of
memory; the garbage collector is frozen after the build so its full passes over the build's objects do not land
in either method's window.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from detection.baseline import DaySummary
from detection.engine import Engine
from detection.homes import TYPICAL_DEVICES, HomeRegistry, SiteInfo
from eldercare.backend import write_atomically
from gateway.models import DeviceKind, MessageType, Reading

DEVICES = TYPICAL_DEVICES
START_MS = 1_772_416_800_000
"""2026-03-02 10:00 Asia/Shanghai: daytime, so the homes are up and their daytime timers are armed."""


@dataclass(slots=True)
class MethodRun:
    """One save of one method: the stalls the probe saw and how long the save took to be durable."""

    max_stall_ms: float
    p99_stall_ms: float
    max_step_ms: float
    seconds: float
    megabytes: float
    probe_readings: int


@dataclass(slots=True)
class SizeResult:
    """Both methods at one home count."""

    homes: int
    timers: int
    old: list[MethodRun] = field(default_factory=list)
    sliced: list[MethodRun] = field(default_factory=list)
    floor: list[MethodRun] = field(default_factory=list)

    @staticmethod
    def _median(values: list[float]) -> float:
        s = sorted(values)
        return s[len(s) // 2] if s else float("nan")

    def row(self) -> str:
        """One Markdown table row: medians over the repeats, the worst in brackets where it matters."""
        med = self._median

        def stall(runs: list[MethodRun]) -> str:
            values = [r.max_stall_ms for r in runs]
            return f"{med(values):,.1f} ({max(values):,.1f})"

        old_step = med([r.max_step_ms for r in self.old])
        new_step = med([r.max_step_ms for r in self.sliced])
        old_stall = med([r.max_stall_ms for r in self.old])
        new_stall = med([r.max_stall_ms for r in self.sliced])
        return (
            f"| {self.homes:,} | {self.timers:,} | {med([r.megabytes for r in self.sliced]):,.0f} "
            f"| {old_step:,.1f} | {new_step:,.2f} | ×{old_step / max(new_step, 1e-9):,.0f} "
            f"| {stall(self.old)} | {stall(self.sliced)} | {stall(self.floor)} "
            f"| ×{old_stall / max(new_stall, 1e-9):,.0f} "
            f"| {med([r.seconds for r in self.old]):.2f} | {med([r.seconds for r in self.sliced]):.2f} |"
        )


@dataclass(slots=True)
class SnapshotBench:
    """Every home count measured."""

    slice_ms: float
    history_days: int
    sizes: list[SizeResult] = field(default_factory=list)

    def table(self) -> str:
        """Markdown table with the old/sliced ratio of the longest stall."""
        head = [
            f"slice {self.slice_ms:g} ms, {self.history_days} archived days per home; median of the repeats"
            " (worst in brackets)",
            "",
            "| homes | timers | MB | longest on-loop step, old ms | sliced ms | old / sliced "
            "| probe's longest stall, old ms | sliced ms | floor ms | old / sliced | old: s to durable "
            "| sliced: s to durable |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        return "\n".join([*head, *(s.row() for s in self.sizes)])


def _day(rng: random.Random, day: int) -> DaySummary:
    return DaySummary(
        day=day,
        wake_min=rng.uniform(380, 480),
        bed_min=rng.uniform(540, 660),
        night_exits=rng.randint(0, 3),
        night_exit_max_min=rng.uniform(2, 15),
        hr_sum=rng.uniform(20_000, 40_000),
        hr_n=rng.randint(400, 600),
        rr_sum=rng.uniform(5_000, 9_000),
        rr_n=rng.randint(400, 600),
        max_gap_min=[rng.uniform(10, 90) for _ in range(5)],
        out_max_min=rng.uniform(30, 180),
        activity=rng.randint(50, 400),
    )


def _mattress(site: str, t: int, seq: int) -> Reading:
    return Reading(
        site=site,
        kind=DeviceKind.MATTRESS,
        device="mat1",
        type=MessageType.TELEMETRY,
        seq=seq,
        ts_ms=t,
        received_ms=t,
        fields={"occupied": False, "movement": 0},
    )


def build_engine(homes: int, *, history_days: int = 28, seed: int = 7) -> Engine:
    """An engine watching ``homes`` homes with every default detector's timers armed and archived days."""
    registry = HomeRegistry(
        {f"h{i:06d}": SiteInfo(site=f"h{i:06d}", gateway=f"gw{i:06d}", devices=DEVICES) for i in range(homes)}
    )
    engine = Engine(registry=registry, refit_inline=False)
    engine.ensure_homes(START_MS)
    rng = random.Random(seed)
    days = [_day(rng, d) for d in range(history_days)]
    t = START_MS
    for home in engine.homes.values():
        home.history = list(days)
        t += 1
        engine.process(_mattress(home.site, t, 1))
    return engine


async def _save(engine: Engine, save: Callable[[list[float]], Awaitable[int]], *, probe_seed: int) -> MethodRun:
    """Run one save while a probe processes readings between its turns; time the probe's waits."""
    sites = list(engine.homes)
    rng = random.Random(probe_seed)
    stalls: list[float] = []
    done = False

    async def probe() -> None:
        t = engine.now_ms
        seq = 1_000_000
        while not done:
            yielded = time.perf_counter()
            await asyncio.sleep(0)
            stalls.append(time.perf_counter() - yielded)
            t += 1
            seq += 1
            engine.process(_mattress(rng.choice(sites), t, seq))

    task = asyncio.create_task(probe())
    await asyncio.sleep(0)
    steps: list[float] = []
    t0 = time.perf_counter()
    size = await save(steps)
    seconds = time.perf_counter() - t0
    done = True
    await task
    stalls.sort()
    return MethodRun(
        max_stall_ms=stalls[-1] * 1000,
        p99_stall_ms=stalls[int(len(stalls) * 0.99)] * 1000,
        max_step_ms=max(steps, default=0.0) * 1000,
        seconds=seconds,
        megabytes=size / 1e6,
        probe_readings=len(stalls),
    )


async def _measure(engine: Engine, path: Path, *, slice_ms: float, repeat: int, result: SizeResult) -> None:
    async def old(steps: list[float]) -> int:
        t = time.perf_counter()
        data = engine.snapshot()
        steps.append(time.perf_counter() - t)
        await asyncio.to_thread(write_atomically, path, [data])
        return len(data)

    async def sliced(steps: list[float]) -> int:
        t = time.perf_counter()
        capture = engine.begin_snapshot()
        try:
            while not capture.step(slice_ms / 1000):
                steps.append(time.perf_counter() - t)
                await asyncio.sleep(slice_ms / 1000)
                t = time.perf_counter()
            chunks = capture.chunks()
            steps.append(time.perf_counter() - t)
        finally:
            capture.close()
        await asyncio.to_thread(write_atomically, path, chunks)
        return capture.nbytes

    for k in range(repeat):
        result.old.append(await _save(engine, old, probe_seed=3 * k))
        result.sliced.append(await _save(engine, sliced, probe_seed=3 * k + 1))
        seconds = result.sliced[-1].seconds

        async def nothing(_steps: list[float], seconds: float = seconds) -> int:
            await asyncio.sleep(seconds)
            return 0

        result.floor.append(await _save(engine, nothing, probe_seed=3 * k + 2))


def run_bench_snapshot(
    *,
    homes: Sequence[int] = (10_000, 100_000),
    history_days: int = 28,
    slice_ms: float = 1.0,
    repeat: int = 3,
    data_dir: Path | None = None,
) -> SnapshotBench:
    """Measure both methods at every home count (snapshots are written under ``data_dir`` or a temp dir)."""
    bench = SnapshotBench(slice_ms=slice_ms, history_days=history_days)
    with tempfile.TemporaryDirectory(prefix="bench-snapshot-", dir=data_dir) as tmp:
        for n in homes:
            engine = build_engine(n, history_days=history_days)
            result = SizeResult(homes=n, timers=len(engine.timers))
            gc.collect()
            gc.freeze()
            try:
                asyncio.run(
                    _measure(engine, Path(tmp) / f"engine-{n}.msgpack", slice_ms=slice_ms, repeat=repeat, result=result)
                )
            finally:
                gc.unfreeze()
            bench.sizes.append(result)
            del engine
            gc.collect()
    return bench


def main(argv: list[str] | None = None, *, out: Callable[[str], None] = print) -> None:
    """``python -m bench.snapshot --homes 10000 100000``: run and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--homes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--history-days", type=int, default=28)
    parser.add_argument("--slice-ms", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    out(
        run_bench_snapshot(
            homes=args.homes, history_days=args.history_days, slice_ms=args.slice_ms, repeat=args.repeat
        ).table()
    )


if __name__ == "__main__":
    main()
