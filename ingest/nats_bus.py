"""The one module that talks to NATS (nats-py): partition leases in a JetStream KV bucket (docs/scale-out.md).

A lease is the key ``p{P}`` in bucket ``ec-owners`` (history 1, TTL = the lease time): :meth:`PartitionLeases.acquire`
creates it only if absent, :meth:`~PartitionLeases.renew` is a compare-and-set on the revision the owner wrote last,
:meth:`~PartitionLeases.release` deletes it on the same condition. nats-server 2.9 tells no watcher when a key
expires, so a contender polls :meth:`~PartitionLeases.acquire`. Fencing is local and conservative (see
:class:`ingest.partitions.Lease`): the owner stops acknowledging and alerting at its own deadline, before the server
lets anyone else in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

import nats
from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from ingest.partitions import Lease, LeaseLostError

OWNERS_BUCKET = "ec-owners"
DEFAULT_LEASE_S = 10.0


def lease_key(partition: int) -> str:
    """The KV key of a partition's lease."""
    return f"p{partition}"


class NatsBus:
    """A connection to a NATS cluster (fails over between ``servers``) and its JetStream context."""

    def __init__(self, *, servers: Sequence[str], name: str) -> None:
        """Remember where to connect; :meth:`connect` (or ``async with``) connects."""
        self.servers = list(servers)
        self.name = name
        self._nc: Client | None = None

    async def connect(self) -> None:
        """Connect, reconnecting for ever to any node of the cluster."""
        self._nc = await nats.connect(
            servers=self.servers, name=self.name, max_reconnect_attempts=-1, reconnect_time_wait=0.2
        )

    @property
    def nc(self) -> Client:
        """The connected client."""
        if self._nc is None:
            raise RuntimeError("NatsBus is not connected")
        return self._nc

    async def close(self) -> None:
        """Drain and close the connection."""
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def leases(
        self,
        *,
        owner: str,
        bucket: str = OWNERS_BUCKET,
        lease_s: float = DEFAULT_LEASE_S,
        replicas: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> PartitionLeases:
        """The partition-lease table (bucket created on first use with the lease time as its TTL)."""
        js = self.nc.jetstream(timeout=10)
        try:
            kv = await js.key_value(bucket)
        except Exception:  # noqa: BLE001 - nats-py raises BucketNotFoundError or a plain NotFoundError
            kv = await js.create_key_value(
                KeyValueConfig(bucket=bucket, history=1, ttl=lease_s, replicas=replicas, storage=StorageType.FILE)
            )
        return PartitionLeases(kv, owner=owner, lease_s=lease_s, clock=clock)


class PartitionLeases:
    """Acquire, renew and release partition leases for one worker (``owner``)."""

    def __init__(self, kv: KeyValue, *, owner: str, lease_s: float, clock: Callable[[], float]) -> None:
        """Use bucket ``kv``; ``clock`` is monotonic (injectable for tests)."""
        self.kv = kv
        self.owner = owner
        self.lease_s = lease_s
        self.clock = clock

    async def acquire(self, partition: int) -> Lease | None:
        """Create the lease if nobody holds it; None if another worker does."""
        started = self.clock()
        try:
            rev = await self.kv.create(lease_key(partition), self.owner.encode())
        except KeyWrongLastSequenceError:
            return None
        return Lease(partition=partition, owner=self.owner, revision=rev, renewed_at=started, ttl_s=self.lease_s)

    async def renew(self, lease: Lease) -> None:
        """Compare-and-set the lease forward; raise :class:`LeaseLostError` (and mark it lost) if that fails."""
        lease.check(self.clock())
        started = self.clock()
        try:
            rev = await self.kv.update(lease_key(lease.partition), self.owner.encode(), last=lease.revision)
        except KeyWrongLastSequenceError:
            lease.lost = "revision changed (another owner, or expired)"
            raise LeaseLostError(lease.partition, lease.lost) from None
        lease.revision, lease.renewed_at = rev, started

    async def release(self, lease: Lease) -> bool:
        """Delete the lease if it is still ours (graceful hand-over); False if it was not."""
        lost, lease.lost = lease.lost, "released"
        if lost is not None:
            return False
        try:
            await self.kv.delete(lease_key(lease.partition), last=lease.revision)
        except (KeyWrongLastSequenceError, APIError):
            return False
        return True

    async def holder(self, partition: int) -> tuple[str, int] | None:
        """Who holds ``partition`` now (owner, revision), per the server; None if nobody."""
        try:
            entry = await self.kv.get(lease_key(partition))
        except KeyNotFoundError:
            return None
        if entry.value is None or entry.revision is None:
            return None
        return entry.value.decode(), entry.revision
