"""Typed errors raised by the ingest path; each carries the data a caller needs to decide what to do."""

from __future__ import annotations

from pathlib import Path


class IngestError(Exception):
    """Base class of every ingest error."""


class LineProtocolError(IngestError, ValueError):
    """Raised when a value cannot be represented in line protocol so that InfluxDB stores it unchanged.

    Attributes:
        part: which part of the point is at fault (``measurement``, ``tag key``, ``field value``...).
        value: the offending value.
        reason: a human-readable explanation (English).
    """

    def __init__(self, part: str, value: object, reason: str) -> None:
        super().__init__(f"{part} {value!r}: {reason}")
        self.part = part
        self.value = value
        self.reason = reason


class InfluxUnavailable(IngestError):
    """InfluxDB could not take the request now (network error, timeout, 5xx, 429, auth, unknown database).

    Retryable: the data is fine, the server is not. ``status`` is None for transport errors.
    """

    def __init__(self, url: str, reason: str, *, status: int | None = None) -> None:
        super().__init__(f"InfluxDB at {url} unavailable: {reason}" + (f" (HTTP {status})" if status else ""))
        self.url = url
        self.reason = reason
        self.status = status


class PointsRejected(IngestError):
    """InfluxDB refused some or all points of a write as bad data (HTTP 400): retrying cannot help.

    On a 400 InfluxDB has already stored the points it could parse; ``message`` is its error text.
    """

    def __init__(self, url: str, message: str, *, status: int = 400) -> None:
        super().__init__(f"InfluxDB at {url} rejected points (HTTP {status}): {message}")
        self.url = url
        self.message = message
        self.status = status


class BatchTooLarge(PointsRejected):
    """The request body exceeded the server's limit (HTTP 413): split it and try again."""


class QueryError(IngestError):
    """InfluxDB refused a query (syntax, unknown function...); ``query`` is the statement as sent."""

    def __init__(self, query: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"query failed: {message} (query {query!r})")
        self.query = query
        self.message = message
        self.status = status

    @property
    def database_missing(self) -> bool:
        """True if the database does not exist (yet): nothing is stored in it, rather than a failure.

        >>> QueryError("SELECT 1", "database not found: eldercare", status=200).database_missing
        True
        """
        return self.message.startswith("database not found")


class SpoolCorrupt(IngestError):
    """A spool segment has a damaged record that is not a torn tail (a disk or operator problem)."""

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        super().__init__(f"spool segment {path} corrupt at byte {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class WriterClosed(IngestError):
    """The writer was closed; nothing more can be accepted."""


class SpoolFull(IngestError):
    """The spool holds ``max_bytes`` already; the caller must wait for replay to free space (backpressure)."""

    def __init__(self, directory: Path, size: int, max_bytes: int) -> None:
        super().__init__(f"spool {directory} full: {size} of {max_bytes} bytes used")
        self.directory = directory
        self.size = size
        self.max_bytes = max_bytes
