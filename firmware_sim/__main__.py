"""``python -m firmware_sim``: the simulator on its own, without the backend installed."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from firmware_sim.cli import simulate
from firmware_sim.errors import SimulatorError
from firmware_sim.scenario import DEFAULT_MATTRESS_CADENCE_S


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run :func:`firmware_sim.cli.simulate`."""
    ap = argparse.ArgumentParser(prog="python -m firmware_sim", description="Simulated elders, devices and gateways.")
    ap.add_argument("--homes", type=int, default=10)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mix", default="normal", help="normal | incident-rich | device-faulty | realistic | kind:w,...")
    ap.add_argument("--out", type=Path, help="output directory (fast-forward mode)")
    ap.add_argument("--broker", help="broker host (live mode)")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--password", help="gateway password (same for every home; the backend CLI derives them)")
    ap.add_argument("--speed", type=float, default=1.0, help="live mode: simulated seconds per wall second")
    ap.add_argument("--realtime", action="store_true", help="live mode: start today, play from now, real timestamps")
    ap.add_argument("--mattress-cadence", type=float, default=DEFAULT_MATTRESS_CADENCE_S)
    ap.add_argument("--site-prefix", default="h")
    ap.add_argument("--duration", type=float, help="live mode: stop after this many wall seconds")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.broker else logging.WARNING)
    password: str | None = args.password
    try:
        simulate(
            homes=args.homes,
            days=args.days,
            seed=args.seed,
            mix=args.mix,
            out=args.out,
            broker_host=args.broker,
            broker_port=args.port,
            password_for=lambda site: password,
            speed=args.speed,
            realtime=args.realtime,
            mattress_cadence_s=args.mattress_cadence,
            site_prefix=args.site_prefix,
            progress=not args.no_progress,
            duration_s=args.duration,
        )
    except SimulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
