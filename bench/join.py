"""``eldercare bench join``: how long a worker's first join of a new cluster takes to create the partition consumers.

A worker joining a cluster that has no partition consumers yet (a new deployment, or one whose stream was rebuilt)
creates one replicated consumer per partition on ``$MQTT_msgs`` before it may claim any partition
(:meth:`ingest.nats_bus.NatsBus.ensure_partition_consumers`); until then no home of that cluster is watched. Per
round, each setting of ``at_once`` (how many creates run concurrently; 1 = one by one, the code until 2026-12-07)
gets a fresh 3-node cluster and is timed from the call to the last consumer created. The ratio is against one by
one, measured in the same run, rounds interleaved.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eldercare.servers.nats import NatsCluster
from ingest.nats_bus import NatsBus
from ingest.partitions import DEFAULT_PARTITIONS


@dataclass
class JoinRow:
    """One ``at_once`` setting over every round."""

    at_once: int
    seconds: list[float] = field(default_factory=list)
    created: list[int] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        """Median over the rounds."""
        return statistics.median(self.seconds)


async def _create(cluster: NatsCluster, partitions: int, at_once: int) -> tuple[float, int]:
    async with NatsBus(servers=cluster.urls, name="bench-join") as bus:
        started = time.perf_counter()
        created = await bus.ensure_partition_consumers(partitions, at_once=at_once)
        return time.perf_counter() - started, created


def run_bench_join(
    *, at_once: Sequence[int] = (1, 16), rounds: int = 2, partitions: int = DEFAULT_PARTITIONS
) -> list[JoinRow]:
    """Time the consumers' creation on a fresh cluster per setting and round."""
    rows = [JoinRow(at_once=n) for n in at_once]
    with tempfile.TemporaryDirectory(prefix="eldercare-bench-join-") as tmp:
        for r in range(rounds):
            for row in rows:
                data = Path(tmp) / f"r{r}-{row.at_once}"
                with NatsCluster(data_dir=data, partitions=partitions) as cluster:
                    seconds, created = asyncio.run(_create(cluster, partitions, row.at_once))
                row.seconds.append(seconds)
                row.created.append(created)
    return rows


def table(rows: Sequence[JoinRow]) -> str:
    """Markdown: median seconds per setting and the ratio to one by one (the first row)."""
    base = rows[0].median_s
    lines = [
        "| consumers created at once | consumers | median s (rounds) | vs one by one |",
        "|---:|---:|---|---:|",
    ]
    for row in rows:
        runs = ", ".join(f"{s:.2f}" for s in row.seconds)
        lines.append(
            f"| {row.at_once} | {max(row.created)} | {row.median_s:.2f} ({runs}) | ×{base / row.median_s:.1f} |"
        )
    return "\n".join(lines)
