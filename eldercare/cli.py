"""The ``eldercare`` command: everything an operator does (up, serve, simulate, replay, evaluate, bench, ...)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="eldercare",
    help="Elder-care home monitoring backend / 居家老人安全监测后台",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
bench_app = typer.Typer(help="Benchmarks; each prints ratios against a baseline measured in the same run.")
deadletter_app = typer.Typer(help="Inspect the dead-letter record of refused messages.")
db_app = typer.Typer(help="The alert/registry store (SQLite or PostgreSQL).")
app.add_typer(bench_app, name="bench")
app.add_typer(deadletter_app, name="deadletter")
app.add_typer(db_app, name="db")
console = Console(stderr=True)


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per HTTP request or notification drowns what operators need to see.
    for noisy in ("httpx", "apprise"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]


@app.command()
def up(
    homes: Annotated[int, typer.Option(help="Simulated homes publishing live.")] = 20,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 1,
    data_dir: Annotated[Path | None, typer.Option(help="Keep data here instead of a temporary directory.")] = None,
    console_port: Annotated[int, typer.Option(help="Console HTTP port (0 = free port).")] = 8000,
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0 = until Ctrl-C).")] = 0.0,
    demo_sos_every: Annotated[float, typer.Option(help="Seconds between demo call-button presses (0 = off).")] = 180,
    verbose: Verbose = False,
) -> None:
    """Run the whole stack locally: mosquitto, influxd, backend, console and a simulated neighbourhood."""
    _logging(verbose)
    from eldercare.up import run_up

    run_up(
        homes=homes,
        seed=seed,
        data_dir=data_dir,
        console_port=console_port,
        duration=duration,
        demo_sos_every_s=demo_sos_every,
    )


@app.command()
def serve(verbose: Verbose = False) -> None:
    """Run the backend against configured servers (ELDERCARE_* settings; see docs/operations.md)."""
    _logging(verbose)
    from eldercare.backend import Backend
    from eldercare.settings import Settings

    settings = Settings()
    registry = json.loads(settings.registry_path.read_text()) if settings.registry_path else None

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Backend(settings, registry=registry).run(stop=stop)

    asyncio.run(_run())


@app.command()
def simulate(
    homes: Annotated[int, typer.Option(help="Number of homes.")] = 10,
    days: Annotated[int, typer.Option(help="Simulated days.")] = 7,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives byte-identical output.")] = 1,
    mix: Annotated[
        str, typer.Option(help="Scenario mix: normal, incident-rich, device-faulty, realistic or kind:weight,...")
    ] = "normal",
    out: Annotated[Path | None, typer.Option(help="Fast-forward into this directory.")] = None,
    broker: Annotated[str | None, typer.Option(help="Publish live to this broker host instead.")] = None,
    port: Annotated[int, typer.Option(help="Broker port (live mode).")] = 1883,
    speed: Annotated[float, typer.Option(help="Live mode: simulated seconds per real second.")] = 1.0,
    realtime: Annotated[bool, typer.Option(help="Live mode: start at today's midnight, play from now.")] = False,
    mattress_cadence: Annotated[float, typer.Option(help="Seconds between mattress samples.")] = 20.0,
    duration: Annotated[float, typer.Option(help="Live mode: stop after this many seconds (0 = run through).")] = 0.0,
    site_prefix: Annotated[str, typer.Option(help="Site ids are PREFIX0001 … (tests use a unique prefix).")] = "h",
) -> None:
    """Simulate homes: a recording + ground truth + registry (fast-forward), or live publishing to a broker."""
    from eldercare.settings import Settings
    from firmware_sim.cli import simulate as run_simulate
    from gateway.provisioning import gateway_password

    secret = Settings().gateway_secret.get_secret_value()
    if broker is not None and not secret:
        raise typer.BadParameter("live mode needs ELDERCARE_GATEWAY_SECRET to derive the gateways' passwords")
    run_simulate(
        homes=homes,
        days=days,
        seed=seed,
        mix=mix,
        out=out,
        broker_host=broker,
        broker_port=port,
        password_for=lambda site: gateway_password(secret, site),
        speed=speed,
        realtime=realtime,
        mattress_cadence_s=mattress_cadence,
        site_prefix=site_prefix,
        console=console,
        duration_s=duration or None,
    )


@app.command()
def replay(
    recording: Annotated[Path, typer.Argument(help="Recording JSONL (the simulator's format: the wire contract).")],
    registry: Annotated[Path | None, typer.Option(help="Registry JSON of the homes.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write alerts as JSONL here (default: stdout).")] = None,
) -> None:
    """Run the detection core over a recording in event time, with no servers, as fast as possible."""
    import sys

    from detection.replay import replay as run_replay

    result = run_replay(recording, registry, out if out is not None else sys.stdout)
    console.print(f"{len(result.updates)} alert updates")


@app.command()
def evaluate(
    quick: Annotated[bool, typer.Option(help="The small runs the test suite uses instead of the full set.")] = False,
    homes: Annotated[int | None, typer.Option(help="Custom run: homes per run (with --seeds).")] = None,
    days: Annotated[int, typer.Option(help="Custom run: days per run.")] = 14,
    seeds: Annotated[str, typer.Option(help="Custom run: comma-separated seeds, one run each.")] = "1",
    mix: Annotated[str, typer.Option(help="Custom run: scenario mix.")] = "incident-rich",
    markdown: Annotated[Path | None, typer.Option(help="Also write the report as Markdown here.")] = None,
) -> None:
    """Generate scenarios with ground truth, replay them and score every detector (recall, precision, delays)."""
    from detection.evaluate import Run, report_markdown, run_evaluation
    from detection.evaluate import evaluate as run_custom

    def progress(msg: str) -> None:
        console.print(msg)

    if homes is not None:
        runs = [Run(seed=int(s), homes=homes, days=days, mix=mix) for s in seeds.split(",") if s.strip()]
        text = report_markdown(run_custom(runs=runs, progress=progress))
    else:
        text = run_evaluation(full=not quick, progress=progress)[1]
    print(text)
    if markdown is not None:
        markdown.write_text(text)


@bench_app.command("ingest")
def bench_ingest(
    count: Annotated[int, typer.Option(help="Readings per stage.")] = 200_000,
    naive_count: Annotated[int, typer.Option(help="Readings for the naive one-write-per-reading stage.")] = 5_000,
) -> None:
    """MQTT → InfluxDB: mosquitto_sub, bare paho, naive pipeline and ours (1 and 2 workers)."""
    from bench.ingest import run_bench_ingest

    print(run_bench_ingest(count=count, naive_count=naive_count).table())


@bench_app.command("detect")
def bench_detect(
    homes: Annotated[int, typer.Option(help="Simulated homes feeding the throughput part.")] = 20,
    days: Annotated[int, typer.Option(help="Simulated days.")] = 2,
    tick_homes: Annotated[int, typer.Option(help="Homes in the timer/tick pass.")] = 100_000,
) -> None:
    """Readings/s through the detectors and the cost of one timer pass over many homes."""
    from bench.detect import bench_detect as run

    print("\n".join(run(homes=homes, days=days, tick_homes=tick_homes).lines()))


@bench_app.command("latency")
def bench_latency(
    homes: Annotated[int, typer.Option(help="Background homes.")] = 10_000,
    presses: Annotated[int, typer.Option(help="Single SOS presses measured.")] = 200,
    burst: Annotated[int, typer.Option(help="Presses in the burst.")] = 10,
) -> None:
    """SOS publish → alert stored → notification dispatched, under background load."""
    from bench.latency import run_bench_latency

    print(run_bench_latency(homes=homes, presses=presses, burst=burst).summary())


@bench_app.command("recovery")
def bench_recovery(
    homes: Annotated[int, typer.Option(help="Homes watched by the restored engine.")] = 10_000,
) -> None:
    """Restart recovery at N homes: time, peak RSS and live-SOS wait, old restore vs background catch-up."""
    from bench.recovery import run_bench_recovery, table

    print(table(run_bench_recovery(homes=homes), homes))


@bench_app.command("snapshot")
def bench_snapshot(
    homes: Annotated[list[int] | None, typer.Option(help="Home counts (repeat the option).")] = None,
    repeat: Annotated[int, typer.Option(help="Saves per method and home count.")] = 3,
) -> None:
    """Longest event-loop stall while the engine snapshot is saved: one blocking call vs slices."""
    from bench.snapshot import run_bench_snapshot

    print(run_bench_snapshot(homes=homes or [10_000, 100_000], repeat=repeat).table())


@deadletter_app.command("list")
def deadletter_list(
    reason: Annotated[str | None, typer.Option(help="Only this reason (e.g. bad_json, out_of_range).")] = None,
    site: Annotated[str | None, typer.Option(help="Only this home.")] = None,
    limit: Annotated[int, typer.Option(help="Most entries shown.")] = 50,
    payload: Annotated[bool, typer.Option(help="Show payload previews (may contain personal data).")] = False,
) -> None:
    """Refused messages, newest first, with topic, reason and detail."""
    from eldercare.settings import Settings
    from gateway.deadletter import DeadLetterStore, format_entries
    from gateway.errors import Reason

    store = DeadLetterStore.in_data_dir(Settings().data_dir)
    try:
        entries = store.query(reason=Reason(reason) if reason else None, site=site, limit=limit)
        print(format_entries(entries, show_payload=payload))
    finally:
        store.close()


@deadletter_app.command("stats")
def deadletter_stats() -> None:
    """How many messages were refused, by reason."""
    from eldercare.settings import Settings
    from gateway.deadletter import DeadLetterStore, format_stats

    store = DeadLetterStore.in_data_dir(Settings().data_dir)
    try:
        print(format_stats(store.count_by_reason()))
    finally:
        store.close()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to ELDERCARE_DATABASE_URL."""
    from alerts.store.repository import AlertStore
    from eldercare.settings import Settings

    AlertStore(url=Settings().database_url).close()
    console.print("database is at the latest schema")


@db_app.command("import-registry")
def db_import_registry(
    path: Annotated[Path, typer.Argument(help="Registry JSON (docs/registry.md).")],
) -> None:
    """Import (idempotently) a registry document: hierarchy, workers, homes, devices, residents."""
    from alerts.store.repository import AlertStore
    from eldercare.backend import wall_ms
    from eldercare.settings import Settings

    store = AlertStore(url=Settings().database_url)
    try:
        print(store.import_registry(path.read_bytes(), now_ms=wall_ms()))
    finally:
        store.close()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
