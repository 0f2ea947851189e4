"""Engine snapshots taken in slices (copy-on-write per home), and the watermark of a stored snapshot.

Split out of :mod:`detection.engine`: a live service calls :meth:`Engine.begin_snapshot` and steps the capture
between readings, so encoding 100,000 homes never holds the event loop for more than a slice.
"""

from __future__ import annotations

import gc
import itertools
import mmap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

from detection.errors import SnapshotError
from detection.state import EngineSnapshot, HomeState

if TYPE_CHECKING:
    from detection.engine import Engine

SNAPSHOT_VERSION: Final = 1


class _Watermark(msgspec.Struct):
    """The head of a snapshot (any version): decoding it skips the homes and timers."""

    version: int
    now_ms: int


def snapshot_watermark(data: bytes) -> int:
    """Event-time watermark of a snapshot, without building its homes (to query the history since)."""
    try:
        return msgspec.msgpack.decode(data, type=_Watermark).now_ms
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SnapshotError(str(exc)) from None


class _LazySnapshot(msgspec.Struct):
    """A snapshot whose homes are left encoded (views into the file), to decode one at a time."""

    version: int
    now_ms: int
    homes: list[msgspec.Raw]
    timers: list[tuple[str, str, int]]


_HOME: Final = msgspec.msgpack.Decoder(HomeState)
_DROP_EVERY: Final = 8 << 20
"""Bytes of the mapped file decoded between two hand-backs of its pages (a few ms of work)."""


def load_snapshot(path: Path) -> EngineSnapshot:
    """Decode a snapshot file without ever holding all of its bytes and all of its homes at once.

    The file is memory-mapped and its homes are decoded one after the other; every few MB, the pages already
    decoded are handed back (``MADV_DONTNEED``), so the process's peak memory is the decoded state plus a few
    MB, not the decoded state plus the whole file (110 MB at 10,000 homes with 28 archived days each). Same
    result as ``msgspec.msgpack.decode(path.read_bytes(), type=EngineSnapshot)``.

    Raises:
        SnapshotError: the file is not a complete snapshot.
    """
    with path.open("rb") as f:
        if f.seek(0, 2) == 0:
            raise SnapshotError(f"{path} is empty")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            error = ""
            # Millions of new containers, none garbage: without this the collector's passes over the growing
            # heap take four times as long as the decoding itself (5.3 s against 1.1 s at 10,000 homes).
            collecting = gc.isenabled()
            gc.disable()
            try:
                snap = _decode_mapped(view, mapped)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                error = str(exc)  # the traceback (holding views into the mapping) goes with the except block
            finally:
                if collecting:
                    gc.enable()
            view.release()  # every view into the mapping is gone by now: it can be closed
    if error:
        raise SnapshotError(error)
    return snap


def _decode_mapped(view: memoryview, mapped: mmap.mmap) -> EngineSnapshot:
    lazy = msgspec.msgpack.decode(view, type=_LazySnapshot)
    encoded = lazy.homes
    homes: list[HomeState] = []
    done = dropped = 0
    for i in range(len(encoded)):
        raw, encoded[i] = encoded[i], _EMPTY  # keep no view into pages handed back
        homes.append(_HOME.decode(raw))
        done += len(raw)
        del raw
        if done - dropped >= _DROP_EVERY:
            # Homes lie in the file in order after a few bytes of head: everything before ``done`` is decoded.
            dropped = done - done % mmap.PAGESIZE
            mapped.madvise(mmap.MADV_DONTNEED, 0, dropped)
    return EngineSnapshot(version=lazy.version, now_ms=lazy.now_ms, homes=homes, timers=lazy.timers)


_EMPTY: Final = msgspec.Raw(b"")


