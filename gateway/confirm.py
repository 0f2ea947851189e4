"""End-to-end acknowledgement: tell each home gateway which of its readings the backend holds durably.

mosquitto acknowledges a QoS 1 publish before it has saved it, so a broker killed with messages in memory loses
them although the gateway saw its PUBACK (docs/storage.md, "What survives what"). The project's own gateways
therefore keep every reading in a local outbox until the *backend* confirms it, and republish the rest. Once a
batch is durable (InfluxDB or the fsynced spool, the point where the backend PUBACKs it), its ``(device, seq)``
are collected here; every ``interval_s`` one message per gateway carries everything confirmed since the last one:

``ec/v1/{site}/gateway/{gw}/cmd``  ``{"cmd": "stored", "seqs": {"mat1": [[1041, 1060], [1062, 1062]]}}``

``seqs`` maps each device to closed ranges of sequence numbers. Confirmations go out at QoS 0: a lost one only
makes the gateway republish readings the backend then drops as duplicates (or stores again over the same point).
A gateway that does not read them ignores an unknown ``cmd``, as the contract asks (docs/contract.md).

>>> c = StoredConfirmations()
>>> c.add([("h1", "mat1", 3), ("h1", "mat1", 1), ("h1", "mat1", 2), ("h1", "band1", 9), ("h1", "mat1", 7)])
>>> [(t, p.decode()) for t, p in c.drain()]
[('ec/v1/h1/gateway/gw-h1/cmd', '{"cmd":"stored","seqs":{"mat1":[[1,3],[7,7]],"band1":[[9,9]]}}')]
>>> c.drain()
[]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

import msgspec

from gateway.models import CONTRACT_PREFIX

STORED_CMD: Final = "stored"
"""The ``cmd`` value of a confirmation."""

_ENCODER: Final = msgspec.json.Encoder()


def default_gateway(site: str) -> str:
    """The gateway id a registry entry without one gets (docs/registry.md)."""
    return f"gw-{site}"


def stored_topic(site: str, gateway: str) -> str:
    """The downlink topic confirmations of ``site`` go to (a gateway already reads ``ec/v1/{site}/+/+/cmd``).

    >>> stored_topic("h1", "gw-h1")
    'ec/v1/h1/gateway/gw-h1/cmd'
    """
    return f"{CONTRACT_PREFIX}/{site}/gateway/{gateway}/cmd"


def ranges(seqs: Iterable[int]) -> list[list[int]]:
    """Sorted, merged closed ranges of sequence numbers.

    >>> ranges([5, 1, 2, 3, 3, 9, 10])
    [[1, 3], [5, 5], [9, 10]]
    """
    out: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if out and seq == out[-1][1] + 1:
            out[-1][1] = seq
        else:
            out.append([seq, seq])
    return out


class StoredConfirmations:
    """Confirmed ``(site, device, seq)`` waiting to be sent, coalesced per gateway (not thread-safe: one loop)."""

    def __init__(self, *, gateway_of: Callable[[str], str | None] | None = None) -> None:
        self._gateway_of = gateway_of
        self._pending: dict[str, dict[str, list[int]]] = {}

    def __len__(self) -> int:
        return sum(len(seqs) for devices in self._pending.values() for seqs in devices.values())

    def add(self, keys: Iterable[tuple[str, str, int]]) -> None:
        """Remember durable readings (called once their batch is durable)."""
        pending = self._pending
        for site, device, seq in keys:
            pending.setdefault(site, {}).setdefault(device, []).append(seq)

    def drain(self) -> list[tuple[str, bytes]]:
        """One ``(topic, payload)`` per gateway for everything added since the last drain."""
        pending, self._pending = self._pending, {}
        out: list[tuple[str, bytes]] = []
        for site, devices in pending.items():
            gateway = (self._gateway_of(site) if self._gateway_of is not None else None) or default_gateway(site)
            body = {"cmd": STORED_CMD, "seqs": {device: ranges(seqs) for device, seqs in devices.items()}}
            out.append((stored_topic(site, gateway), _ENCODER.encode(body)))
        return out
