"""The alert store's engine, sessions and shared transaction helpers; every aggregate builds on :class:`StoreBase`.

SQLite (default, embedded) and PostgreSQL run the same code. Writes that read before they write take
a row lock (``SELECT ... FOR UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite). The store is
synchronous; the async service calls it through ``asyncio.to_thread``. The only module that creates
SQLAlchemy engines and sessions.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any, Final, Literal, TypeVar

import msgspec
from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from alerts.store import migrate as migrations
from alerts.store.errors import (
    AlertNotFound,
    RecordNotFound,
    StoreSchemaAhead,
    StoreSchemaBehind,
    StoreSchemaMismatch,
    StoreUnavailable,
    WriteBusy,
    first_line,
)
from alerts.store.gate import WriteGate
from alerts.store.tables import AlertRow, Worker
from alerts.store.urls import masked_url, pg_connect_args

SYSTEM: Final = "system"
BUSY_TIMEOUT_MS: Final = 30_000
"""How long an SQLite writer waits for another process's write lock (SQLite's busy handler)."""
R = TypeVar("R", bound=msgspec.Struct)


def record_of(cls: type[R], row: object, **overrides: Any) -> R:
    """A store record from an ORM row: each of the record's fields read from the row's attribute of that name."""
    values = {name: getattr(row, name) for name in cls.__struct_fields__ if name not in overrides}
    return cls(**values, **overrides)


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


MIGRATION_LOCK = 0x656C6465  # "elde"
"""PostgreSQL advisory lock key held while a process migrates the store (``StoreBase.migrate``)."""


class StoreBase:
    """Engine, sessions, the registry cache and row locks: what every aggregate of the store shares."""

    def __init__(
        self,
        *,
        url: str,
        migrate: bool | Literal["new"] = True,
        pool_size: int = 5,
        echo: bool = False,
        registry_cache_s: float = 30.0,
    ) -> None:
        self.url = normalise_url(url)
        self.registry_cache_s = registry_cache_s
        self._cache: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._cache_lock = threading.Lock()
        try:
            self.engine: Engine = self._create_engine(self.url, pool_size=pool_size, echo=echo)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise StoreUnavailable(url=masked_url(url), reason=first_line(exc)) from None
        self._nowait_engine: Engine | None = None
        self._nowait_sessions: sessionmaker[Session] | None = None
        """SQLite file: sessions on connections that never wait for the write lock nor checkpoint (``nowait``)."""
        # SQLite has one writer: this process's writers queue here (life-safety first), not in SQLite's busy
        # handler, which sleeps between retries (alerts/store/gate.py). PostgreSQL locks rows instead.
        self.write_gate: WriteGate | None = WriteGate() if self.engine.dialect.name == "sqlite" else None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if self.write_gate is not None:
            memory = self.url in ("sqlite://", "sqlite:///:memory:")  # one shared connection, no other process
            nowait = self.engine if memory else self._create_engine(self.url, pool_size=1, echo=echo, nowait=True)
            self._nowait_engine = nowait
            self._nowait_sessions = sessionmaker(nowait, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(eldercare_read_only=True), expire_on_commit=False
        )
        if migrate:
            try:
                self.migrate(only_new=migrate == "new")
            except OperationalError as exc:
                self.close()
                raise StoreUnavailable(url=masked_url(url), reason=first_line(exc.orig or exc)) from None
            except StoreSchemaMismatch:
                self.close()
                raise

    @staticmethod
    def _create_engine(url: str, *, pool_size: int, echo: bool, nowait: bool = False) -> Engine:
        """The engine for ``url``.

        On SQLite, ``nowait`` makes its connections fail at once on a held write lock (busy timeout 0) and leave WAL
        checkpoints (an fsync of both files) to the other connections.
        """
        if url.startswith("sqlite"):
            memory = url in ("sqlite://", "sqlite:///:memory:")
            engine = create_engine(
                url,
                echo=echo,
                hide_parameters=True,  # an error's text (logged) names the statement, not the personal data in it
                connect_args={"check_same_thread": False, "timeout": 30},
                poolclass=StaticPool if memory else None,
            )

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                # Let SQLAlchemy, not pysqlite, issue BEGIN, so every transaction takes the write
                # lock up front (BEGIN IMMEDIATE): read-then-write cannot deadlock between threads.
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                if not memory:
                    cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute(f"PRAGMA busy_timeout={0 if nowait else BUSY_TIMEOUT_MS}")
                if nowait and not memory:
                    cur.execute("PRAGMA wal_autocheckpoint=0")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                # Read-only transactions (see _read) take no write lock, so they never queue behind writers.
                read_only = conn.get_execution_options().get("eldercare_read_only", False)
                conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

            return engine
        return create_engine(
            url, echo=echo, pool_size=pool_size, max_overflow=10, pool_pre_ping=True, connect_args=pg_connect_args(url),
            hide_parameters=True,
        )  # fmt: skip

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def migrate(self, revision: str = "head", *, only_new: bool = False) -> None:
        """Apply Alembic migrations up to ``revision`` (run at startup).

        ``only_new``: set up a store never migrated, but raise :class:`StoreSchemaBehind` on an older schema (the
        commands other than ``eldercare db upgrade``: a timer's command run after ``git pull`` must not change the
        schema under services still running the old code).

        One process at a time: the backend, the console and every partition worker open the store as they start,
        and on PostgreSQL two of them migrating a new store at once collided on its tables (the later ones failed
        on a duplicate type and stopped). A transaction-level advisory lock makes the others wait, then read the
        revision the first one left. SQLite's ``BEGIN IMMEDIATE`` serialises them already.
        """
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            current, head = migrations.current_revision(conn), migrations.head_revision()
            if current is not None and current != head and not migrations.is_known(current):
                raise StoreSchemaAhead(url=masked_url(self.url), revision=current, head=head)
            if only_new and current is not None and current != head:
                raise StoreSchemaBehind(url=masked_url(self.url), revision=current, head=head)
            migrations.upgrade(conn, revision)

    def current_revision(self) -> str | None:
        """The database's migration revision; :class:`StoreUnavailable` when the database cannot be reached."""
        try:
            with self.engine.connect() as conn:
                return migrations.current_revision(conn)
        except OperationalError as exc:
            raise StoreUnavailable(url=masked_url(self.url), reason=first_line(exc.orig or exc)) from None

    def clear_for_restore(self) -> None:
        """Drop every table, sequence and enum type of the PostgreSQL store's ``public`` schema (a restore's start).

        ``pg_restore --clean`` drops only what the dump holds: a backup from an older schema restored over a newer
        store kept the newer tables, and the migration after it failed on them (``eldercare restore``).
        """
        if self.dialect != "postgresql":
            raise ValueError("clear_for_restore is for PostgreSQL stores (a SQLite store is replaced as a file)")
        with self.engine.begin() as conn:
            for kind, query in (
                ("TABLE", "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"),
                ("SEQUENCE", "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"),
                ("TYPE", "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                         " WHERE n.nspname = 'public' AND t.typtype = 'e'"),
            ):  # fmt: skip
                names = [r[0] for r in conn.exec_driver_sql(query)]
                if names:
                    quoted = ", ".join(conn.dialect.identifier_preparer.quote(n) for n in names)
                    conn.exec_driver_sql(f"DROP {kind} IF EXISTS {quoted} CASCADE")

    def schema_diff(self) -> list[Any]:
        """Differences between the models and the database (empty after ``migrate``)."""
        with self.engine.connect() as conn:
            return migrations.schema_diff(conn)

    def close(self) -> None:
        """Release all pooled connections."""
        self.engine.dispose()
        if self._nowait_engine is not None:
            self._nowait_engine.dispose()

    @property
    def writes_without_waiting(self) -> bool:
        """True if a write can be tried with ``nowait`` (SQLite: it then fails at once instead of waiting)."""
        return self._nowait_sessions is not None

    @contextlib.contextmanager
    def _tx(self, *, urgent: bool = False, nowait: bool = False) -> Iterator[Session]:
        """One write transaction; ``urgent`` (a life-safety alert being stored) goes before waiting ordinary writes.

        ``nowait`` (SQLite only, :attr:`writes_without_waiting`): raise :class:`WriteBusy` at once, with nothing
        written, where the write would wait for the lock (another writer of this process or of another one).
        """
        gate = self.write_gate
        if nowait:
            if gate is None or self._nowait_sessions is None:
                raise ValueError("nowait writes need an SQLite store")
            if not gate.try_acquire(urgent=urgent):
                raise WriteBusy("this process")
            try:
                with self._nowait_sessions.begin() as session:
                    yield session
            except OperationalError as exc:
                if isinstance(exc.orig, sqlite3.OperationalError) and exc.orig.sqlite_errorcode == sqlite3.SQLITE_BUSY:
                    raise WriteBusy("another connection") from exc
                raise
            finally:
                gate.release()
            return
        if gate is None:
            with self._sessions.begin() as session:
                yield session
            return
        with gate.held(urgent=urgent), self._sessions.begin() as session:
            yield session

    def _cached(self, key: tuple[str, ...], load: Any) -> Any:
        # Registry lookups are on every alert's hot path and change rarely: keep them briefly.
        # Imports in this process invalidate at once; other processes see changes within registry_cache_s.
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = load()
        with self._cache_lock:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = (now + self.registry_cache_s, value)
        return value

    def invalidate_registry_cache(self) -> None:
        """Forget cached registry lookups (after an import or a change of channels)."""
        with self._cache_lock:
            self._cache.clear()

    @contextlib.contextmanager
    def _read(self) -> Iterator[Session]:
        with self._read_sessions.begin() as session:
            yield session

    @contextlib.contextmanager
    def read_session(self) -> Iterator[Session]:
        """A read-only transaction for adapters that run their own scoped queries (the dashboards).

        On SQLite it starts with a plain ``BEGIN`` (a WAL snapshot), so it never queues behind a writer's
        ``BEGIN IMMEDIATE``; on PostgreSQL it is an ordinary transaction. Do not write through it.
        """
        with self._read() as session:
            yield session

    @staticmethod
    def _locked_alert(session: Session, alert_id: int) -> AlertRow:
        """The alert's row, locked for update until the transaction ends; :class:`AlertNotFound` if none."""
        row = session.scalars(select(AlertRow).where(AlertRow.id == alert_id).with_for_update()).first()
        if row is None:
            raise AlertNotFound(alert_id)
        return row

    @staticmethod
    def _locked_worker(session: Session, worker_id: str) -> Worker:
        """The worker's row, locked for update until the transaction ends; :class:`RecordNotFound` if none."""
        w = session.scalars(select(Worker).where(Worker.id == worker_id).with_for_update()).first()
        if w is None:
            raise RecordNotFound("worker", worker_id)
        return w

    def _insert(self, table: Any) -> Any:
        if self.dialect == "postgresql":
            return pg_dialect.insert(table)
        if self.dialect == "sqlite":
            return sqlite_dialect.insert(table)
        raise NotImplementedError(f"unsupported database {self.dialect}")
