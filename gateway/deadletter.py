"""Persistent, queryable, size-capped record of every message the gateway refused (SQLite, WAL).

Each entry keeps the topic, the reason, a human-readable detail and the raw payload (capped), so an
operator can see what a misconfigured gateway sends without the bad input ever stopping the loop.
Writes are one transaction per message batch and are durable (``synchronous=FULL``) before the
batch is acknowledged to the broker.

The record is bounded twice: each home keeps at most ``max_rows_per_site`` entries (1 % of the record by default),
the record at most ``max_rows``. Entries beyond either bound, oldest first, are not simply deleted: they are folded
into a **counted** record per home and reason (how many, first and last receive time), so one gateway flooding
refused messages can neither push another home's entries out nor make a refusal disappear uncounted.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import msgspec

from gateway.errors import Reason
from gateway.models import CONTRACT_PREFIX, Z2M_PREFIX

WATCH_PREFIX: Final = "watch/"
"""Pseudo-topic prefix of 4G watch frames (gateway/watch/decode.py)."""

DEFAULT_MAX_ROWS: Final = 100_000
"""Entries kept; the oldest are folded into counted records first."""

SITE_SHARE: Final = 100
"""A home's entries are at most ``max_rows // SITE_SHARE`` unless ``max_rows_per_site`` says otherwise."""

DEFAULT_MAX_PAYLOAD_BYTES: Final = 4096
"""Bytes of each payload kept; the original size is stored beside it."""

FILE_NAME: Final = "deadletter.sqlite3"
"""File name of the record inside the data directory."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS deadletter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms INTEGER NOT NULL,
    topic TEXT NOT NULL,
    site TEXT,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload BLOB NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deadletter_reason ON deadletter (reason, id);
CREATE INDEX IF NOT EXISTS deadletter_site ON deadletter (site, id);
CREATE INDEX IF NOT EXISTS deadletter_received ON deadletter (received_ms);
CREATE TABLE IF NOT EXISTS deadletter_counted (
    site TEXT NOT NULL,
    reason TEXT NOT NULL,
    n INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    PRIMARY KEY (site, reason)
);
"""

_FOLD: Final = """
INSERT INTO deadletter_counted (site, reason, n, first_ms, last_ms)
SELECT coalesce(site, ''), reason, count(*), min(received_ms), max(received_ms) FROM deadletter WHERE {where}
GROUP BY site, reason
ON CONFLICT (site, reason) DO UPDATE SET
    n = n + excluded.n, first_ms = min(first_ms, excluded.first_ms), last_ms = max(last_ms, excluded.last_ms)
"""
"""Adds the entries matching ``where`` to the counted records (a topic without a site is counted under '')."""

_COUNT: Final = """
INSERT INTO deadletter_counted (site, reason, n, first_ms, last_ms) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (site, reason) DO UPDATE SET
    n = n + excluded.n, first_ms = min(first_ms, excluded.first_ms), last_ms = max(last_ms, excluded.last_ms)
"""
"""Adds refusals recorded as counts only to the counted records."""


class DeadLetter(msgspec.Struct, frozen=True):
    """A refused message to be recorded (no id yet)."""

    received_ms: int
    topic: str
    reason: Reason
    detail: str
    payload: bytes
    size: int | None = None
    """Original payload size when ``payload`` was already cut on arrival (oversize messages); else its length."""


class DeadLetterEntry(msgspec.Struct, frozen=True):
    """A stored dead-letter entry; ``payload`` may be cut, ``size`` is the original length."""

    id: int
    received_ms: int
    topic: str
    site: str | None
    reason: Reason
    detail: str
    payload: bytes
    size: int

    @property
    def truncated(self) -> bool:
        """True if only the first bytes of the payload were kept."""
        return self.size > len(self.payload)


class DeadLetterCount(msgspec.Struct, frozen=True):
    """Refused messages of one home and reason that are only counted: beyond the home's budget or the record's."""

    site: str | None
    reason: Reason
    count: int
    first_ms: int
    """Receive time of the oldest of them."""
    last_ms: int
    """Receive time of the newest of them."""


