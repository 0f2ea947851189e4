"""Disk spool: append-only segment files of line-protocol batches, fsynced, replayed oldest first.

While InfluxDB is unreachable the writer appends each batch here and acknowledges it only once the append is
on disk (``fsync``), so the broker can forget it. When InfluxDB is back, records are replayed in the order
they were written; a segment file is deleted once every record in it has been written, and the spool is
empty again when the replay catches up.

Record layout: ``b"ECS2"`` (``b"ECS1"``: an older record with millisecond timestamps), payload length (u32), CRC-32
of the payload (u32), number of lines (u32), payload (little-endian). A crash while appending can leave a torn
record at the end of the newest segment: it is cut off when the spool is opened (its batch was never acknowledged,
so the broker redelivers it). After a crash during replay the whole oldest segment is replayed again, which is
harmless: rewriting a point with the same measurement, tags and timestamp overwrites it.

The spool is bounded by ``max_bytes``: :meth:`Spool.append` raises :class:`~ingest.errors.SpoolFull`, and the
writer waits for replay to free space instead of dropping anything.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from pathlib import Path
from typing import Final, NamedTuple

from ingest.errors import SpoolCorrupt, SpoolFull

_LOG: Final = logging.getLogger(__name__)

MAGIC: Final = b"ECS2"
"""Records written now: line protocol with nanosecond timestamps."""
MAGIC_MS: Final = b"ECS1"
"""Records written before timestamps became nanoseconds (issue 13, R4): replayed with ``precision=ms``."""
PRECISION_OF: Final = {MAGIC: "ns", MAGIC_MS: "ms"}
_HEADER: Final = struct.Struct("<4sIII")
SUFFIX: Final = ".seg"

DEFAULT_MAX_BYTES: Final = 1 << 30
"""1 GiB: about ten million readings, hours of a whole district's traffic."""

DEFAULT_SEGMENT_BYTES: Final = 64 << 20
"""A new segment file is started once the current one reaches 64 MiB."""


class SpoolRecord(NamedTuple):
    """One spooled batch: where it is, and its line-protocol payload."""

    segment: int
    offset: int
    end: int
    payload: bytes
    points: int
    precision: str = "ns"
    """Timestamp precision of the payload's lines (``ms`` for records from before issue 13)."""


