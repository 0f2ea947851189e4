"""The only module that talks HTTP to InfluxDB (httpx): ``/write``, ``/query``, ``/ping`` and schema setup.

It speaks the 1.x HTTP API, which InfluxDB 2.x (v1 compatibility API, database/retention policy mapped to a
bucket by a DBRP mapping) and 3.x (``/write`` and ``/query`` compatibility endpoints) also serve. With a
``token`` the client sends ``Authorization: Token <token>`` (2.x/3.x); with a username and password it uses
HTTP basic authentication (1.x with ``auth-enabled``).

Errors are classified once, here: bad data (400, 422) raises :class:`PointsRejected`, a body over the
server's limit (413) :class:`BatchTooLarge`, anything else that failed :class:`InfluxUnavailable`, which the
writer treats as "keep the data and retry".
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Final

import httpx
import msgspec

from ingest.errors import BatchTooLarge, InfluxUnavailable, PointsRejected, QueryError
from ingest.schema import DOWNSAMPLED_RETENTION, PRECISION, RAW_RETENTION, continuous_queries, quote_ident

_LOG: Final = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S: Final = 10.0
"""Per-request timeout (influxdb-client's default ``timeout=10_000`` ms)."""

REJECTED_STATUSES: Final = frozenset({400, 422})
"""Statuses that mean "the data is bad": retrying cannot help."""


class Series(msgspec.Struct, frozen=True):
    """One series of a query result: ``values`` rows follow ``columns`` (the first column is ``time``)."""

    name: str = ""
    columns: list[str] = []
    values: list[list[Any]] = []
    tags: dict[str, str] | None = None

    def rows(self) -> list[dict[str, Any]]:
        """The rows as dictionaries keyed by column name."""
        return [dict(zip(self.columns, row, strict=False)) for row in self.values]


class StatementResult(msgspec.Struct, frozen=True):
    """Result of one InfluxQL statement."""

    statement_id: int = 0
    series: list[Series] = []
    error: str | None = None


class _QueryResponse(msgspec.Struct):
    results: list[StatementResult] = []
    error: str | None = None


class _ErrorBody(msgspec.Struct):
    error: str = ""
    message: str = ""  # InfluxDB 2.x/3.x use "message"


_RESPONSE: Final = msgspec.json.Decoder(_QueryResponse)
_ERROR: Final = msgspec.json.Decoder(_ErrorBody)
_JSON: Final = msgspec.json.Encoder()


def _error_text(response: httpx.Response) -> str:
    try:
        body = _ERROR.decode(response.content)
        return body.error or body.message or response.text[:500]
    except msgspec.DecodeError:
        return response.text[:500]


def _decode_chunk(query: str, line: bytes) -> list[Series]:
    """The series of one chunk of a chunked answer (one statement)."""
    try:
        decoded = _RESPONSE.decode(line)
    except msgspec.DecodeError as exc:
        raise QueryError(query, f"unreadable response: {exc}", status=200) from None
    if decoded.error:
        raise QueryError(query, decoded.error, status=200)
    series: list[Series] = []
    for result in decoded.results:
        if result.error:
            raise QueryError(query, result.error, status=200)
        series += result.series
    return series


class InfluxClient:
    """Async client of one InfluxDB database over the 1.x-compatible HTTP API."""

    def __init__(
        self,
        *,
        url: str,
        db: str,
        rp: str | None = None,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        gzip: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        precision: str = PRECISION,
    ) -> None:
        if not db:
            raise ValueError("an InfluxDB database name is required")
        if token and username:
            raise ValueError("use either a token (2.x/3.x) or a username and password (1.x), not both")
        if precision not in ("ns", "u", "ms", "s"):
            raise ValueError(f"precision must be one of ns, u, ms, s; got {precision!r}")
        self.url = url.rstrip("/")
        self.db = db
        self.rp = rp
        self.gzip = gzip
        self.precision = precision
        headers = {"User-Agent": "eldercare-ingest"}
        if token:
            headers["Authorization"] = f"Token {token}"
        auth = httpx.BasicAuth(username, password or "") if username else None
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
        )
        self._write_params: dict[str, str] = {"db": db, "precision": precision}
        if rp:
            self._write_params["rp"] = rp

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> InfluxClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- writing -----------------------------------------------------------------------------------

    async def write(self, body: bytes, *, precision: str | None = None) -> None:
        r"""Write a body of line protocol (lines separated by ``\n``) in one request.

        ``precision`` overrides the client's timestamp precision for this body (spooled records from an older
        version carry milliseconds).

        Raises:
            PointsRejected: some or all points are bad data (InfluxDB stored the others).
            BatchTooLarge: the body is over the server's size limit.
            InfluxUnavailable: the server could not take the write; nothing is known to be stored.
        """
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        try:
            params = self._write_params if precision is None else {**self._write_params, "precision": precision}
            response = await self._http.post("/write", params=params, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise InfluxUnavailable(self.url, f"{type(exc).__name__}: {exc}") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 413:
            raise BatchTooLarge(self.url, _error_text(response), status=status)
        if status in REJECTED_STATUSES:
            raise PointsRejected(self.url, _error_text(response), status=status)
        raise InfluxUnavailable(self.url, _error_text(response), status=status)

    # -- querying ----------------------------------------------------------------------------------

    async def query(
        self,
        query: str,
        *,
        params: Mapping[str, str | int | float | bool] | None = None,
        db: str | None = None,
        epoch: str = "ms",
    ) -> list[StatementResult]:
        """Run InfluxQL with bound parameters (``$name`` placeholders, sent as the ``params`` JSON object).

        Values are never pasted into the statement, so a tag value cannot change its meaning.

        Raises:
            QueryError: the server refused the statement (the first statement error, if any).
            InfluxUnavailable: the server could not be reached or failed.
        """
        form: dict[str, str] = {"q": query, "db": self.db if db is None else db, "epoch": epoch}
        if params:
            form["params"] = _JSON.encode(dict(params)).decode()
        try:
            response = await self._http.post("/query", data=form)
        except httpx.TransportError as exc:
            raise InfluxUnavailable(self.url, f"{type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status >= 500 or status in (401, 403, 404, 429):
            raise InfluxUnavailable(self.url, _error_text(response), status=status)
        if status != 200:
            raise QueryError(query, _error_text(response), status=status)
        try:
            decoded = _RESPONSE.decode(response.content)
        except msgspec.DecodeError as exc:
            raise QueryError(query, f"unreadable response: {exc}", status=status) from None
        if decoded.error:
            raise QueryError(query, decoded.error, status=status)
        for result in decoded.results:
            if result.error:
                raise QueryError(query, result.error, status=status)
        return decoded.results

    async def query_chunks(
        self,
        query: str,
        *,
        params: Mapping[str, str | int | float | bool] | None = None,
        chunk_size: int = 10_000,
        epoch: str = "ms",
    ) -> AsyncGenerator[list[Series], None]:
        """Run one InfluxQL SELECT as a chunked response: yield its series ``chunk_size`` points at a time.

        InfluxDB writes the answer while the caller reads it (one JSON document per line), so a query over any
        time range costs one scan of the index and memory for one chunk; each chunk is decoded in a worker thread.
        Close the iterator (``contextlib.aclosing``) when stopping early, so the connection is released.

        Raises:
            QueryError: the server refused the statement.
            InfluxUnavailable: the server could not be reached or failed, before or during the answer.
        """
        form: dict[str, str] = {"q": query, "db": self.db, "epoch": epoch, "chunked": "true"}
        form["chunk_size"] = str(chunk_size)
        if params:
            form["params"] = _JSON.encode(dict(params)).decode()
        try:
            async with self._http.stream("POST", "/query", data=form) as response:
                status = response.status_code
                if status != 200:
                    await response.aread()
                    if status >= 500 or status in (401, 403, 404, 429):
                        raise InfluxUnavailable(self.url, _error_text(response), status=status)
                    raise QueryError(query, _error_text(response), status=status)
                pending = b""
                async for piece in response.aiter_bytes():
                    lines = (pending + piece).split(b"\n")
                    pending = lines.pop()
                    for line in lines:
                        if line.strip():
                            yield await asyncio.to_thread(_decode_chunk, query, line)
                if pending.strip():
                    yield await asyncio.to_thread(_decode_chunk, query, pending)
        except httpx.TransportError as exc:
            raise InfluxUnavailable(self.url, f"{type(exc).__name__}: {exc}") from None

    async def execute(self, statement: str, *, db: str | None = None) -> None:
        """Run one administrative statement (CREATE, ALTER, DROP); raise :class:`QueryError` if refused."""
        await self.query(statement, db=db)

    async def ping(self) -> bool:
        """True if the server answers ``/ping``."""
        try:
            response = await self._http.get("/ping")
        except httpx.TransportError:
            return False
        return response.status_code in (200, 204)

    # -- schema setup (1.x) ------------------------------------------------------------------------

    async def retention_policies(self) -> dict[str, tuple[str, bool]]:
        """``{name: (duration, default)}`` of the database's retention policies."""
        results = await self.query(f"SHOW RETENTION POLICIES ON {quote_ident(self.db)}")
        out: dict[str, tuple[str, bool]] = {}
        for series in results[0].series if results else []:
            for row in series.rows():
                out[str(row["name"])] = (str(row["duration"]), bool(row.get("default")))
        return out

    async def continuous_query_names(self) -> set[str]:
        """Names of the continuous queries defined on the database."""
        results = await self.query("SHOW CONTINUOUS QUERIES")
        names: set[str] = set()
        for series in results[0].series if results else []:
            if series.name == self.db:
                names.update(str(row[0]) for row in series.values)
        return names

    async def ensure_storage(
        self,
        *,
        raw_duration: str = "90d",
        downsampled_duration: str = "INF",
        downsample: bool = True,
        interval: str = "1h",
    ) -> list[str]:
        """Create the database, its retention policies and the downsampling continuous queries (1.x).

        Idempotent: existing policies are altered to the requested durations, existing continuous queries
        are left alone. Returns the statements that were executed.
        """
        done: list[str] = []

        async def run(statement: str) -> None:
            await self.execute(statement)
            done.append(statement)

        db = quote_ident(self.db)
        await run(f"CREATE DATABASE {db}")
        policies = await self.retention_policies()
        wanted: Sequence[tuple[str, str, bool]] = [(RAW_RETENTION, raw_duration, True)]
        if downsample:
            wanted = [*wanted, (DOWNSAMPLED_RETENTION, downsampled_duration, False)]
        for name, duration, default in wanted:
            verb = "ALTER" if name in policies else "CREATE"
            suffix = " DEFAULT" if default else ""
            replication = "" if verb == "ALTER" else " REPLICATION 1"
            await run(f"{verb} RETENTION POLICY {quote_ident(name)} ON {db} DURATION {duration}{replication}{suffix}")
        if downsample:
            existing = await self.continuous_query_names()
            for name, statement in continuous_queries(db=self.db, interval=interval):
                if name not in existing:
                    await run(statement)
        return done

    async def database_exists(self) -> bool:
        """Whether the server has this client's database (``SHOW DATABASES``; backup and restore check it first)."""
        results = await self.query("SHOW DATABASES", db="")
        names = {str(row.get("name")) for r in results for series in r.series for row in series.rows()}
        return self.db in names

    async def drop_database(self) -> None:
        """Drop the database (tests and ``eldercare`` maintenance only)."""
        await self.execute(f"DROP DATABASE {quote_ident(self.db)}")
