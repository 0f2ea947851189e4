"""Component tests of the service: messages fed straight in (no broker), in-memory sink, real dead-letter file."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from gateway.deadletter import DeadLetterStore
from gateway.errors import Reason
from gateway.listener import RawMessage
from gateway.metrics import GatewayMetrics, RateLimitedWarnings, render_metrics
from gateway.models import DeviceKind, Reading
from gateway.provisioning import SiteDevices, StaticDirectory
from gateway.service import GatewayService, ListSink, LoggingSink

NOW = 1_750_000_000_000
DIRECTORY = StaticDirectory(
    [SiteDevices(site="h1", gateway="gw", devices={"btn1": DeviceKind.CALL_BUTTON, "mat1": DeviceKind.MATTRESS})]
)


def raw(topic: str, payload: bytes, mid: int = 1) -> RawMessage:
    return RawMessage(topic=topic, payload=payload, mid=mid, qos=1, retain=False, received_ms=NOW)


def press(seq: int) -> RawMessage:
    return raw("ec/v1/h1/call_button/btn1/event", b'{"event":"press","seq":%d,"ts":%d}' % (seq, NOW), mid=seq)


def sample(seq: int, hr: int = 60) -> RawMessage:
    return raw("ec/v1/h1/mattress/mat1/telemetry", b'{"seq":%d,"ts":%d,"occupied":true,"hr":%d}' % (seq, NOW, hr), seq)


class Source:
    """A message source fed by the test: yields given batches, records acknowledgements."""

    def __init__(self, batches: list[list[RawMessage]]) -> None:
        self._batches = batches
        self.acked: list[int] = []
        self.queue_depth = 0
        self.connected = True

    async def batches(self, *, max_batch: int = 0, max_wait_s: float = 0) -> AsyncIterator[list[RawMessage]]:
        for batch in self._batches:
            yield batch

    def ack(self, messages: Sequence[RawMessage]) -> int:
        self.acked += [m.mid for m in messages]
        return len(messages)


class Journal:
    """Sink that records the order of events across fast path, sink and acknowledgements."""

    def __init__(self, log: list[str], failures: int = 0) -> None:
        self.log = log
        self.failures = failures

    async def accept(self, readings: Sequence[Reading]) -> None:
        if self.failures:
            self.failures -= 1
            self.log.append("sink failed")
            raise ConnectionError("influx down")
        self.log.append(f"sink {[r.seq for r in readings]}")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeadLetterStore]:
    with DeadLetterStore.in_data_dir(tmp_path) as dead_letters:
        yield dead_letters


async def test_fast_path_first_then_sink_then_ack_and_retries_until_durable(store: DeadLetterStore) -> None:
    log: list[str] = []
    sink = Journal(log, failures=2)
    metrics = GatewayMetrics()

    class LoggedSource(Source):
        def ack(self, messages: Sequence[RawMessage]) -> int:
            log.append(f"ack {[m.mid for m in messages]}")
            return super().ack(messages)

    service = GatewayService(
        directory=DIRECTORY,
        deadletter=store,
        sink=sink,
        metrics=metrics,
        fast_path=lambda r: log.append(f"fast {r.event} {r.seq}"),
        retry_min_s=0.001,
    )
    source = LoggedSource([[sample(1), press(2), sample(3)], [sample(4)]])
    await service.run(source)
    assert log == [
        "fast press 2",
        "sink failed",
        "sink failed",
        "sink [1, 2, 3]",
        "ack [1, 2, 3]",
        "sink [4]",
        "ack [4]",
    ]
    assert metrics.value("sink_retries_total") == 2
    assert metrics.value("messages_acked_total") == 4
    assert metrics.value("life_safety_total") == 1


async def test_duplicates_are_dropped_counted_and_still_acknowledged(store: DeadLetterStore) -> None:
    sink, metrics = ListSink(), GatewayMetrics()
    service = GatewayService(directory=DIRECTORY, deadletter=store, sink=sink, metrics=metrics)
    source = Source([[sample(1), sample(2), sample(1)], [sample(2, hr=99), sample(3)]])
    await service.run(source)
    assert [(r.seq, r.fields["hr"]) for r in sink.readings] == [(1, 60.0), (2, 60.0), (3, 60.0)]
    assert source.acked == [1, 2, 1, 2, 3]
    assert metrics.value("duplicates_total") == 2
    assert store.count() == 0


async def test_a_batch_that_never_became_durable_passes_again_when_redelivered(store: DeadLetterStore) -> None:
    log: list[str] = []
    sink = Journal(log, failures=10**6)
    service = GatewayService(directory=DIRECTORY, deadletter=store, sink=sink, retry_min_s=0.001, retry_max_s=0.001)
    attempt = asyncio.create_task(service.handle_batch([sample(1)]))
    while len(log) < 3:
        await asyncio.sleep(0.001)
    attempt.cancel()  # the process dies while the sink is down
    with pytest.raises(asyncio.CancelledError):
        await attempt
    sink.failures = 0
    assert [r.seq for r in await service.handle_batch([sample(1)])] == [1]  # the redelivered copy is not a duplicate


async def test_bad_messages_are_dead_lettered_and_never_stop_the_loop(store: DeadLetterStore) -> None:
    sink, metrics = ListSink(), GatewayMetrics()
    service = GatewayService(directory=DIRECTORY, deadletter=store, sink=sink, metrics=metrics)
    batch = [
        sample(1),
        raw("ec/v1/h1/mattress/mat1/telemetry", b"\x00garbage", mid=2),
        raw("ec/v1/zz/mattress/mat1/telemetry", b"{}", mid=3),
        raw("nonsense", b"{}", mid=4),
        sample(5, hr=999),
        sample(6),
    ]
    source = Source([batch])
    await service.run(source)
    assert [r.seq for r in sink.readings] == [1, 6]
    assert source.acked == [1, 2, 3, 4, 5, 6]
    assert [e.reason for e in store.query()] == [
        Reason.OUT_OF_RANGE,
        Reason.BAD_TOPIC,
        Reason.UNKNOWN_SITE,
        Reason.BAD_JSON,
    ]
    assert store.query(reason=Reason.BAD_JSON)[0].payload == b"\x00garbage"
    text = render_metrics(metrics)
    assert 'eldercare_gateway_dead_letters_total{reason="bad_json"} 1.0' in text
    assert 'eldercare_gateway_readings_decoded_total{kind="mattress"} 2.0' in text
    assert "eldercare_gateway_messages_received_total 6.0" in text
    assert "eldercare_gateway_connected 1.0" in text


async def test_a_failing_fast_path_or_decoder_bug_is_contained(
    store: DeadLetterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink, metrics = ListSink(), GatewayMetrics()

    def explode(_r: Reading) -> None:
        raise RuntimeError("alert queue broken")

    service = GatewayService(directory=DIRECTORY, deadletter=store, sink=sink, metrics=metrics, fast_path=explode)
    await service.run(Source([[press(1)]]))
    assert [r.seq for r in sink.readings] == [1]  # still durable even though the fast path failed
    assert metrics.value("fast_path_errors_total") == 1

    import gateway.service as service_module

    def buggy(*_a: object, **_k: object) -> Reading:
        raise ZeroDivisionError

    monkeypatch.setattr(service_module, "decode_message", buggy)
    await service.run(Source([[press(2)]]))
    (entry,) = store.query()
    assert entry.reason is Reason.BAD_SCHEMA and "ZeroDivisionError" in entry.detail


async def test_clock_skew_is_counted(store: DeadLetterStore) -> None:
    sink, metrics = ListSink(), GatewayMetrics()
    service = GatewayService(directory=DIRECTORY, deadletter=store, sink=sink, metrics=metrics, max_skew_ms=1000)
    skewed = raw("ec/v1/h1/mattress/mat1/telemetry", b'{"seq":1,"ts":5,"occupied":false}')
    (reading,) = await service.handle_batch([skewed])
    assert reading.clock_skewed and reading.time_ms == NOW
    assert metrics.value("clock_skewed_total") == 1


async def test_logging_sink_summarises(caplog: pytest.LogCaptureFixture, store: DeadLetterStore) -> None:
    sink = LoggingSink()
    service = GatewayService(directory=None, deadletter=store, sink=sink)
    with caplog.at_level(logging.INFO):
        await service.handle_batch([sample(1), press(2)])
    assert sink.count == 2 and "accepted 2 readings" in caplog.text


def test_warnings_are_rate_limited_per_reason(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    warn = RateLimitedWarnings(logger=logging.getLogger("t"), burst=2, period_s=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        logged = [warn.warn(topic="t/1", reason=Reason.BAD_JSON, detail="x") for _ in range(5)]
        assert warn.warn(topic="t/2", reason=Reason.OVERSIZE, detail="y")
        now[0] = 11
        assert warn.warn(topic="t/3", reason=Reason.BAD_JSON, detail="z")
    assert logged == [True, True, False, False, False]
    assert "3 more messages refused as bad_json" in caplog.text
    assert caplog.text.count("Refused message") == 4


async def test_a_retained_status_replayed_on_subscribe_keeps_its_own_time(store: DeadLetterStore) -> None:
    sink = ListSink()
    service = GatewayService(directory=DIRECTORY, deadletter=store, sink=sink, max_skew_ms=1000)
    # Two days old: beyond the backfill window, so only the retained replay keeps its own time.
    old_ms = NOW - 2 * 86_400_000
    old = b'{"online":true,"seq":3,"ts":%d}' % old_ms
    replayed = RawMessage("ec/v1/h1/gateway/gw/status", old, mid=1, qos=1, retain=True, received_ms=NOW)
    live = RawMessage("ec/v1/h1/gateway/gw/status", old.replace(b":3,", b":4,"), 2, 1, False, NOW)
    first, second = await service.handle_batch([replayed, live])
    assert not first.clock_skewed and first.time_ms == old_ms
    assert second.clock_skewed and second.time_ms == NOW


class EndlessSource(Source):
    """Yields its batches, then waits for more forever (a quiet broker)."""

    async def batches(self, *, max_batch: int = 0, max_wait_s: float = 0) -> AsyncGenerator[list[RawMessage], None]:
        for batch in self._batches:
            yield batch
        await asyncio.Event().wait()
        yield []  # pragma: no cover


async def test_stop_finishes_and_acknowledges_the_batch_in_hand(store: DeadLetterStore) -> None:
    stop = asyncio.Event()

    class StoppingSink(ListSink):
        async def accept(self, readings: Sequence[Reading]) -> None:
            stop.set()  # shutdown requested while this batch is being made durable
            await super().accept(readings)

    sink = StoppingSink()
    service = GatewayService(directory=DIRECTORY, deadletter=store, sink=sink)
    source = EndlessSource([[sample(1), sample(2)], [sample(3)]])
    await asyncio.wait_for(service.run(source, stop=stop), 5)
    # Batches already taken (and fast-pathed: issue 17) when the stop came are finished and acknowledged.
    assert source.acked == [1, 2, 3]
    assert [r.seq for r in sink.readings] == [1, 2, 3]


async def test_stop_ends_a_quiet_loop(store: DeadLetterStore) -> None:
    stop = asyncio.Event()
    source = EndlessSource([[sample(1)]])
    service = GatewayService(directory=DIRECTORY, deadletter=store, sink=ListSink())
    running = asyncio.create_task(service.run(source, stop=stop))
    while not source.acked:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(running, 5)
    assert source.acked == [1]


async def test_readings_are_confirmed_only_once_durable_and_copies_are_confirmed_again(
    store: DeadLetterStore,
) -> None:
    """End-to-end acknowledgement (issue 13): the ``on_stored`` hook sees a batch after the sink, never before;
    a copy dropped as a duplicate is confirmed again (the first confirmation may have been lost); a refused
    message is not confirmed."""
    log: list[str] = []
    sink = Journal(log, failures=1)
    service = GatewayService(
        directory=DIRECTORY,
        deadletter=store,
        sink=sink,
        retry_min_s=0.001,
        on_stored=lambda keys: log.append(f"stored {sorted(seq for _s, _d, seq in keys)}"),
    )
    bad = raw("ec/v1/h1/mattress/mat1/telemetry", b'{"seq":9,"ts":"x"}', mid=9)
    source = Source([[sample(1), press(2), bad], [sample(1), sample(3)]])
    await service.run(source)
    assert log == ["sink failed", "sink [1, 2]", "stored [1, 2]", "sink [3]", "stored [1, 3]"]
    assert store.count() == 1  # the refused message: dead-lettered, not confirmed


async def test_a_press_is_fast_pathed_while_earlier_batches_wait_for_the_sink(store: DeadLetterStore) -> None:
    """Issue 17: the fast path does not wait for the batches before it to become durable; acks keep order."""
    released = asyncio.Event()
    fast: list[int] = []
    log: list[str] = []

    class HeldSink(Journal):
        async def accept(self, readings: Sequence[Reading]) -> None:
            await released.wait()  # InfluxDB slow: the first batch stays on its way to durable
            await super().accept(readings)

    def fast_path(reading: Reading) -> None:
        fast.append(reading.seq or 0)
        released.set()  # the positive signal: the press got through while the samples were held

    service = GatewayService(directory=DIRECTORY, deadletter=store, sink=HeldSink(log), fast_path=fast_path)
    source = Source([[sample(1), sample(2)], [sample(3)], [press(4)]])
    await asyncio.wait_for(service.run(source), 5)
    assert fast == [4]
    assert log == ["sink [1, 2]", "sink [3]", "sink [4]"]  # durability and acknowledgements in arrival order
    assert source.acked == [1, 2, 3, 4]


async def test_batches_are_written_concurrently_but_handed_on_and_acknowledged_in_arrival_order(
    store: DeadLetterStore,
) -> None:
    """Issue 17, drain: with ``max_in_flight=2`` the next batch is on its way to durable while the one before it is
    still being written (the broker's window keeps moving); the durable hook and the acks still follow arrival order,
    even when the later write finishes first."""
    log: list[str] = []
    second_done = asyncio.Event()

    class OverlappingSink:
        async def accept(self, readings: Sequence[Reading]) -> None:
            seqs = [r.seq for r in readings]
            log.append(f"write {seqs}")
            if seqs == [1, 2]:
                await second_done.wait()  # the positive signal: the second write ran while this one waited
            log.append(f"durable {seqs}")
            if seqs == [3]:
                second_done.set()

    class LoggedSource(Source):
        def ack(self, messages: Sequence[RawMessage]) -> int:
            log.append(f"ack {[m.mid for m in messages]}")
            return super().ack(messages)

    service = GatewayService(
        directory=DIRECTORY,
        deadletter=store,
        sink=OverlappingSink(),
        on_durable=lambda readings: log.append(f"detect {[r.seq for r in readings]}"),
    )
    source = LoggedSource([[sample(1), sample(2)], [sample(3)]])
    await asyncio.wait_for(service.run(source, max_in_flight=2), 5)
    assert log == [
        "write [1, 2]",
        "write [3]",
        "durable [3]",
        "durable [1, 2]",
        "detect [1, 2]",
        "ack [1, 2]",
        "detect [3]",
        "ack [3]",
    ]


async def test_one_batch_in_flight_by_default(store: DeadLetterStore) -> None:
    """Without ``max_in_flight`` a batch is made durable, handed on and acknowledged before the next is written."""
    log: list[str] = []

    class LoggedSource(Source):
        def ack(self, messages: Sequence[RawMessage]) -> int:
            log.append(f"ack {[m.mid for m in messages]}")
            return super().ack(messages)

    service = GatewayService(
        directory=DIRECTORY,
        deadletter=store,
        sink=Journal(log),
        on_durable=lambda readings: log.append(f"detect {[r.seq for r in readings]}"),
    )
    await service.run(LoggedSource([[sample(1)], [sample(2)]]))
    assert log == ["sink [1]", "detect [1]", "ack [1]", "sink [2]", "detect [2]", "ack [2]"]
