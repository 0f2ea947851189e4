"""Homes → partitions → owners: the pure part of scaling out by homes (docs/scale-out.md).

A home (site) always hashes to the same one of a *fixed* number of partitions (default 64), with the function
nats-server's ``{{partition(n, 1)}}`` subject mapping uses (FNV-1a 32-bit of the site token, modulo n), so the
backend can list a partition's homes without asking the broker. Workers own sets of partitions under leases;
changing the number of workers never moves a home to another partition, only a partition to another worker.

>>> partition_of("site0001", 8)
1
>>> [partition_of(s, 64) for s in ("h1", "h1")]
[18, 18]
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DEFAULT_PARTITIONS = 64
"""Fixed once per deployment: changing it re-homes almost every site (modulo), so it is large and static."""

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv1a32(data: bytes) -> int:
    """FNV-1a, 32 bit: nats-server's partition hash (``getHashPartition``)."""
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def partition_of(site: str, partitions: int = DEFAULT_PARTITIONS) -> int:
    """The partition of a home: the same on every worker and in the broker's subject mapping."""
    if partitions <= 0:
        raise ValueError(f"partitions must be positive, got {partitions}")
    return fnv1a32(site.encode()) % partitions


UPLINK_TYPES = ("telemetry", "event", "status")
"""The message types devices publish; only these are mapped to partitions (``cmd`` must stay where it is)."""


def nats_mappings(partitions: int = DEFAULT_PARTITIONS) -> list[tuple[str, str]]:
    """The nats-server ``mappings`` entries: uplink ``ec.v1.{site}.{kind}.{dev}.{type}`` → ``part.{P}.ec.v1.…``.

    A mapping applies to every publish in the account, NATS-native ones included: a mapping of all of
    ``ec.v1.{site}.>`` also moved the downlink ``ec.v1.{site}.….cmd`` to ``part.{P}.…``, where no MQTT gateway
    subscription (``ec/v1/{site}/+/+/cmd``) ever saw it. So only the uplink types are mapped.

    >>> nats_mappings(8)[0]
    ('ec.v1.*.*.*.telemetry', 'part.{{partition(8,1)}}.ec.v1.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}.telemetry')
    """
    dest = f"part.{{{{partition({partitions},1)}}}}.ec.v1.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}.{{{{wildcard(3)}}}}"
    return [(f"ec.v1.*.*.*.{kind}", f"{dest}.{kind}") for kind in UPLINK_TYPES]


def preferred_owner(partition: int, workers: Iterable[str]) -> str:
    """Rendezvous (highest random weight) hashing: the live worker ranked first for ``partition``.

    Adding or removing a worker moves only the partitions it wins or held (no modulo over the member count).
    """
    best: tuple[bytes, str] | None = None
    for worker in workers:
        weight = hashlib.blake2b(f"{partition}:{worker}".encode(), digest_size=8).digest()
        if best is None or weight > best[0]:
            best = (weight, worker)
    if best is None:
        raise ValueError("no live worker")
    return best[1]


def assignment(partitions: int, workers: Sequence[str]) -> dict[str, list[int]]:
    """Every worker's preferred partitions (each partition goes to exactly one worker)."""
    out: dict[str, list[int]] = {w: [] for w in workers}
    for p in range(partitions):
        out[preferred_owner(p, workers)].append(p)
    return out


class LeaseLostError(Exception):
    """Raised when a worker acts on a partition whose lease it no longer holds (it is fenced)."""

    def __init__(self, partition: int, reason: str) -> None:
        """Record which partition was lost and why."""
        super().__init__(f"lease of partition {partition} lost: {reason}")
        self.partition = partition
        self.reason = reason


@dataclass(slots=True)
class Lease:
    """A worker's claim on one partition: the KV revision it wrote and when (its own monotonic clock).

    ``renewed_at`` is taken *before* the request that wrote ``revision``, so the local deadline always ends no
    later than the server's TTL. A process that was stopped (SIGSTOP, a long GC pause, a VM freeze) wakes up past
    its deadline and is fenced by :meth:`check` before it can acknowledge a message or raise an alert.
    """

    partition: int
    owner: str
    revision: int
    renewed_at: float
    ttl_s: float
    margin_s: float = 1.0
    lost: str | None = None

    @property
    def deadline(self) -> float:
        """Monotonic time after which this worker must consider the lease gone."""
        return self.renewed_at + self.ttl_s - self.margin_s

    def valid(self, now: float) -> bool:
        """True while the lease is held: not lost and not past its local deadline."""
        return self.lost is None and now < self.deadline

    def check(self, now: float) -> None:
        """Raise :class:`LeaseLostError` unless the lease is still held (the fence before every ack and alert)."""
        if self.lost is not None:
            raise LeaseLostError(self.partition, self.lost)
        if now >= self.deadline:
            self.lost = "not renewed before its deadline"
            raise LeaseLostError(self.partition, self.lost)
