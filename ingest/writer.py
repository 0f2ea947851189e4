"""Batching writer to InfluxDB with a disk spool: the gateway's :class:`~gateway.service.ReadingSink`.

``accept(readings)`` returns only once every reading is durable: written to InfluxDB (HTTP 2xx), appended
and fsynced to the spool, or (for a point InfluxDB refuses as bad data) recorded in the dead-letter
record. Only then does the gateway acknowledge the MQTT messages, so a crash at any moment loses nothing:
what was not acknowledged is redelivered by the broker, and rewriting a point is idempotent.

Batching uses the names and defaults of influxdb-client's ``WriteOptions``. Points wait in memory until
``batch_size`` are pending or ``flush_interval`` has passed; a caller of :meth:`InfluxWriter.accept` is
waiting for durability, so its points are flushed at once together with whatever else is pending (group
commit: while a request is in flight the next batch gathers). Up to ``max_in_flight`` requests are sent at once
(one by default): a drain behind a backlog is bound by the write round trips, during which influxd parses one
request while the gateway encodes the next (issue 17). ``accept`` calls return in the order they were made, each
once its own points and every earlier call's are durable.

Failure handling, without ever dropping data:

* InfluxDB unreachable, 5xx, 429, auth or unknown database: the batch goes to the spool and the writer
  switches to spooling; every later batch is appended behind it, and a replay task writes the spool back
  in order, retrying with exponential backoff (``retry_interval`` × ``exponential_base``^n, capped at
  ``max_retry_delay``, plus up to ``jitter_interval``). influxdb-client drops a batch after ``max_retries``
  or ``max_retry_time``; here those limits only mark the writer :attr:`WriterStats.degraded` and log an
  error: the data stays on disk and retries continue at ``max_retry_delay``. Once the spool is empty the
  writer writes directly again.
* HTTP 400/422 (some points are bad data; InfluxDB stored the rest): the batch is bisected and only the
  points that are refused on their own are dead-lettered. 413 splits the batch the same way.
* Spool full (``max_bytes``) or too many points pending in memory: ``accept`` waits, so the gateway stops
  acknowledging and the broker holds the messages (backpressure reaches MQTT instead of dropping).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

import msgspec

from gateway.deadletter import DeadLetter
from gateway.errors import Reason
from gateway.models import Reading, Topic
from gateway.retry import Backoff
from gateway.tasks import cancel_and_wait
from ingest.errors import InfluxUnavailable, LineProtocolError, PointsRejected, SpoolFull, WriterClosed
from ingest.lineprotocol import join_lines
from ingest.schema import to_line, to_lines, topic_of_line
from ingest.spool import Spool

_LOG: Final = logging.getLogger(__name__)
_SERIES: Final = re.compile(r"(?:[^ \\]|\\.)*")
"""A line protocol point's series key: everything before its first unescaped space."""
_QUOTED: Final = re.compile(r"'[^']*'")
_JSON: Final = msgspec.json.Encoder()


class WriteOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Batching and retry settings; names, units (milliseconds) and defaults of influxdb-client's WriteOptions."""

    batch_size: int = 1_000
    """Points per write request."""
    flush_interval: int = 1_000
    """Longest time (ms) a point from :meth:`InfluxWriter.write` waits for its batch to fill."""
    jitter_interval: int = 0
    """Random delay (ms) added to each interval flush and retry, so many writers do not write in lockstep."""
    retry_interval: int = 5_000
    """Delay (ms) before the first retry of a failed write."""
    max_retries: int = 5
    """Retries after which the writer reports itself degraded (the data stays spooled; retries go on)."""
    max_retry_delay: int = 125_000
    """Longest delay (ms) between two retries."""
    max_retry_time: int = 180_000
    """Time (ms) after the first failure after which the writer reports itself degraded."""
    exponential_base: int = 2
    """Base of the exponential retry delay."""
    max_close_wait: int = 300_000
    """Longest time (ms) :meth:`InfluxWriter.close` waits for pending points to become durable."""

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.flush_interval < 0 or self.jitter_interval < 0:
            raise ValueError("batch_size must be positive; flush_interval and jitter_interval not negative")
        if self.retry_interval < 0 or self.max_retry_delay < 0 or self.exponential_base < 1:
            raise ValueError("retry delays must not be negative and exponential_base must be at least 1")

    @property
    def backoff(self) -> Backoff:
        """The retry delays as the backend's one :class:`~gateway.retry.Backoff` policy (seconds)."""
        return Backoff(
            first_s=self.retry_interval / 1000,
            max_s=self.max_retry_delay / 1000,
            base=self.exponential_base,
            jitter_s=self.jitter_interval / 1000,
        )

    def retry_delay_s(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based), in seconds, jitter included."""
        return self.backoff.delay(attempt)


class LineWriter(Protocol):
    """What the writer needs from InfluxDB (:class:`ingest.influx.InfluxClient`)."""

    async def write(self, body: bytes, *, precision: str | None = None) -> None:
        """Write a line-protocol body; raise PointsRejected, BatchTooLarge or InfluxUnavailable."""
        ...

    async def ping(self) -> bool:
        """True if the server answers its health probe (InfluxDB ``/ping``)."""
        ...


class RejectedRecord(Protocol):
    """Where refused points go (:class:`gateway.deadletter.DeadLetterStore`); must be durable on return."""

    def add_many(self, letters: Sequence[DeadLetter]) -> None:
        """Store entries durably."""
        ...


@dataclass(slots=True)
class WriterStats:
    """Counters of what the writer did (exported as metrics by the composition root)."""

    accepted: int = 0
    written: int = 0
    requests: int = 0
    spooled: int = 0
    replayed: int = 0
    rejected: int = 0
    failures: int = 0
    spooling: bool = False
    degraded: bool = False
    last_error: str | None = None
    outage_started: float | None = field(default=None, repr=False)


@dataclass(slots=True, eq=False)
class _Job:
    lines: list[str]
    future: asyncio.Future[None] | None
    urgent: bool
    created: float
    taken: int = 0
    done: int = 0
    failed: bool = False


class InfluxWriter:
    """Writes readings to InfluxDB in batches, spooling to disk when it cannot; see the module docstring."""

    def __init__(
        self,
        *,
        client: LineWriter,
        spool: Spool,
        options: WriteOptions | None = None,
        rejected: RejectedRecord | None = None,
        max_pending_points: int = 100_000,
        probe_interval_s: float = 1.0,
        max_in_flight: int = 1,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.max_in_flight = max_in_flight
        self.client = client
        self.spool = spool
        self.options = options if options is not None else WriteOptions()
        self.rejected = rejected
        self.max_pending_points = max_pending_points
        self.probe_interval_s = probe_interval_s
        self.stats = WriterStats()
        self._jobs: deque[_Job] = deque()
        self._pending = 0
        self._untaken = 0
        """Lines queued and not yet in a request."""
        self._urgent = 0
        """Durable jobs (a caller waits) with lines not yet in a request: flushed at once."""
        self._wake = asyncio.Event()
        self._room = asyncio.Condition()
        self._mode = asyncio.Lock()
        self._space = asyncio.Event()
        self._closing = False
        self._flusher: asyncio.Task[None] | None = None
        self._replayer: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the flush task, and the replay task if the spool holds data from before a restart."""
        if self._flusher is not None:
            raise RuntimeError("writer already started")
        self._flusher = asyncio.create_task(self._flush_loop(), name="ingest-flush")
        if not await asyncio.to_thread(lambda: self.spool.empty):
            self.stats.spooling = True
            self._start_replay()

    async def close(self) -> None:
        """Flush what is pending (up to ``max_close_wait``), stop the tasks; the spool keeps the rest."""
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        if self._flusher is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._flusher), self.options.max_close_wait / 1000)
            except TimeoutError:
                _LOG.error("writer closed with %d points not durable (unacknowledged: redelivered)", self._pending)
                await cancel_and_wait(self._flusher)
        if self._replayer is not None:
            await cancel_and_wait(self._replayer)
        for job in self._jobs:
            if job.future is not None and not job.future.done():
                job.future.set_exception(WriterClosed("writer closed before the points were durable"))
        self._jobs.clear()
        await asyncio.to_thread(self.spool.close)

    async def __aenter__(self) -> InfluxWriter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def pending(self) -> int:
        """Points in memory, not yet durable."""
        return self._pending

    # -- producing ---------------------------------------------------------------------------------

    async def accept(self, readings: Sequence[Reading]) -> None:
        """Return once every reading is durable (InfluxDB, spool or dead-letter record); see ReadingSink."""
        if not readings:
            return
        try:
            lines = to_lines(readings)
        except LineProtocolError:
            lines = await self._encode_each(readings)
        self.stats.accepted += len(readings)
        await self.write_lines(lines)

    async def _encode_each(self, readings: Sequence[Reading]) -> list[str]:
        lines: list[str] = []
        letters: list[DeadLetter] = []
        for r in readings:
            try:
                lines.append(to_line(r))
            except LineProtocolError as exc:
                topic = str(Topic(site=r.site, kind=r.kind, device=r.device, type=r.type))
                letters.append(
                    DeadLetter(
                        received_ms=r.received_ms,
                        topic=topic,
                        reason=Reason.STORAGE_REJECTED,
                        detail=f"not representable in line protocol: {exc}",
                        payload=_JSON.encode(r),
                    )
                )
        await self._record_rejected(letters)
        return lines

    async def write_lines(self, lines: Sequence[str]) -> None:
        """Write lines of line protocol (nanosecond timestamps) and return once they are durable."""
        if not lines:
            return
        await self._enqueue(list(lines), durable=True)

    async def write(self, lines: Sequence[str]) -> None:
        """Queue lines for a size-or-interval flush without waiting for durability (waits only for room)."""
        if lines:
            await self._enqueue(list(lines), durable=False)

    async def flush(self) -> None:
        """Return once everything queued so far is durable."""
        await self._enqueue([], durable=True)

    async def _enqueue(self, lines: list[str], *, durable: bool) -> None:
        if self._closing:
            raise WriterClosed("writer is closed")
        if self._flusher is None:
            raise RuntimeError("writer not started")
        async with self._room:
            await self._room.wait_for(lambda: self._pending < self.max_pending_points or self._closing)
        if self._closing:
            raise WriterClosed("writer is closed")
        future = asyncio.get_running_loop().create_future() if durable else None
        self._jobs.append(_Job(lines, future, durable, time.monotonic()))
        self._pending += len(lines)
        self._untaken += len(lines)
        if durable and lines:
            self._urgent += 1
        if durable or self._untaken >= self.options.batch_size:
            self._wake.set()
        if not lines:
            self._complete_in_order()  # a flush: done once every job before it is
        if future is not None:
            await future

    # -- flushing ----------------------------------------------------------------------------------

    def _due_in(self) -> float | None:
        """Seconds until the next flush is due; 0 for now, None when no line waits for a request."""
        if not self._untaken:
            return None
        if self._urgent or self._closing or self._untaken >= self.options.batch_size:
            return 0.0
        oldest = next(job for job in self._jobs if job.taken < len(job.lines))
        return max(0.0, self.options.flush_interval / 1000 - (time.monotonic() - oldest.created))

    def _take_batch(self) -> tuple[list[str], list[tuple[_Job, int]]]:
        """Up to ``batch_size`` lines not yet in a request, oldest jobs first, and how many each job gave."""
        size = self.options.batch_size
        lines: list[str] = []
        parts: list[tuple[_Job, int]] = []
        for job in self._jobs:
            if len(lines) >= size:
                break
            n = min(len(job.lines) - job.taken, size - len(lines))
            if n <= 0:
                continue  # already on its way (or a flush marker)
            lines.extend(job.lines[job.taken : job.taken + n])
            job.taken += n
            self._untaken -= n
            if job.taken == len(job.lines) and job.urgent:
                self._urgent -= 1
            parts.append((job, n))
            if job.taken < len(job.lines):
                break
        return lines, parts

    def _finish(self, parts: list[tuple[_Job, int]], error: BaseException | None) -> None:
        for job, n in parts:
            if job.failed:
                continue  # its caller already has the error; these lines were counted off then
            job.done += n
            self._pending -= n
            if error is None:
                continue
            # The caller retries the whole call: its other lines (in flight or not yet taken) leave memory now.
            job.failed = True
            rest = len(job.lines) - job.taken
            self._untaken -= rest
            if rest and job.urgent:
                self._urgent -= 1
            job.taken = len(job.lines)
            self._pending -= len(job.lines) - job.done
            job.done = len(job.lines)
            with contextlib.suppress(ValueError):
                self._jobs.remove(job)
            if job.future is not None and not job.future.done():
                job.future.set_exception(error)
        self._complete_in_order()

    def _complete_in_order(self) -> None:
        """Resolve the callers whose points, and every earlier caller's, are durable."""
        jobs = self._jobs
        while jobs and jobs[0].done >= len(jobs[0].lines):
            job = jobs.popleft()
            if job.future is not None and not job.future.done():
                job.future.set_result(None)

    async def _flush_loop(self) -> None:
        slots = asyncio.Semaphore(self.max_in_flight)
        flights: set[asyncio.Task[None]] = set()
        try:
            while True:
                due = self._due_in()
                if due is None:
                    if self._closing:
                        break
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if due > 0:
                    self._wake.clear()
                    jitter = random.uniform(0, self.options.jitter_interval) / 1000  # noqa: S311
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), due + jitter)
                    continue
                await slots.acquire()  # released when the request is done
                lines, parts = self._take_batch()  # taken now: what arrived while waiting for a slot goes too
                flight = asyncio.create_task(self._flush(lines, parts, slots), name="ingest-write")
                flights.add(flight)
                flight.add_done_callback(flights.discard)
            if flights:
                await asyncio.gather(*flights)
        finally:
            for flight in flights:
                flight.cancel()
            await asyncio.gather(*flights, return_exceptions=True)

    async def _flush(self, lines: list[str], parts: list[tuple[_Job, int]], slots: asyncio.Semaphore) -> None:
        try:
            error: BaseException | None = None
            try:
                if lines:
                    await self._persist(lines)
            except Exception as exc:  # a spool I/O error: the callers see it and the gateway retries
                _LOG.exception("could not make %d points durable", len(lines))
                error = exc
            self._finish(parts, error)
        finally:
            slots.release()
        async with self._room:
            self._room.notify_all()

    async def _persist(self, lines: list[str]) -> None:
        async with self._mode:
            if self.stats.spooling:
                await self._append_to_spool(lines)
                return
        left = await self._deliver(lines)
        if left:
            async with self._mode:
                self.stats.spooling = True
                await self._append_to_spool(left)
            self._start_replay()

    async def _append_to_spool(self, lines: list[str]) -> None:
        body = join_lines(lines)
        while True:
            try:
                await asyncio.to_thread(self.spool.append, body, points=len(lines))
                self.stats.spooled += len(lines)
                return
            except SpoolFull as exc:
                self.stats.last_error = str(exc)
                self._space.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._space.wait(), 1.0)

    # -- delivering --------------------------------------------------------------------------------

    async def _deliver(self, lines: list[str], *, precision: str | None = None) -> list[str]:
        """Write ``lines``, dead-lettering refused points; return the lines left when InfluxDB is unavailable."""
        stack = [lines]
        while stack:
            chunk = stack.pop()
            try:
                self.stats.requests += 1
                await self.client.write(join_lines(chunk), precision=precision)
                self.stats.written += len(chunk)
            except PointsRejected as exc:  # includes BatchTooLarge
                if len(chunk) == 1:
                    await self._reject(chunk, exc)
                    continue
                mid = len(chunk) // 2
                stack.append(chunk[mid:])
                stack.append(chunk[:mid])
            except InfluxUnavailable as exc:
                self._note_failure(exc)
                return [line for part in [chunk, *reversed(stack)] for line in part]
        return []

    async def _reject(self, chunk: list[str], exc: PointsRejected) -> None:
        self.stats.rejected += len(chunk)
        now = time.time_ns() // 1_000_000
        letters = [
            DeadLetter(
                received_ms=now,
                topic=topic_of_line(line),
                reason=Reason.STORAGE_REJECTED,
                detail=f"InfluxDB HTTP {exc.status}: {exc.message}"[:1000],
                payload=line.encode("utf-8"),
            )
            for line in chunk
        ]
        await self._record_rejected(letters)

    async def _record_rejected(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        for letter in letters[:5]:
            # The series (measurement and tags: home and device ids), never the field values (readings, a watch's
            # position); InfluxDB quotes a line it cannot parse whole, so quoted text is left out as well.
            series = _SERIES.match(letter.payload.decode("utf-8", "replace"))
            detail = _QUOTED.sub("'…'", letter.detail)
            _LOG.warning("point refused: %s (%s)", detail, series[0][:200] if series else "?")
        if self.rejected is not None:
            await asyncio.to_thread(self.rejected.add_many, letters)

    def _note_failure(self, exc: InfluxUnavailable) -> None:
        self.stats.failures += 1
        self.stats.last_error = str(exc)
        if self.stats.outage_started is None:
            self.stats.outage_started = time.monotonic()
            _LOG.warning("%s; spooling to %s", exc, self.spool.directory)

    # -- replaying ---------------------------------------------------------------------------------

    def _start_replay(self) -> None:
        if self._replayer is None or self._replayer.done():
            self._replayer = asyncio.create_task(self._replay_loop(), name="ingest-replay")

    async def _replay_loop(self) -> None:
        attempt = 0
        while True:
            record = await asyncio.to_thread(self.spool.peek)
            if record is None:
                async with self._mode:
                    if await asyncio.to_thread(lambda: self.spool.empty):
                        self._recovered()
                        return
                continue
            left = await self._deliver(record.payload.decode("utf-8").split("\n"), precision=record.precision)
            if not left:
                await asyncio.to_thread(self.spool.consume, record)
                self.stats.replayed += record.points
                attempt = 0
                self._space.set()
                continue
            attempt += 1
            self._check_degraded(attempt)
            await self._wait_for_influx(self.options.retry_delay_s(attempt))

    async def _wait_for_influx(self, delay_s: float) -> None:
        """Sleep out a retry delay, but return as soon as InfluxDB answers ``/ping`` (probed every second or so).

        The backoff keeps a sick server from being hammered with writes; a cheap probe lets the spool drain
        start within about ``probe_interval_s`` of the server's return instead of after up to ``max_retry_delay``.
        """
        deadline = time.monotonic() + delay_s
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(self.probe_interval_s, left))
            if time.monotonic() < deadline and await self._ping():
                return

    async def _ping(self) -> bool:
        try:
            return await self.client.ping()
        except Exception:  # a probe never fails the replay; the next write attempt reports the error
            return False

    def _check_degraded(self, attempt: int) -> None:
        started = self.stats.outage_started
        outage_ms = 0.0 if started is None else (time.monotonic() - started) * 1000
        if not self.stats.degraded and (attempt > self.options.max_retries or outage_ms > self.options.max_retry_time):
            self.stats.degraded = True
            _LOG.error(
                "InfluxDB unavailable for %.0f s after %d retries; %d points kept in the spool, retrying",
                outage_ms / 1000,
                attempt - 1,
                self.spool.points,
            )

    def _recovered(self) -> None:
        started = self.stats.outage_started
        if started is not None:
            _LOG.warning(
                "InfluxDB back after %.1f s; %d points replayed", time.monotonic() - started, self.stats.replayed
            )
        self.stats.spooling = False
        self.stats.degraded = False
        self.stats.outage_started = None