class _Segment:
    __slots__ = ("index", "path", "size")

    def __init__(self, index: int, path: Path, size: int) -> None:
        self.index = index
        self.path = path
        self.size = size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Append-only, size-bounded, crash-safe queue of line-protocol batches in one directory.

    Thread-safe: the writer appends and replays from worker threads (``asyncio.to_thread``) so that
    ``fsync`` never blocks the event loop.
    """

    def __init__(
        self,
        *,
        directory: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync: bool = True,
    ) -> None:
        if max_bytes < 1 or segment_bytes < 1:
            raise ValueError("max_bytes and segment_bytes must be positive")
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._cursor = 0  # offset of the next record to replay in self._segments[0]
        self._fd: int | None = None  # append descriptor of self._segments[-1]
        self._points = 0
        self._bytes_pending = 0
        directory.mkdir(parents=True, exist_ok=True)
        self._open()

    # -- opening -----------------------------------------------------------------------------------

    def _open(self) -> None:
        paths = sorted(p for p in self.directory.iterdir() if p.suffix == SUFFIX and p.stem.isdigit())
        for path in paths:
            self._segments.append(_Segment(int(path.stem), path, path.stat().st_size))
        for i, seg in enumerate(self._segments):
            valid_end, points = self._scan(seg, last=i == len(self._segments) - 1)
            self._points += points
            self._bytes_pending += valid_end
        if self._points:
            _LOG.warning("spool %s holds %d points from before a restart; replaying", self.directory, self._points)

    def _scan(self, seg: _Segment, *, last: bool) -> tuple[int, int]:
        """Validate a segment; cut a torn tail of the newest one. Returns (valid bytes, points)."""
        offset = points = 0
        with seg.path.open("rb") as f:
            data = f.read()
        while offset < len(data):
            problem = self._check(data, offset)
            if problem is not None:
                if last:
                    _LOG.warning("spool %s: cutting torn tail at byte %d (%s)", seg.path, offset, problem)
                    with seg.path.open("r+b") as f:
                        f.truncate(offset)
                        os.fsync(f.fileno())
                    seg.size = offset
                    break
                raise SpoolCorrupt(seg.path, offset, problem)
            _, length, _, count = _HEADER.unpack_from(data, offset)
            offset += _HEADER.size + length
            points += count
        return offset, points

    @staticmethod
    def _check(data: bytes, offset: int) -> str | None:
        if offset + _HEADER.size > len(data):
            return "incomplete header"
        magic, length, crc, _ = _HEADER.unpack_from(data, offset)
        if magic not in PRECISION_OF:
            return "bad magic"
        start = offset + _HEADER.size
        if start + length > len(data):
            return "incomplete payload"
        if zlib.crc32(data[start : start + length]) != crc:
            return "checksum mismatch"
        return None

    # -- state -------------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Bytes on disk (what counts against ``max_bytes``)."""
        with self._lock:
            return sum(s.size for s in self._segments)

    @property
    def points(self) -> int:
        """Points waiting to be replayed."""
        with self._lock:
            return self._points

    @property
    def empty(self) -> bool:
        """True when nothing waits to be replayed."""
        with self._lock:
            return self._points == 0 and self._bytes_pending == 0

    def segment_paths(self) -> list[Path]:
        """Current segment files, oldest first."""
        with self._lock:
            return [s.path for s in self._segments]

    # -- appending ---------------------------------------------------------------------------------

    def append(self, payload: bytes, *, points: int) -> None:
        """Append one batch and make it durable before returning; raise :class:`SpoolFull` if over the bound."""
        record = _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload), points) + payload
        with self._lock:
            used = sum(s.size for s in self._segments)
            if used and used + len(record) > self.max_bytes:
                raise SpoolFull(self.directory, used, self.max_bytes)
            if self._fd is None or self._segments[-1].size >= self.segment_bytes:
                self._roll()
            assert self._fd is not None
            seg = self._segments[-1]
            os.write(self._fd, record)
            if self.fsync:
                os.fsync(self._fd)
            seg.size += len(record)
            self._points += points
            self._bytes_pending += len(record)

    def _roll(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        index = self._segments[-1].index + 1 if self._segments else 1
        path = self.directory / f"{index:012d}{SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self.fsync:
            _fsync_dir(self.directory)
        self._segments.append(_Segment(index, path, 0))

    # -- replaying ---------------------------------------------------------------------------------

    def peek(self) -> SpoolRecord | None:
        """The oldest record not yet replayed, or None when the spool is caught up."""
        with self._lock:
            while self._segments:
                seg = self._segments[0]
                if self._cursor < seg.size:
                    return self._read(seg, self._cursor)
                if len(self._segments) == 1:
                    return None
                self._drop_oldest()
            return None

    def _read(self, seg: _Segment, offset: int) -> SpoolRecord:
        with seg.path.open("rb") as f:
            f.seek(offset)
            head = f.read(_HEADER.size)
            if len(head) < _HEADER.size:
                raise SpoolCorrupt(seg.path, offset, "incomplete header")
            magic, length, crc, count = _HEADER.unpack(head)
            payload = f.read(length)
        if magic not in PRECISION_OF or len(payload) != length or zlib.crc32(payload) != crc:
            raise SpoolCorrupt(seg.path, offset, "damaged record")
        return SpoolRecord(seg.index, offset, offset + _HEADER.size + length, payload, count, PRECISION_OF[magic])

    def consume(self, record: SpoolRecord) -> None:
        """Mark ``record`` (from :meth:`peek`) as written; delete segment files that are done."""
        with self._lock:
            if not self._segments or self._segments[0].index != record.segment or self._cursor != record.offset:
                raise ValueError("records must be consumed in order, once")
            self._cursor = record.end
            self._points -= record.points
            self._bytes_pending -= record.end - record.offset
            seg = self._segments[0]
            if self._cursor >= seg.size:
                if len(self._segments) > 1:
                    self._drop_oldest()
                else:
                    # Caught up: remove the file so a restart finds an empty spool.
                    if self._fd is not None:
                        os.close(self._fd)
                        self._fd = None
                    self._drop_oldest()

    def _drop_oldest(self) -> None:
        seg = self._segments.pop(0)
        self._cursor = 0
        seg.path.unlink(missing_ok=True)
        if self.fsync:
            _fsync_dir(self.directory)

    def skip_segment(self) -> Path | None:
        """Set the oldest segment aside as ``*.corrupt`` (after :class:`SpoolCorrupt`) so replay can go on."""
        with self._lock:
            if not self._segments:
                return None
            if len(self._segments) == 1 and self._fd is not None:
                os.close(self._fd)
                self._fd = None
            seg = self._segments.pop(0)
            self._cursor = 0
            target = seg.path.with_suffix(".corrupt")
            seg.path.rename(target)
            self._points = 0
            self._bytes_pending = 0
            for s in self._segments:
                _, pts = self._scan(s, last=False)
                self._points += pts
                self._bytes_pending += s.size
            return target

    def close(self) -> None:
        """Close the append descriptor (records stay on disk for the next start)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
