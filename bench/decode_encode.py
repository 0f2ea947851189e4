"""``python -m bench.decode_encode``: CPU µs per reading of the gateway service's batch path plus line protocol.

50,000 valid mattress messages (4 devices, one home) go through :meth:`GatewayService.handle_batch` in batches of
5,000 (decode, validate, dedupe) into a sink that encodes them with :func:`ingest.schema.to_lines`; no network, no
storage. Prints the best of 5 runs' CPU time per reading. To compare two trees, run it with each tree first on
``sys.path`` (``python -c "import sys; sys.path.insert(0, TREE); import runpy; runpy.run_module('bench.decode_encode',
run_name='__main__')"``) in the same minute: docs/benchmarks.md, "Decode → encode, profiled".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import msgspec

from gateway.deadletter import DeadLetter, DeadLetterCount
from gateway.listener import RawMessage  # where older trees have it too (comparisons)
from gateway.models import Reading
from gateway.service import GatewayService
from ingest.schema import to_lines

COUNT = 50_000
BATCH = 5_000


class _NoDeadLetters:
    def add_many(self, letters: Sequence[DeadLetter], *, counted: Sequence[DeadLetterCount] = ()) -> None:
        raise AssertionError(f"valid messages were refused: {letters[:1]}")


class _EncodeSink:
    lines = 0

    async def accept(self, readings: Sequence[Reading]) -> None:
        self.lines += len(to_lines(readings))


def messages(count: int = COUNT) -> list[RawMessage]:
    """Valid mattress telemetry as the listener hands it over."""
    enc = msgspec.json.Encoder()
    now = time.time_ns() // 1_000_000
    return [
        RawMessage(
            f"ec/v1/bench/mattress/bench{i % 4}/telemetry",
            enc.encode(
                {
                    "seq": i + 1,
                    "ts": now - count + i,
                    "occupied": True,
                    "hr": 40.0 + (i * 7) % 600 / 10,
                    "rr": 14.0,
                    "movement": i % 100,
                }
            ),
            i % 65_535 + 1,
            1,
            False,
            now,
            1,
        )
        for i in range(count)
    ]


async def per_reading_us(*, repeat: int = 5, count: int = COUNT) -> float:
    """Best CPU microseconds per reading over ``repeat`` runs."""
    raw = messages(count)
    best = float("inf")
    for _ in range(repeat):
        sink = _EncodeSink()
        service = GatewayService(directory=None, deadletter=_NoDeadLetters(), sink=sink)
        t = time.process_time()
        for k in range(0, count, BATCH):
            await service.handle_batch(raw[k : k + BATCH])
        best = min(best, time.process_time() - t)
        if sink.lines != count:
            raise AssertionError(f"{sink.lines} lines for {count} messages")
    return best / count * 1e6


if __name__ == "__main__":
    print(f"{asyncio.run(per_reading_us()):.2f} µs CPU per reading (decode, validate, dedupe, line protocol)")
