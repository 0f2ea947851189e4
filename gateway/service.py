"""The gateway service: decode, validate, dead-letter, deduplicate, fast-path, hand on, acknowledge.

For each batch from the listener: every message is decoded (:func:`gateway.contract.decode_message`), unless it is
over its home's budget of messages that are not life-safety (:mod:`gateway.budget`: counted, not stored, not
confirmed); a refused one goes to the dead-letter record with its reason; a redelivered copy is dropped; a
life-safety reading (SOS, fall, smoke alarm, call button) goes to the fast path at once, before
anything is batched; then the readings go to the :class:`ReadingSink`, and only when the sink and the
dead-letter record are durable is the batch acknowledged to the broker. Bad input never stops the
loop; a failing sink is retried with backoff, never dropped (unacknowledged messages stay with the
broker meanwhile).

A life-safety reading never waits for the batches before it (issue 17): while one batch is being made
durable (the InfluxDB write, then the detection feed) the next ones are already taken from the listener,
decoded and their life-safety readings handed to the fast path; durability and acknowledgements still
follow arrival order. What is taken ahead is bounded by :data:`MAX_AHEAD` messages (and by the broker's in-flight
window: nothing is acknowledged before it is durable).

Draining a queue (a restart behind a backlog, issue 17) the time goes to the InfluxDB write round trips, during
which the broker's in-flight window stays full of unacknowledged messages. ``run(max_in_flight=N)`` lets up to N
batches be on their way to durable at once (the sink sees concurrent ``accept`` calls); the ``on_durable`` hook
(detection's feed), the dedupe window, the stored-confirmations and the acknowledgements still follow arrival
order, each batch only once it and every batch before it are durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import Counter as Tally
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import msgspec

from gateway.budget import SiteBudget
from gateway.contract import DEFAULT_MAX_SKEW_MS, MAX_PAYLOAD_BYTES, DeviceDirectory, decode_message, plain_site
from gateway.deadletter import DeadLetter, DeadLetterCount, site_of
from gateway.dedupe import Deduplicator
from gateway.errors import DecodeError, Reason
from gateway.listener import RawMessage
from gateway.metrics import GatewayMetrics, RateLimitedWarnings
from gateway.models import CONTRACT_PREFIX, DeviceKind, MessageType, Reading
from gateway.retained import clears
from gateway.retry import Backoff, retry
from gateway.z2m.adapter import Z2mAdapter, bridge_site

_LOG: Final = logging.getLogger(__name__)

_EVENT_SUFFIX: Final = "/" + MessageType.EVENT.value

MAX_AHEAD: Final = 5000
"""Messages taken and fast-pathed while waiting behind the batch being made durable (one more batch may be taken
once fewer wait). Each costs memory (decoded readings): peak RSS of a 100,000-message drain in batches of up to
5,000 was 65 MiB with nothing taken ahead, 75 MiB with one batch, 80 MiB with two, 110 MiB with eight."""

FastPath = Callable[[Reading], None]
"""Called synchronously with each life-safety reading before it is batched; must not block."""

DurableHook = Callable[[Sequence[Reading]], None | Awaitable[None]]
"""Sees each batch of new readings once durable, in arrival order (detection's feed); may be a coroutine function.
An exception is logged, never retried: detection must not make the ingest path redeliver or stall."""

OnRefused = Callable[[list[str]], None]
"""Called with the topics of a durable batch whose refusal asks the broker to drop what is retained there
(:func:`gateway.retained.clears`: a made-up device id, kind or site, never a registered device's topic)."""

OnStored = Callable[[list[tuple[str, str, int]]], None]
"""Called with the ``(site, device, seq)`` of every contract message of a batch once it is durable (including
copies already stored before), for the gateways' end-to-end acknowledgement (:mod:`gateway.confirm`)."""

_CONTRACT_TOPIC: Final = CONTRACT_PREFIX + "/"


class ReadingSink(Protocol):
    """Where decoded readings go (the ingest writer); ``accept`` returns once they are durable."""

    async def accept(self, readings: Sequence[Reading]) -> None:
        """Make ``readings`` durable (written or spooled), or raise to have the batch retried."""
        ...


class DeadLetterRecord(Protocol):
    """Where refused messages go (:class:`gateway.deadletter.DeadLetterStore`)."""

    def add_many(self, letters: Sequence[DeadLetter], *, counted: Sequence[DeadLetterCount] = ()) -> None:
        """Store entries (and refusals only counted) durably, in one transaction."""
        ...


class MessageSource(Protocol):
    """Batches of raw messages with acknowledgement (:func:`gateway.listener.create_listener`)."""

    @property
    def connected(self) -> bool:
        """True while the source is connected to the broker."""
        ...

    @property
    def queue_depth(self) -> int:
        """Messages received but not yet handed out."""
        ...

    def batches(self, *, max_batch: int = ..., max_wait_s: float = ...) -> AsyncGenerator[list[RawMessage], None]:
        """Yield batches of received messages."""
        ...

    def ack(self, messages: Sequence[RawMessage]) -> int:
        """Acknowledge messages once durable."""
        ...


@dataclass(slots=True)
class _Prepared:
    """A batch decoded, deduplicated and fast-pathed, waiting to be made durable."""

    readings: list[Reading] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    seen: set[tuple[str, str, int]] = field(default_factory=set)
    order: list[tuple[str, str, int]] = field(default_factory=list)
    """Dedupe keys in arrival order, remembered once durable (a reboot resets the window)."""
    confirm: list[tuple[str, str, int]] = field(default_factory=list)
    """Keys to confirm to their gateways once durable, copies included (end-to-end acknowledgement)."""
    cleared: list[str] = field(default_factory=list)
    """Refused topics whose retained message the broker is to drop (:mod:`gateway.retained`)."""
    counted: list[DeadLetterCount] = field(default_factory=list)
    """Refusals recorded as a count only (messages over a home's budget beyond the one sample kept per home)."""


_OVER_BUDGET: Final = DecodeError("", Reason.OVER_BUDGET, "over its home's budget")
"""What :meth:`GatewayService._decoded` gives instead of a reading over its home's budget (one shared instance)."""


@dataclass(slots=True)
class _OverBudget:
    """The messages of one batch over their home's budget (:mod:`gateway.budget`), per home."""

    sites: dict[str, list[Any]] = field(default_factory=dict)
    """site -> [how many, first receive time, last receive time, the first message (kept as a sample)]."""
    topics: dict[str, list[Any]] = field(default_factory=dict)
    """topic -> its site's entry in :attr:`sites` (a flood repeats its topics: one parse each)."""

    def add(self, message: RawMessage) -> None:
        held = self.topics.get(message.topic)
        if held is None:
            site = site_of(message.topic) or ""
            held = self.sites.get(site)
            if held is None:
                held = self.sites[site] = [0, message.received_ms, message.received_ms, message]
            self.topics[message.topic] = held
        held[0] += 1
        at = message.received_ms
        if at < held[1]:
            held[1] = at
        elif at > held[2]:
            held[2] = at

    def record(self, batch: _Prepared, budget: SiteBudget | None) -> int:
        """Add one sample per home to ``batch``'s dead letters and the rest to its counts; return how many."""
        total = 0
        for site, (n, first_ms, last_ms, sample) in self.sites.items():
            total += n
            batch.letters.append(
                DeadLetter(
                    received_ms=sample.received_ms,
                    topic=sample.topic,
                    reason=Reason.OVER_BUDGET,
                    detail=f"{n} messages of this home over its budget ({budget}) in one batch, this the first:"
                    " counted, not stored, not confirmed",
                    payload=sample.payload,
                )
            )
            if n > 1:
                batch.counted.append(
                    DeadLetterCount(
                        site=site, reason=Reason.OVER_BUDGET, count=n - 1, first_ms=first_ms, last_ms=last_ms
                    )
                )
        return total


class GatewayService:
    """Turns raw MQTT batches into durable readings; see the module docstring for the order of steps."""

    def __init__(
        self,
        *,
        directory: DeviceDirectory | None,
        deadletter: DeadLetterRecord,
        sink: ReadingSink,
        dedupe: Deduplicator | None = None,
        metrics: GatewayMetrics | None = None,
        max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        fast_path: FastPath | None = None,
        retry_min_s: float = 0.2,
        retry_max_s: float = 30.0,
        z2m: Z2mAdapter | None = None,
        on_stored: OnStored | None = None,
        on_durable: DurableHook | None = None,
        on_refused: OnRefused | None = None,
        budget: SiteBudget | None = None,
    ) -> None:
        self.directory = directory
        self.deadletter = deadletter
        self.sink = sink
        self.dedupe = dedupe if dedupe is not None else Deduplicator()
        self.metrics = metrics if metrics is not None else GatewayMetrics()
        self.max_skew_ms = max_skew_ms
        self.max_payload_bytes = max_payload_bytes
        self.fast_path = fast_path
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self._warnings = RateLimitedWarnings(logger=_LOG)
        self.z2m = z2m if z2m is not None else Z2mAdapter(directory=directory)
        self.on_stored = on_stored
        self.on_durable = on_durable
        self.on_refused = on_refused
        self.budget = budget

    def _decode(self, message: RawMessage) -> Reading | DecodeError:
        if message.oversize:
            return DecodeError(message.topic, Reason.OVERSIZE, f"{message.size} bytes > {self.max_payload_bytes}")
        if message.retain and message.topic.endswith(_EVENT_SUFFIX):
            # MQTT sets the retain flag only on copies sent because of a new subscription (a restart, a
            # reconnect without session): an event that happened before, which must not raise an alert again.
            # A live event published with the retain flag arrives without it and is processed as usual.
            return DecodeError(message.topic, Reason.RETAINED_EVENT, "retained event replayed by the broker")
        try:
            return decode_message(
                message.topic,
                message.payload,
                received_ms=message.received_ms,
                directory=self.directory,
                max_skew_ms=self.max_skew_ms,
                max_payload_bytes=self.max_payload_bytes,
            )
        except DecodeError as exc:
            return exc
        except RecursionError:  # msgspec on JSON nested thousands deep: not JSON we accept, no traceback
            return DecodeError(message.topic, Reason.BAD_JSON, "JSON nested too deeply")
        except Exception as exc:  # a decoder bug must not stop the loop: keep the message for inspection
            _LOG.exception("Decoder failed on %r", message.topic)
            return DecodeError(message.topic, Reason.BAD_SCHEMA, f"decoder error ({type(exc).__name__})")

    def _decoded(self, raw: Sequence[RawMessage]) -> Iterator[tuple[RawMessage, Reading | DecodeError]]:
        """Each message with its result; a Zigbee2MQTT message (topic prefix ``z2m/``) has zero or more.

        With a budget (:mod:`gateway.budget`), a message whose topic says it cannot be life-safety (a contract
        message's, a Zigbee2MQTT bridge's) spends its home's budget before it is decoded, one message and one more
        per KiB; every other reading once decoded; one over it is :data:`_OVER_BUDGET` instead.
        """
        budget = self.budget
        now = budget.clock() if budget is not None else 0.0
        for message in raw:
            checked = False
            if budget is not None and (site := plain_site(message.topic) or bridge_site(message.topic)) is not None:
                if not budget.take(site, now=now, cost=1 + len(message.payload) // 1024):
                    yield message, _OVER_BUDGET
                    continue
                checked = True
            if self.z2m.handles(message.topic) and not message.oversize:
                for result in self.z2m.decode(
                    message.topic,
                    message.payload,
                    received_ms=message.received_ms,
                    retained=message.retain,
                    mid=message.mid,
                ):
                    yield message, result if checked else self._within_budget(result, now)
            else:
                result = self._decode(message)
                yield message, result if checked else self._within_budget(result, now)

    def _within_budget(self, result: Reading | DecodeError, now: float) -> Reading | DecodeError:
        """``result``, or :data:`_OVER_BUDGET` for a reading that is not life-safety beyond its home's budget."""
        budget = self.budget
        if budget is None or isinstance(result, DecodeError) or result.is_life_safety:
            return result
        return result if budget.take(result.site, now=now) else _OVER_BUDGET

    def _fast(self, reading: Reading) -> None:
        if self.fast_path is None:
            return
        try:
            self.fast_path(reading)
        except Exception:
            self.metrics.fast_path_errors.inc()
            _LOG.exception("Life-safety fast path failed for %s/%s", reading.site, reading.device)

    async def handle_batch(self, raw: Sequence[RawMessage]) -> list[Reading]:
        """Decode and hand on one batch; return the new readings once they (and dead letters) are durable."""
        return await self._make_durable(self._prepare(self._decoded(raw), received=len(raw)))

    async def handle_decoded(
        self, results: Iterable[tuple[RawMessage, Reading | DecodeError]], *, received: int
    ) -> list[Reading]:
        """Hand on messages another adapter already decoded (4G watches, gateway/watch), as :meth:`handle_batch`.

        Life-safety readings go to the fast path while iterating, before anything is awaited; returns once the
        readings and refusals are durable.
        """
        if self.budget is not None:
            now = self.budget.clock()
            results = ((message, self._within_budget(result, now)) for message, result in results)
        return await self._make_durable(self._prepare(results, received=received))

    def _prepare(
        self,
        results: Iterable[tuple[RawMessage, Reading | DecodeError]],
        *,
        received: int,
        pending: set[tuple[str, str, int]] | None = None,
    ) -> _Prepared:
        """Dead letters, duplicates and the fast path, without awaiting anything.

        ``pending`` holds the keys of batches taken earlier and not yet durable (not remembered yet), so a
        redelivered copy in this batch is recognised against them.
        """
        batch = _Prepared()
        readings, letters, seen, order = batch.readings, batch.letters, batch.seen, batch.order
        decoded: Tally[DeviceKind] = Tally()
        dead: Tally[Reason] = Tally()
        duplicates = skewed = life_safety = 0
        dedupe = self.dedupe
        confirm = batch.confirm if self.on_stored is not None else None
        over = _OverBudget()
        for message, result in results:
            if result is _OVER_BUDGET:
                over.add(message)  # counted, not stored, not confirmed: an outbox sends it again
                continue
            if isinstance(result, DecodeError):
                dead[result.reason] += 1
                letters.append(
                    DeadLetter(
                        received_ms=message.received_ms,
                        topic=message.topic,
                        reason=result.reason,
                        detail=result.detail,
                        payload=message.payload,
                        size=message.size if message.oversize else None,
                    )
                )
                self._warnings.warn(topic=message.topic, reason=result.reason, detail=result.detail)
                if self.on_refused is not None and clears(message.topic, result.reason, message.payload):
                    batch.cleared.append(message.topic)
                continue
            if message.retain and result.clock_skewed and result.ts_ms < result.received_ms:
                # A retained status replayed on subscribe is old by design, not a wrong clock: keep its time.
                result = msgspec.structs.replace(result, clock_skewed=False)
            if result.seq is not None:
                key = (result.site, result.device, result.seq)
                if confirm is not None and message.topic.startswith(_CONTRACT_TOPIC):
                    confirm.append(key)  # a copy is confirmed again: its first confirmation may have been lost
                if key in seen or (pending is not None and key in pending) or dedupe.is_duplicate(*key):
                    duplicates += 1
                    continue
                seen.add(key)
                order.append(key)
            decoded[result.kind] += 1
            if result.clock_skewed:
                skewed += 1
            if result.is_life_safety:
                life_safety += 1
                self._fast(result)
            readings.append(result)
        if over.sites:
            dead[Reason.OVER_BUDGET] += over.record(batch, self.budget)
            for site in over.sites:
                self._warnings.warn(topic=site, reason=Reason.OVER_BUDGET, detail=f"over its budget ({self.budget})")
        self.metrics.count_batch(
            received=received,
            decoded=decoded,
            dead=dead,
            duplicates=duplicates,
            clock_skewed=skewed,
            life_safety=life_safety,
        )
        return batch

    async def _make_durable(self, batch: _Prepared) -> list[Reading]:
        await self._store(batch)
        await self._after_durable(batch)
        return batch.readings

    async def _store(self, batch: _Prepared) -> None:
        """Dead letters, then readings: durable on return (retried with backoff until they are)."""
        letters, counted, readings = batch.letters, batch.counted, batch.readings
        if letters:
            await self._until_done(
                "dead-letter record", lambda: asyncio.to_thread(self.deadletter.add_many, letters, counted=counted)
            )
        if readings:
            with self.metrics.durable_seconds.time():
                await self._until_done("reading sink", lambda: self.sink.accept(readings))

    async def _after_durable(self, batch: _Prepared) -> None:
        """What follows durability, in arrival order: detection's feed, the dedupe window, the confirmations."""
        if batch.readings and self.on_durable is not None:
            try:
                result = self.on_durable(batch.readings)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # detection must never make the ingest path redeliver or stall
                _LOG.exception("durable hook failed on a batch of %d", len(batch.readings))
        # Remember only what is durable: if we die before this point, the redelivered copy must pass.
        dedupe = self.dedupe
        for site, device, seq in batch.order:
            dedupe.remember(site, device, seq)
        if batch.confirm and self.on_stored is not None:
            try:
                self.on_stored(batch.confirm)
            except Exception:  # a confirmation is an optimisation for the gateway; storage already happened
                _LOG.exception("stored-confirmation hook failed")
        if batch.cleared and self.on_refused is not None:
            try:
                self.on_refused(batch.cleared)
            except Exception:  # the refusals are recorded; a clear not sent is sent when the topic is refused again
                _LOG.exception("retained-clear hook failed")

    async def _until_done(self, what: str, attempt: Callable[[], Awaitable[None]]) -> None:
        failures = 0

        def failed(n: int, exc: Exception, delay: float) -> None:
            nonlocal failures
            failures = n
            self.metrics.sink_retries.inc()
            if n == 1 or n % 10 == 0:
                _LOG.error("%s failed (%s: %s), retrying in %.1f s", what, type(exc).__name__, exc, delay)

        await retry(attempt, backoff=Backoff(first_s=self.retry_min_s, max_s=self.retry_max_s), on_failure=failed)
        if failures:
            _LOG.warning("%s recovered after %d failed attempt(s)", what, failures)

    async def run(
        self,
        source: MessageSource,
        *,
        max_batch: int = 5000,
        max_wait_s: float = 0.01,
        stop: asyncio.Event | None = None,
        max_ahead: int = MAX_AHEAD,
        max_in_flight: int = 1,
    ) -> None:
        """Handle batches from ``source``, acknowledging each once durable, until it ends or ``stop`` is set.

        Batches are taken, decoded and fast-pathed as they come while fewer than ``max_ahead`` messages wait
        behind the batches being made durable, of which up to ``max_in_flight`` are written at once; the durable
        hook, dedupe window and acknowledgements follow arrival order. With ``stop``, shutdown is graceful: the
        batches taken are finished and acknowledged, then the loop returns (close the listener afterwards); nothing
        waiting in the inbox is lost, since unacknowledged messages are redelivered on the next start.
        """
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        batches = source.batches(max_batch=max_batch, max_wait_s=max_wait_s)
        ahead: asyncio.Queue[tuple[list[RawMessage], _Prepared] | None] = asyncio.Queue()
        pending: set[tuple[str, str, int]] = set()  # dedupe keys taken but not yet durable
        waiting = 0  # messages taken and queued behind the batches being made durable
        room = asyncio.Event()
        room.set()

        async def start_writes(
            flight: asyncio.Queue[tuple[list[RawMessage], _Prepared, asyncio.Task[None]] | None],
            slots: asyncio.Semaphore,
            writes: set[asyncio.Task[None]],
        ) -> None:
            nonlocal waiting
            while (item := await ahead.get()) is not None:
                batch, prepared = item
                await slots.acquire()  # released once this batch is acknowledged
                waiting -= len(batch)
                if waiting < max_ahead:
                    room.set()
                write = asyncio.create_task(self._store(prepared), name="gateway-store")
                writes.add(write)
                write.add_done_callback(writes.discard)
                flight.put_nowait((batch, prepared, write))
            flight.put_nowait(None)

        async def make_durable_in_order() -> None:
            flight: asyncio.Queue[tuple[list[RawMessage], _Prepared, asyncio.Task[None]] | None] = asyncio.Queue()
            slots = asyncio.Semaphore(max_in_flight)
            writes: set[asyncio.Task[None]] = set()
            starter = asyncio.create_task(start_writes(flight, slots, writes), name="gateway-store-start")
            try:
                while (item := await flight.get()) is not None:
                    batch, prepared, write = item
                    await write
                    await self._after_durable(prepared)
                    pending.difference_update(prepared.order)
                    self.metrics.acked.inc(source.ack(batch))
                    slots.release()
                await starter
            finally:
                for task in (starter, *writes):
                    task.cancel()
                await asyncio.gather(starter, *writes, return_exceptions=True)

        durable = asyncio.create_task(make_durable_in_order(), name="gateway-durable")
        try:
            while (stop is None or not stop.is_set()) and await self._until_set_unless_done(room, durable):
                batch = await self._next_or_stop(batches, stop, durable)
                if batch is None:
                    break
                self.metrics.queue_depth.set(source.queue_depth)
                self.metrics.connected.set(1 if source.connected else 0)
                # The fast path runs now, whatever the batches before this one are still waiting for.
                prepared = self._prepare(self._decoded(batch), received=len(batch), pending=pending)
                pending.update(prepared.order)
                ahead.put_nowait((batch, prepared))
                waiting += len(batch)
                if waiting >= max_ahead:
                    room.clear()
            if not durable.done():
                ahead.put_nowait(None)  # finish and acknowledge what was taken, then stop
            await durable  # raises what made it stop early; cancelling run cancels it too
        finally:
            durable.cancel()
            await asyncio.gather(durable, return_exceptions=True)  # ended before the listener goes on
            await batches.aclose()

    @staticmethod
    async def _until_set_unless_done(event: asyncio.Event, worker: asyncio.Task[None]) -> bool:
        """Wait for ``event``; False if ``worker`` ended first (or had ended)."""
        if worker.done():
            return False
        if event.is_set():
            return True
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({waiter, worker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        return not worker.done()

    @staticmethod
    async def _next_or_stop(
        batches: AsyncGenerator[list[RawMessage], None], stop: asyncio.Event | None, worker: asyncio.Task[None]
    ) -> list[RawMessage] | None:
        """The next batch, or None once ``stop`` is set or ``worker`` (the durable side) has ended."""
        getter = asyncio.ensure_future(anext(batches, None))
        waits: set[asyncio.Future[Any]] = {getter, worker}
        stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
        if stopper is not None:
            waits.add(stopper)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled: end the pending read too, so the generator can be closed
            getter.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await getter
            raise
        finally:
            if stopper is not None:
                stopper.cancel()
        if getter.done():
            return getter.result()
        getter.cancel()  # a batch taken but not handled is simply redelivered later
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
            await getter
        return None


class ListSink:
    """In-memory sink for tests and demos: keeps every reading; ``wait_for`` waits for a condition."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.batches = 0
        self._changed = asyncio.Condition()

    async def accept(self, readings: Sequence[Reading]) -> None:
        """Keep the readings."""
        async with self._changed:
            self.readings.extend(readings)
            self.batches += 1
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[list[Reading]], bool], *, timeout: float = 10.0) -> list[Reading]:
        """Wait until ``predicate(readings)`` holds (raises ``TimeoutError``); return the readings."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self.readings))
        return self.readings


class LoggingSink:
    """Sink that only logs what it gets (dry runs: ``eldercare gateway run --dry-run``)."""

    def __init__(self, *, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.logger = logger if logger is not None else _LOG
        self.level = level
        self.count = 0

    async def accept(self, readings: Sequence[Reading]) -> None:
        """Log a one-line summary of the batch."""
        self.count += len(readings)
        kinds = Tally(r.kind.value for r in readings)
        self.logger.log(self.level, "accepted %d readings %s (total %d)", len(readings), dict(kinds), self.count)