def _array_header(n: int) -> bytes:
    """MessagePack header of an ``n``-element array, in the shortest form (as msgspec writes it)."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


class SnapshotCapture:
    """One consistent snapshot of an engine, encoded a slice at a time while the engine keeps running.

    The snapshot is the engine as it was when :meth:`Engine.begin_snapshot` created the capture: event-time
    watermark, every home that existed then with its armed timers. Homes are captured copy-on-write: :meth:`step`
    encodes pending homes until its time budget is spent, and the engine encodes a pending home itself just before
    it changes it (a reading, a timer, a refitted baseline), so what is captured is always the state at the start.
    Homes created after the start are not in it (the readings that created them are replayed on restore).

    The bytes are exactly :meth:`Engine.snapshot`'s format (same MessagePack layout, same version), only the
    order of homes and timers differs; :meth:`chunks` hands them over as pieces to write one after the other, so
    nothing is copied into one big buffer (or even one big list) on the event loop.
    """

    __slots__ = (
        "_enc",
        "_engine",
        "_expected_timers",
        "_homes",
        "_n_timers",
        "_nbytes",
        "_now_ms",
        "_pending",
        "_timers",
    )

    def __init__(self, engine: Engine) -> None:
        self._engine: Engine | None = engine
        self._now_ms = engine.now_ms
        # A C-level copy of the home map (2–11 ms for 100,000 homes): the set of homes at the start.
        self._pending: dict[str, HomeState] = dict(engine.homes)
        self._expected_timers = len(engine.timers)
        self._homes: list[bytes] = []
        self._timers: list[bytes] = []
        self._n_timers = 0
        self._nbytes = 0
        self._enc = msgspec.msgpack.Encoder()

    @property
    def pending(self) -> int:
        """Homes not captured yet."""
        return len(self._pending)

    @property
    def nbytes(self) -> int:
        """Bytes of homes and timers captured so far (the snapshot's size, give or take its few header bytes)."""
        return self._nbytes

    def step(self, budget_s: float) -> bool:
        """Capture pending homes for about ``budget_s`` seconds (at least one); True when every home is captured."""
        if self._engine is None:
            raise RuntimeError("this snapshot capture was closed")
        pending = self._pending
        deadline = time.perf_counter() + budget_s
        while pending:
            self._take(pending.popitem()[1], None)
            if time.perf_counter() >= deadline:
                break
        return not pending

    def touch(self, home: HomeState, fired: tuple[str, int] | None = None) -> None:
        """Capture ``home`` now if it is still pending: the engine is about to change it.

        ``fired`` is a ``(name, due)`` timer of the home that was popped from the queue just before (it was armed
        at the start, so it belongs in the snapshot).
        """
        if self._pending.pop(home.site, None) is not None:
            self._take(home, fired)

    def _take(self, home: HomeState, fired: tuple[str, int] | None) -> None:
        assert self._engine is not None
        data = self._enc.encode(home)
        self._homes.append(data)
        self._nbytes += len(data)
        timers = self._engine.timers_of(home)
        if fired is not None:
            timers.append((home.site, fired[0], fired[1]))
        if timers:
            # The tuples' encodings, without the list's own header: the timers of all homes form one array.
            data = self._enc.encode(timers)[len(_array_header(len(timers))) :]
            self._timers.append(data)
            self._nbytes += len(data)
            self._n_timers += len(timers)

    def chunks(self) -> Iterator[bytes]:
        """The finished snapshot as pieces, to iterate once (``b"".join(...)`` is the snapshot); after :meth:`step`.

        The checks run at once; the iterator only walks the captured pieces (it may be handed to a writer thread).

        Raises:
            SnapshotError: a pending home is left, or some timer armed at the start belongs to no home's timer
                names (see :meth:`Engine.timers_of`); take a blocking :meth:`Engine.snapshot` instead.
        """
        if self._pending:
            raise SnapshotError(f"{len(self._pending)} homes not captured yet")
        if self._n_timers != self._expected_timers:
            raise SnapshotError(
                f"{self._expected_timers - self._n_timers} of {self._expected_timers} armed timers are not named"
                " after a detector's timer names (or a device of the home)"
            )
        enc = self._enc
        head = b"".join(
            (
                b"\x84",  # a 4-entry map: the fields of EngineSnapshot, in order
                enc.encode("version"),
                enc.encode(SNAPSHOT_VERSION),
                enc.encode("now_ms"),
                enc.encode(self._now_ms),
                enc.encode("homes"),
                _array_header(len(self._homes)),
            )
        )
        middle = enc.encode("timers") + _array_header(self._n_timers)
        return itertools.chain((head,), self._homes, (middle,), self._timers)

    def close(self) -> None:
        """Detach from the engine (after the last step, or to abandon the snapshot); idempotent."""
        engine, self._engine = self._engine, None
        if engine is not None and engine._capture is self:
            engine._capture = None
