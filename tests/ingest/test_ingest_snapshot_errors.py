"""A partition snapshot read that meets a JetStream error says so as SnapshotUnavailableError, never a raw error.

A scale-test investigation paused one NATS node and saw ``PartitionSnapshots.load`` raise ``ServiceUnavailableError``
(503) and ``nats.errors.TimeoutError`` from its pointer read: errors its contract did not name. The partition worker
catches only :class:`SnapshotUnavailableError` (then rebuilds from InfluxDB), so a raw error would have ended the
partition's restore and left its homes unwatched. The real cluster case is in tests/scale; this pins the contract.
"""

from __future__ import annotations

from typing import Any

import pytest
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import ServiceUnavailableError

from ingest.nats_bus import PartitionSnapshots, SnapshotUnavailableError


class _Entry:
    def __init__(self, value: bytes, revision: int) -> None:
        self.value, self.revision = value, revision


class _Pointers:
    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors

    async def get(self, _key: str) -> _Entry:
        if self.errors:
            raise self.errors.pop(0)
        return _Entry(b"p3-e7", 11)


class _Result:
    def __init__(self) -> None:
        self.data = b"snapshot"
        self.info = type("Info", (), {"description": "owner=w1 epoch=7"})()


class _Store:
    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.asked: list[str] = []

    async def get(self, name: str) -> _Result:
        self.asked.append(name)
        if self.errors:
            raise self.errors.pop(0)
        return _Result()


def _snapshots(pointer_errors: list[Exception], store_errors: list[Exception]) -> tuple[PartitionSnapshots, _Store]:
    store = _Store(store_errors)
    fake: Any = store
    pointers: Any = _Pointers(pointer_errors)
    return PartitionSnapshots(fake, pointers, clock=lambda: 0.0), store


async def test_a_jetstream_error_on_one_attempt_is_retried_and_the_snapshot_read() -> None:
    snaps, store = _snapshots([NatsTimeoutError()], [ServiceUnavailableError()])
    assert await snaps.load(3) == (b"snapshot", "owner=w1 epoch=7")
    assert store.asked == ["p3-e7", "p3-e7"]  # the pointer read failed once, the object read once


async def test_jetstream_errors_on_every_attempt_are_one_snapshot_unavailable_error() -> None:
    snaps, _ = _snapshots([NatsTimeoutError()], [ServiceUnavailableError(), ServiceUnavailableError()])
    with pytest.raises(SnapshotUnavailableError) as err:
        await snaps.load(3, attempts=3)
    assert err.value.failures == [
        "pointer not read (TimeoutError)",
        "p3-e7 not read (ServiceUnavailableError)",
        "p3-e7 not read (ServiceUnavailableError)",
    ]
