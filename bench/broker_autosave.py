"""What mosquitto's ``autosave_interval`` (with ``autosave_on_changes``) costs and buys (issue 13, R3).

``uv run python -m bench.broker_autosave 1000:10000 100:10000 1:10000 [--cap-s 60]``: for each
``interval:messages`` pair, a fresh broker (the project's config, :class:`eldercare.stack.Broker`) with that
interval; the backend's persistent session subscribes and goes away, one gateway publishes QoS 1 messages (so each
is queued and stays in every save) until ``messages`` are acknowledged or ``--cap-s`` has passed; then ``kill -9``
of the broker, a restart, and the backend session counts what comes back. Reported per row: publish rate while
queueing, broker CPU seconds (``/proc``), how many acknowledged messages were lost. Results: docs/storage.md.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.procstat import proc_cpu_s


@dataclass(slots=True)
class Row:
    """One broker setting's numbers."""

    interval: int
    acknowledged: int
    rate: float
    broker_cpu_s: float
    lost: int


async def measure(interval: int, messages: int, *, cap_s: float) -> Row:
    """Queue up to ``messages`` for an absent backend with ``autosave_interval interval``; kill -9; count."""
    from eldercare.stack import Broker
    from firmware_sim.home_gateway import GatewayPublisher
    from firmware_sim.wire import encode_mattress_telemetry
    from gateway.listener import MqttListener

    with tempfile.TemporaryDirectory(prefix="bench-autosave-") as tmp:
        broker = Broker(data_dir=Path(tmp) / "mosquitto", secret=secrets.token_urlsafe(32), autosave_changes=interval)
        broker.start()
        try:
            site = "hqueue"
            broker.provision([site])

            def session() -> MqttListener:
                return MqttListener(
                    host=broker.host,
                    port=broker.backend_port,
                    username=broker.backend_user,
                    password=broker.backend_password,
                    client_id="bench-autosave",
                    subscriptions=(f"ec/v1/{site}/+/+/telemetry",),
                )

            away = session()
            await away.start()
            await away.wait_ready()
            await away.close()
            gw = GatewayPublisher(site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port)
            await asyncio.to_thread(gw.connect)
            assert broker.server.proc is not None
            pid = broker.server.proc.pid
            t0 = time.time_ns() // 1_000_000
            cpu0, start = proc_cpu_s(pid), time.perf_counter()
            acknowledged = 0
            while acknowledged < messages and time.perf_counter() - start < cap_s:
                block = [
                    encode_mattress_telemetry(
                        **gw.wire.stamp("mat1"), ts=t0 + acknowledged + i, occupied=True, hr=60.0, rr=14.0, movement=1
                    )
                    for i in range(min(1_000, messages - acknowledged))
                ]
                acknowledged += await asyncio.to_thread(gw.publish_all, block, timeout=600)
            seconds, cpu = time.perf_counter() - start, proc_cpu_s(pid) - cpu0
            await asyncio.to_thread(gw.crash)
            broker.kill()
            broker.start()
            back = session()
            await back.start()
            await back.wait_ready()
            payloads: set[bytes] = set()
            batches = back.batches(max_wait_s=0.05)
            try:
                while len(payloads) < acknowledged:
                    try:
                        batch = await asyncio.wait_for(anext(batches), 5)
                    except TimeoutError:
                        break  # a benchmark, not a test: 5 s without a message ends the count
                    payloads.update(m.payload for m in batch)
                    back.ack(batch)
            finally:
                await batches.aclose()
                await back.close(end_session=True)
            return Row(interval, acknowledged, acknowledged / seconds, cpu, acknowledged - len(payloads))
        finally:
            broker.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.broker_autosave``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", help="interval:messages, e.g. 1000:10000")
    parser.add_argument("--cap-s", type=float, default=60.0)
    args = parser.parse_args(argv)
    print("| autosave_interval | acknowledged | publish rate while queueing | broker CPU | lost on kill -9 |")
    print("|---:|---:|---:|---:|---:|")
    for run in args.runs:
        interval, messages = (int(x) for x in run.split(":"))
        row = asyncio.run(measure(interval, messages, cap_s=args.cap_s))
        print(
            f"| {row.interval} | {row.acknowledged} | {row.rate:.0f} msg/s | {row.broker_cpu_s:.1f} s | {row.lost} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
