"""Command-line entry points as plain typed functions (the lead wires them into ``eldercare simulate``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from firmware_sim.errors import ScenarioError
from firmware_sim.live import LiveStats, run_live
from firmware_sim.models import DAY_MS, DEFAULT_START_MS, MINUTE_MS, TZ_OFFSET_MS
from firmware_sim.recording import Written, write_simulation
from firmware_sim.scenario import DEFAULT_MATTRESS_CADENCE_S, generate

LIVE_CHUNK_MS: Final = 10 * MINUTE_MS
"""Live mode renders this much simulated time at a time (a whole day of 10,000 homes would take minutes)."""


@dataclass(frozen=True, slots=True)
class SimulateResult:
    """Outcome of :func:`simulate`: files written (fast-forward) or live statistics, and the time it took."""

    seconds: float
    written: Written | None = None
    live: LiveStats | None = None


def local_midnight_ms(now_ms: int) -> int:
    """Start of the local (Asia/Shanghai) day containing ``now_ms``."""
    return (now_ms + TZ_OFFSET_MS) // DAY_MS * DAY_MS - TZ_OFFSET_MS


def simulate(
    *,
    homes: int = 10,
    days: int = 7,
    seed: int = 1,
    mix: str = "normal",
    out: Path | None = None,
    broker_host: str | None = None,
    broker_port: int = 1883,
    password_for: Callable[[str], str | None] = lambda site: None,
    speed: float = 1.0,
    realtime: bool = False,
    mattress_cadence_s: float = DEFAULT_MATTRESS_CADENCE_S,
    site_prefix: str = "h",
    progress: bool = True,
    console: Console | None = None,
    duration_s: float | None = None,
) -> SimulateResult:
    """Run the simulator: fast-forward into ``out`` (a directory), or live against ``broker_host``.

    Fast-forward writes ``recording.jsonl``, ``ground_truth.json`` and ``registry.json``. Live mode
    publishes with one MQTT connection per home gateway; ``realtime`` starts the simulation at today's
    local midnight and plays from "now" at ``speed`` 1, so device timestamps are wall-clock times.
    ``duration_s`` stops live mode after that many wall seconds. Live mode renders 10-minute chunks
    (:data:`LIVE_CHUNK_MS`) so publishing starts at once, even for thousands of homes.
    """
    if (out is None) == (broker_host is None):
        raise ScenarioError(parameter="out/broker", reason="give exactly one of an output directory or a broker")
    console = console or Console(stderr=True)
    start_ms = DEFAULT_START_MS
    now_ms = time.time_ns() // 1_000_000
    if realtime:
        start_ms, speed = local_midnight_ms(now_ms), 1.0
    sim = generate(
        homes=homes,
        days=days,
        seed=seed,
        mix=mix,
        start_ms=start_ms,
        mattress_cadence_s=mattress_cadence_s,
        site_prefix=site_prefix,
    )
    t0 = time.perf_counter()
    if out is not None:
        if not progress:
            written = write_simulation(sim, out)
        else:
            columns = (TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TextColumn("days"))
            with Progress(
                *columns, TextColumn("{task.fields[msgs]:,} messages"), TimeElapsedColumn(), console=console
            ) as bar:
                task = bar.add_task("days", total=days, msgs=0)
                written = write_simulation(sim, out, on_day=lambda d, n: bar.update(task, completed=d + 1, msgs=n))
        seconds = time.perf_counter() - t0
        console.print(
            f"{written.messages:,} messages, {written.incidents} incidents in {seconds:.1f} s → {written.recording}"
        )
        return SimulateResult(seconds=seconds, written=written)
    assert broker_host is not None
    deadline = None if duration_s is None else time.monotonic() + duration_s
    stats = run_live(
        sim.messages(chunk_ms=LIVE_CHUNK_MS),
        sites=[(h.site, h.gateway) for h in sim.homes],
        host=broker_host,
        port=broker_port,
        password_for=password_for,
        speed=speed,
        skip_before_ms=now_ms if realtime else None,
        stop=(lambda: False) if deadline is None else (lambda: time.monotonic() >= deadline),
    )
    seconds = time.perf_counter() - t0
    console.print(f"published {stats.published:,} messages, {len(stats.commands)} commands received")
    return SimulateResult(seconds=seconds, live=stats)
