"""The ``eldercare`` command: everything an operator does (up, serve, simulate, replay, evaluate, bench, ...)."""

from __future__ import annotations

import logging
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
app.add_typer(bench_app, name="bench")
app.add_typer(deadletter_app, name="deadletter")
console = Console(stderr=True)


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def up(
    homes: Annotated[int, typer.Option(help="Simulated homes publishing live.")] = 20,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 1,
    speed: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 60.0,
    data_dir: Annotated[Path | None, typer.Option(help="Keep data here instead of a temporary directory.")] = None,
    console_port: Annotated[int, typer.Option(help="Console HTTP port (0 = free port).")] = 8000,
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0 = until Ctrl-C).")] = 0.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the whole stack locally: mosquitto, influxd, backend, console and a simulated neighbourhood."""
    _logging(verbose)
    from eldercare.up import run_up

    run_up(homes=homes, seed=seed, speed=speed, data_dir=data_dir, console_port=console_port, duration=duration)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
