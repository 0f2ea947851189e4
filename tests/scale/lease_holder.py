"""A worker that holds one partition lease and 'acts' (as it would ack or alert) only through the fence.

Run as ``python lease_holder.py URL BUCKET PARTITION LEASE_S``; prints one line per step, flushed:
``held <rev>``, ``acted <n>`` (the fence let it act), ``fenced <reason>`` (then it exits).
"""

from __future__ import annotations

import asyncio
import sys

from ingest.nats_bus import NatsBus
from ingest.partitions import LeaseLostError


async def main(url: str, bucket: str, partition: int, lease_s: float) -> None:
    async with NatsBus(servers=[url], name="holder") as bus:
        leases = await bus.leases(owner="holder", bucket=bucket, lease_s=lease_s, replicas=3)
        lease = await leases.acquire(partition)
        assert lease is not None
        print(f"held {lease.revision}", flush=True)
        n = 0
        while True:
            try:
                lease.check(leases.clock())  # the fence in front of every ack and alert
                n += 1
                print(f"acted {n}", flush=True)
                await leases.renew(lease)
            except LeaseLostError as lost:
                print(f"fenced {lost.reason}", flush=True)
                return
            await asyncio.sleep(0.2)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
