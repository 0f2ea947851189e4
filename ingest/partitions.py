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


Z2M_UPLINKS = ("*", "*.availability", "bridge.*")
"""The Zigbee2MQTT uplinks mapped, as subject tokens after ``z2m.{site}.``: a device's state (``{friendly_name}``),
its availability, and the bridge's topics (``bridge/state``, ``bridge/devices``, ``bridge/event``, …). Commands to
the bridge (``{name}/set``, ``{name}/get``, ``bridge/request/…``) match none of them: they stay where the bridge's
``z2m/{site}/#`` subscription sees them."""

Z2M_COMMANDS = ("+/set", "+/set/+", "+/get", "+/get/+", "bridge/request/#")
"""MQTT filters (under ``z2m/{site}/``) of the commands to a Zigbee2MQTT bridge: none of them is mapped."""


def nats_mappings(partitions: int = DEFAULT_PARTITIONS) -> list[tuple[str, str]]:
    """The nats-server ``mappings`` entries: uplinks → ``part.{P}.…``, with ``P`` hashed on the site token.

    Contract v1: ``ec.v1.{site}.{kind}.{dev}.{type}`` → ``part.{P}.ec.v1.…``. Zigbee2MQTT: ``z2m.{site}.…`` →
    ``part.{P}.z2m.…`` for the shapes of :data:`Z2M_UPLINKS`; the site is token 2 of both, so a home's two kinds
    of traffic share a partition, and one worker.

    A mapping applies to every publish in the account, NATS-native ones included: a mapping of all of
    ``ec.v1.{site}.>`` also moved the downlink ``ec.v1.{site}.….cmd`` to ``part.{P}.…``, where no MQTT gateway
    subscription (``ec/v1/{site}/+/+/cmd``) ever saw it. So only the uplink types are mapped. For the same reason
    ``z2m.*.>`` (which nats-server 2.9.10 accepts, with ``>`` in the destination) is not used: it would move
    ``z2m/{site}/{name}/set``. Overlapping sources (``z2m.{site}.bridge.availability``) have the same destination,
    so the order in which nats-server tries them (a Go map's) does not matter.

    >>> nats_mappings(8)[0]
    ('ec.v1.*.*.*.telemetry', 'part.{{partition(8,1)}}.ec.v1.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}.telemetry')
    >>> nats_mappings(8)[-1]
    ('z2m.*.bridge.*', 'part.{{partition(8,1)}}.z2m.{{wildcard(1)}}.bridge.{{wildcard(2)}}')
    """
    part = f"part.{{{{partition({partitions},1)}}}}"
    dest = f"{part}.ec.v1.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}.{{{{wildcard(3)}}}}"
    out = [(f"ec.v1.*.*.*.{kind}", f"{dest}.{kind}") for kind in UPLINK_TYPES]
    for shape in Z2M_UPLINKS:
        tokens, n = [], 1
        for token in shape.split("."):
            if token == "*":
                n += 1
                tokens.append(f"{{{{wildcard({n})}}}}")
            else:
                tokens.append(token)
        out.append((f"z2m.*.{shape}", f"{part}.z2m.{{{{wildcard(1)}}}}.{'.'.join(tokens)}"))
    return out


_RESERVED_Z2M_NAMES = ("bridge",)


def z2m_name_problem(name: str) -> str | None:
    """Why a Zigbee2MQTT friendly name cannot travel through the cluster, or None if it can.

    Measured on nats-server 2.9.10 (tests/scale/test_scale_z2m.py): a topic with a space or a dot (or any
    whitespace) is a protocol violation; the server closes the connection without a PUBACK (and publishes the
    bridge's Last Will). A name with ``/`` is several topic levels, which the mapping cannot tell from a command
    (``room/lamp`` from ``lamp/set``), so its states are not mapped to any partition.

    >>> z2m_name_problem("door-sensor") is None
    True
    >>> z2m_name_problem("kitchen/gas")
    "has a '/': the mapping routes one level (it cannot tell room/lamp from lamp/set)"
    """
    if not name:
        return "is empty"
    if any(c.isspace() or c == "\x7f" for c in name):
        return "has a space (or other whitespace): nats-server 2.9 closes the bridge's connection on its topic"
    if "." in name:
        return "has a dot: nats-server 2.9 closes the bridge's connection on its topic"
    if "/" in name:
        return "has a '/': the mapping routes one level (it cannot tell room/lamp from lamp/set)"
    if "+" in name or "#" in name:
        return "has an MQTT wildcard character"
    if name in _RESERVED_Z2M_NAMES:
        return "is a Z2M topic of its own (bridge)"
    return None


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