def site_of(topic: str) -> str | None:
    """Best-effort site id of a topic, for filtering, even when the topic is otherwise invalid.

    >>> site_of("ec/v1/h0001/door/d1/event"), site_of("garbage"), site_of("watch/h0001/watch1")
    ('h0001', None, 'h0001')
    >>> site_of("z2m/h0001/bridge/devices")
    'h0001'
    """
    if topic.startswith(WATCH_PREFIX):  # a 4G watch's frame: watch/{site}/{device}, "-" when not registered
        site = topic[len(WATCH_PREFIX) :].split("/", 1)[0]
        return site[:64] if site not in ("", "-") else None
    for prefix in (CONTRACT_PREFIX + "/", Z2M_PREFIX + "/"):  # a Zigbee2MQTT home: z2m/{site}/...
        if topic.startswith(prefix):
            site = topic[len(prefix) :].split("/", 1)[0]
            return site[:64] or None
    return None


class DeadLetterStore:
    """The dead-letter record in one SQLite file; safe to share between the event loop and worker threads."""

    def __init__(
        self,
        *,
        path: Path,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_rows_per_site: int | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        per_site = max(1, max_rows // SITE_SHARE) if max_rows_per_site is None else max_rows_per_site
        if max_rows < 1 or per_site < 1 or max_payload_bytes < 0:
            raise ValueError("max_rows and max_rows_per_site must be positive and max_payload_bytes not negative")
        self.path = path
        self.max_rows = max_rows
        self.max_rows_per_site = per_site
        self.max_payload_bytes = max_payload_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        (self._rows,) = self._db.execute("SELECT count(*) FROM deadletter").fetchone()

    @classmethod
    def in_data_dir(cls, data_dir: Path, **kwargs: int) -> DeadLetterStore:
        """Open (or create) the record at its standard place in the data directory."""
        return cls(path=data_dir / FILE_NAME, **kwargs)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> DeadLetterStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_many(self, letters: Sequence[DeadLetter], *, counted: Sequence[DeadLetterCount] = ()) -> None:
        """Store entries in one durable transaction; fold the oldest beyond each home's budget and ``max_rows``.

        ``counted`` are refusals recorded as counts only, in the same transaction (messages over a home's budget of
        valid messages, :mod:`gateway.budget`, beyond the one sample kept per batch).
        """
        if not letters and not counted:
            return
        cap = self.max_payload_bytes
        rows = [
            (
                d.received_ms,
                d.topic,
                site_of(d.topic),
                d.reason.value,
                d.detail,
                d.payload[:cap],
                len(d.payload) if d.size is None else d.size,
            )
            for d in letters
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO deadletter (received_ms, topic, site, reason, detail, payload, size)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.executemany(
                    _COUNT,
                    [(c.site or "", c.reason.value, c.count, c.first_ms, c.last_ms) for c in counted if c.count > 0],
                )
                kept = self._rows + len(rows)
                for site in {row[2] for row in rows}:
                    # The newest entry of this home that is over its budget: it and every older one are folded.
                    over = self._db.execute(
                        "SELECT id FROM deadletter WHERE site IS ? ORDER BY id DESC LIMIT 1 OFFSET ?",
                        (site, self.max_rows_per_site),
                    ).fetchone()
                    if over is not None:
                        kept -= self._fold("site IS ? AND id <= ?", (site, over[0]))
                if kept > self.max_rows:  # ids have gaps where homes were folded: count rows from the oldest
                    (over_id,) = self._db.execute(
                        "SELECT id FROM deadletter ORDER BY id LIMIT 1 OFFSET ?", (kept - self.max_rows - 1,)
                    ).fetchone()
                    kept -= self._fold("id <= ?", (over_id,))
                self._db.execute("COMMIT")
                self._rows = kept
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _fold(self, where: str, args: tuple[object, ...]) -> int:
        """Count the entries matching ``where`` in ``deadletter_counted`` and delete them; return how many."""
        self._db.execute(_FOLD.format(where=where), args)
        return self._db.execute(f"DELETE FROM deadletter WHERE {where}", args).rowcount  # noqa: S608 - fixed clauses

    def counted(self, *, site: str | None = None) -> list[DeadLetterCount]:
        """The refusals that are only counted, per home and reason (optionally of one home), most first."""
        sql = "SELECT site, reason, n, first_ms, last_ms FROM deadletter_counted"
        args: tuple[object, ...] = ()
        if site is not None:
            sql += " WHERE site = ?"
            args = (site,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY n DESC, site, reason", args).fetchall()
        return [
            DeadLetterCount(site=r[0] or None, reason=Reason(r[1]), count=r[2], first_ms=r[3], last_ms=r[4])
            for r in rows
        ]

    def query(
        self,
        *,
        reason: Reason | None = None,
        site: str | None = None,
        since_ms: int | None = None,
        limit: int = 100,
    ) -> list[DeadLetterEntry]:
        """Newest entries first, optionally filtered by reason, site and receive time."""
        where: list[str] = []
        args: list[object] = []
        if reason is not None:
            where.append("reason = ?")
            args.append(Reason(reason).value)
        if site is not None:
            where.append("site = ?")
            args.append(site)
        if since_ms is not None:
            where.append("received_ms >= ?")
            args.append(since_ms)
        sql = "SELECT id, received_ms, topic, site, reason, detail, payload, size FROM deadletter"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(max(0, limit))
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [
            DeadLetterEntry(
                id=r[0],
                received_ms=r[1],
                topic=r[2],
                site=r[3],
                reason=Reason(r[4]),
                detail=r[5],
                payload=bytes(r[6]),
                size=r[7],
            )
            for r in rows
        ]

    def count_by_reason(self) -> dict[Reason, int]:
        """Number of stored entries per reason (reasons with none are left out)."""
        with self._lock:
            rows = self._db.execute("SELECT reason, count(*) FROM deadletter GROUP BY reason").fetchall()
        return {Reason(reason): n for reason, n in rows}

    def count(self) -> int:
        """Number of stored entries."""
        with self._lock:
            (n,) = self._db.execute("SELECT count(*) FROM deadletter").fetchone()
        return int(n)


def _preview(payload: bytes, width: int) -> str:
    text = payload[:width].decode("utf-8", errors="backslashreplace")
    text = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return text + ("…" if len(payload) > width else "")


def format_entries(entries: Iterable[DeadLetterEntry], *, show_payload: bool = False, width: int = 80) -> str:
    """Render entries as text lines for the CLI (``eldercare deadletter list``).

    Payloads can hold personal data, so they are shown only on request, cut to ``width`` characters.
    """
    lines: list[str] = []
    for e in entries:
        when = dt.datetime.fromtimestamp(e.received_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        lines.append(f"#{e.id} {when}Z {e.reason.value:<16} {e.topic} ({e.size} B): {e.detail}")
        if show_payload:
            lines.append(f"    payload: {_preview(e.payload, width)}")
    return "\n".join(lines)


def format_stats(counts: dict[Reason, int], counted: Sequence[DeadLetterCount] = ()) -> str:
    """Render :meth:`DeadLetterStore.count_by_reason` (and :meth:`~DeadLetterStore.counted`) for the CLI.

    ``eldercare deadletter stats``: the stored entries by reason, then the refusals only counted, by home.
    """
    if not counts and not counted:
        return "dead-letter record is empty"
    lines: list[str] = []
    if counts:
        width = max(len(r.value) for r in counts)
        by_count = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        lines += [f"{reason.value:<{width}}  {n}" for reason, n in by_count]
        lines.append(f"{'total':<{width}}  {sum(counts.values())}")
    if counted:
        lines.append("only counted (beyond a home's budget or the record's size), by home:")
        for c in counted:
            first, last = (_utc(ms) for ms in (c.first_ms, c.last_ms))
            lines.append(f"  {c.site or '-'}  {c.reason.value}  {c.count}  ({first}Z … {last}Z)")
    return "\n".join(lines)


def _utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
