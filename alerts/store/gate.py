"""The in-process write gate of an SQLite alert store: one writer at a time, life-safety writes first.

SQLite allows one writer; a thread whose ``BEGIN IMMEDIATE`` finds the database locked is put to sleep by
SQLite's busy handler (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms, ...) and retries, so under a burst of
alerts a commit waits tens to hundreds of milliseconds after the lock is already free, in no particular
order. Writers of the same process queue here instead: a waiting thread is woken the moment the writer
before it commits, and a life-safety write (an SOS, smoke, gas or fall alert being stored) is let in before
every ordinary write still waiting (notification rows, audit entries, registry changes), whatever their
arrival order. Writers in other processes (a dashboards process on the same file) still meet SQLite's own
lock and busy timeout.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class WriteGate:
    """A re-entrant lock with two classes of waiters: urgent ones are always let in before ordinary ones."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._urgent_waiting = 0
        self._ordinary_waiting = 0

    @property
    def waiting(self) -> tuple[int, int]:
        """``(urgent, ordinary)`` threads waiting for the gate now."""
        with self._cond:
            return self._urgent_waiting, self._ordinary_waiting

    def acquire(self, *, urgent: bool = False) -> None:
        """Wait for the gate (re-entrant for the thread holding it)."""
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            if urgent:
                self._urgent_waiting += 1
                try:
                    self._cond.wait_for(lambda: self._owner is None)
                finally:
                    self._urgent_waiting -= 1
            else:
                self._ordinary_waiting += 1
                try:
                    self._cond.wait_for(lambda: self._owner is None and self._urgent_waiting == 0)
                finally:
                    self._ordinary_waiting -= 1
            self._owner = me
            self._depth = 1

    def try_acquire(self, *, urgent: bool = False) -> bool:
        """Take the gate only if that needs no waiting (re-entrant); True if taken.

        An ordinary writer does not take a free gate while urgent writers wait for it.
        """
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            if self._owner is not None or (not urgent and self._urgent_waiting):
                return False
            self._owner = me
            self._depth = 1
            return True

    def release(self) -> None:
        """Leave the gate; the next urgent waiter, else the next ordinary one, goes in."""
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("write gate released by a thread that does not hold it")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()

    @contextlib.contextmanager
    def held(self, *, urgent: bool = False) -> Iterator[None]:
        """Hold the gate for the block."""
        self.acquire(urgent=urgent)
        try:
            yield
        finally:
            self.release()
