"""Event-time timers for many homes: one binary heap with lazy cancellation.

A timer is named by ``(site, name)`` and has one due time; scheduling it again replaces it. Cancelled or
replaced entries stay in the heap and are skipped when popped (lazy deletion), so both operations are
O(log n) pushes at most and a tick pass costs O(k log n) for the k timers that are due, independent of the
number of homes. Detectors keep "no message for N" timers lazy as well: they record the last-seen time on
each reading (O(1), no heap push) and only re-arm when the timer fires early.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

TimerKey = tuple[str, str]
"""``(site, name)``."""


class TimerQueue:
    """A min-heap of ``(due_ms, seq, site, name)`` plus the authoritative due time of each live timer."""

    __slots__ = ("_due", "_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str, str]] = []
        self._due: dict[TimerKey, int] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, site: str, name: str, due_ms: int) -> None:
        """Arm (or re-arm) the timer ``(site, name)`` to fire at ``due_ms``."""
        key = (site, name)
        if self._due.get(key) == due_ms:
            return
        self._due[key] = due_ms
        self._seq += 1
        heapq.heappush(self._heap, (due_ms, self._seq, site, name))
        if len(self._heap) > 4 * len(self._due) + 1024:
            self._compact()

    def cancel(self, site: str, name: str) -> None:
        """Disarm a timer; a no-op if it is not armed."""
        self._due.pop((site, name), None)

    def due_of(self, site: str, name: str) -> int | None:
        """Due time of an armed timer, or None."""
        return self._due.get((site, name))

    def peek_ms(self) -> int:
        """Lower bound of the next due time (may belong to a cancelled entry); a huge number when empty."""
        heap = self._heap
        return heap[0][0] if heap else 1 << 62

    def next_due(self) -> int | None:
        """Earliest due time of any armed timer, or None when nothing is armed."""
        heap = self._heap
        while heap:
            due, _, site, name = heap[0]
            if self._due.get((site, name)) == due:
                return due
            heapq.heappop(heap)
        return None

    def pop_due(self, now_ms: int) -> list[tuple[int, str, str]]:
        """Remove and return every armed timer with ``due <= now_ms`` as ``(due, site, name)``, earliest first."""
        heap = self._heap
        live = self._due
        out: list[tuple[int, str, str]] = []
        while heap and heap[0][0] <= now_ms:
            due, _, site, name = heapq.heappop(heap)
            key = (site, name)
            if live.get(key) == due:
                del live[key]
                out.append((due, site, name))
        return out

    def pop_one(self, now_ms: int) -> tuple[int, str, str] | None:
        """Remove and return the earliest armed timer due at or before ``now_ms``, or None."""
        heap = self._heap
        live = self._due
        while heap and heap[0][0] <= now_ms:
            due, _, site, name = heapq.heappop(heap)
            key = (site, name)
            if live.get(key) == due:
                del live[key]
                return due, site, name
        return None

    def items(self) -> list[tuple[str, str, int]]:
        """Every armed timer as ``(site, name, due_ms)`` (for snapshots)."""
        return [(site, name, due) for (site, name), due in self._due.items()]

    def load(self, items: Iterable[tuple[str, str, int]]) -> None:
        """Arm every timer of a snapshot."""
        for site, name, due in items:
            self.schedule(site, name, due)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if self._due.get((e[2], e[3])) == e[0]]
        heapq.heapify(self._heap)
