"""``eldercare bench recovery``: restart of the backend's detection state at N homes, old path vs new.

Setup (once, in a temporary directory with a real influxd): an engine watching ``homes`` homes (six devices,
every detector's timers armed, 28 archived days each, as :func:`bench.snapshot.build_engine`) is snapshotted as
of ``downtime_s`` ago, and InfluxDB receives what those homes sent since: a mattress reading every 30 s and a
motion reading every 5 minutes per home (with the snapshot's 10-minute lookback, about 22 readings per home per
minute of downtime... less: 2.2 per home-minute).

Each method runs in its own child process (so peak RSS is its own):

* **old**: the restore before issue 13: every reading since the snapshot read from InfluxDB into one list, then
  :meth:`Engine.restore` replays it before the backend processes anything live;
* **new**: :meth:`eldercare.backend.Backend._restore_snapshot` then ``_catch_up`` (windows of 60 s of event time),
  while a probe submits a live SOS through the backend's fast path every 50 ms and records how long each waits for
  the event loop (the time a life-safety reading would wait behind recovery) and whether its alert was raised.

Reported: wall time to rebuilt state, peak RSS of the process, readings replayed, and for "new" the probe's
longest wait and how many SOS alerts were raised while catching up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import SecretStr

from bench.procstat import proc_cpu_s

DOWNTIME_S = 120


@dataclass(slots=True)
class Result:
    """One method's numbers."""

    method: str
    seconds: float
    peak_rss_mb: float
    replayed: int
    probe_max_wait_ms: float | None = None
    sos_raised: int | None = None
    cpu_s: float = 0.0
    """CPU time (user + system, all threads) of the method's process: less sensitive to a busy machine."""
    influxd_cpu_s: float = 0.0
    """CPU time influxd spent while the method ran (answering its queries)."""


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _prepare(homes: int, work: Path, influx_url: str, db: str) -> int:
    """Write the snapshot and the history; return the number of stored readings."""
    import bench.snapshot
    from eldercare.backend import write_atomically
    from gateway.models import DeviceKind, MessageType, Reading
    from ingest.influx import InfluxClient
    from ingest.schema import to_lines

    now = time.time_ns() // 1_000_000
    start = now - DOWNTIME_S * 1000
    bench.snapshot.START_MS = start - 60_000  # timers armed as a live engine would have them a minute earlier
    engine = bench.snapshot.build_engine(homes)
    engine.now_ms = start
    write_atomically(work / "backend" / "detect" / "engine.msgpack", [engine.snapshot()])
    sites = list(engine.homes)
    del engine
    n = 0
    async with InfluxClient(url=influx_url, db=db, timeout_s=120) as client:
        await client.execute(f'CREATE DATABASE "{db}"')
        lines: list[str] = []
        for t in range(start - 600_000, now, 30_000):
            for i, site in enumerate(sites):
                seq = (t - start) // 1000 + 1_000_000
                reading = Reading(
                    site,
                    DeviceKind.MATTRESS,
                    "mat1",
                    MessageType.TELEMETRY,
                    seq,
                    t + i % 1000,
                    t + i % 1000,
                    {"occupied": True, "hr": 62.0, "rr": 14.0, "movement": 1},
                )
                lines.append(to_lines([reading])[0])
                if (t // 30_000) % 10 == i % 10:
                    motion = Reading(
                        site,
                        DeviceKind.MOTION,
                        "pir1",
                        MessageType.TELEMETRY,
                        seq,
                        t + i % 1000,
                        t + i % 1000,
                        {"count": 2, "window_s": 300},
                    )
                    lines.append(to_lines([motion])[0])
                if len(lines) >= 20_000:
                    await client.write("\n".join(lines).encode())
                    n += len(lines)
                    lines.clear()
        if lines:
            await client.write("\n".join(lines).encode())
            n += len(lines)
    return n


def _settings(work: Path, influx_url: str, db: str) -> object:
    from eldercare.settings import Settings

    return Settings(
        data_dir=work / "backend",
        influx_url=influx_url,
        influx_db=db,
        mqtt_password=SecretStr("unused"),
        link_secret=SecretStr("bench-link-secret-0123456789"),
    )


async def _old(homes: int, work: Path, influx_url: str, db: str) -> Result:
    from detection.engine import Engine, InMemoryHistory
    from detection.snapshot import snapshot_watermark
    from ingest.history import stored_readings
    from ingest.influx import InfluxClient
    from ingest.reader import InfluxReader

    t0, cpu0 = time.perf_counter(), _cpu_s()
    data = (work / "backend" / "detect" / "engine.msgpack").read_bytes()
    async with InfluxClient(url=influx_url, db=db, timeout_s=300) as client:
        history = await stored_readings(InfluxReader(client=client), start_ms=snapshot_watermark(data) - 600_000)
    Engine.restore(data, history=InMemoryHistory(history), now_ms=time.time_ns() // 1_000_000, refit_inline=False)
    return Result("old", time.perf_counter() - t0, _rss_mb(), len(history), cpu_s=_cpu_s() - cpu0)


async def _new(homes: int, work: Path, influx_url: str, db: str) -> Result:
    from eldercare.backend import Backend, wall_ms
    from gateway.models import DeviceKind, MessageType, Reading

    backend = Backend(_settings(work, influx_url, db))  # type: ignore[arg-type]
    raised: list[object] = []
    backend._dispatch = raised.append  # type: ignore[method-assign,assignment]  # count alerts, no store or notifier

    async def keep_snapshot() -> None:  # the "old" run that follows restores the same snapshot file
        return None

    backend.save_snapshot_async = keep_snapshot  # type: ignore[method-assign]  # not timed here: the old run writes none
    t0, cpu0 = time.perf_counter(), _cpu_s()
    engine, watermark = await asyncio.to_thread(backend._restore_snapshot)
    from detection.engine import Engine

    backend._live_engine = Engine(registry=None, sink=backend._dispatch, refit_inline=False)
    backend.engine = engine
    waits: list[float] = []
    sites = list(engine.homes)

    async def probe() -> None:
        i = 0
        while backend.recovery.catching_up:
            due = time.perf_counter() + 0.05
            await asyncio.sleep(0.05)
            waits.append(time.perf_counter() - due)
            now = wall_ms()
            site = sites[i % len(sites)]
            backend._fast_path(
                Reading(site, DeviceKind.WRISTBAND, "band1", MessageType.EVENT, 10**9 + i, now, now, {}, event="sos")
            )
            i += 1

    task = asyncio.create_task(probe())
    await backend._catch_up(engine, watermark, live_since_ms=wall_ms())
    seconds = time.perf_counter() - t0
    await task
    sos = sum(1 for a in raised if getattr(a, "type", None) == "sos")
    backend.store.close()
    cpu = _cpu_s() - cpu0
    return Result("new", seconds, _rss_mb(), backend.recovery.replayed, max(waits, default=0.0) * 1000, sos, cpu_s=cpu)


def _child(method: str, homes: int, work: Path, influx_url: str, db: str, influxd_pid: int) -> Result:
    before = proc_cpu_s(influxd_pid)
    out = subprocess.run(  # noqa: S603 - this module
        [
            sys.executable,
            "-m",
            "bench.recovery",
            "--child",
            method,
            "--homes",
            str(homes),
            "--work",
            str(work),
            "--influx",
            influx_url,
            "--db",
            db,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    result = Result(**json.loads(out.stdout.strip().splitlines()[-1]))
    result.influxd_cpu_s = proc_cpu_s(influxd_pid) - before
    return result


def run_bench_recovery(*, homes: int = 10_000) -> list[Result]:
    """Prepare once, then run old and new in their own processes."""
    from eldercare.servers.influxd import Influxd

    with tempfile.TemporaryDirectory(prefix="bench-recovery-") as tmp:
        work = Path(tmp)
        with Influxd(data_dir=work / "influxdb") as influxd:
            db = "recovery"
            stored = asyncio.run(_prepare(homes, work, influxd.url, db))
            print(f"prepared: {homes} homes, {stored} stored readings since the snapshot window", flush=True)
            assert influxd.proc is not None
            return [_child(m, homes, work, influxd.url, db, influxd.proc.pid) for m in ("new", "old")]


def table(results: list[Result], homes: int) -> str:
    """Markdown table of the results."""
    rows = [
        f"| method ({homes} homes) | time to rebuilt state | peak RSS | readings replayed "
        "| longest wait of a live SOS | SOS raised while catching up | CPU: process | CPU: influxd |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        wait = "—" if r.probe_max_wait_ms is None else f"{r.probe_max_wait_ms:.0f} ms"
        sos = "— (nothing live runs)" if r.sos_raised is None else str(r.sos_raised)
        rows.append(
            f"| {r.method} | {r.seconds:.1f} s | {r.peak_rss_mb:.0f} MB | {r.replayed} | {wait} | {sos} "
            f"| {r.cpu_s:.1f} s | {r.influxd_cpu_s:.1f} s |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.recovery``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--homes", type=int, default=10_000)
    parser.add_argument("--child")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--influx")
    parser.add_argument("--db")
    args = parser.parse_args(argv)
    if args.child:
        fn = _new if args.child == "new" else _old
        result = asyncio.run(fn(args.homes, args.work, args.influx, args.db))
        print(json.dumps(asdict(result)))
        return
    print(table(run_bench_recovery(homes=args.homes), args.homes))


if __name__ == "__main__":
    main()
