"""Shift handover notes (交班记录) behind the console: the port and an in-memory implementation for tests/demos.

The alert store's implementation is :class:`alerts.store.handover.HandoverStore`.
"""

from __future__ import annotations

import threading
from typing import Protocol

from alerts.store.handover import HandoverNote
from dashboards.models import Hierarchy

__all__ = ["HandoverBook", "HandoverNote", "MemoryHandover", "visible_scopes"]


class HandoverBook(Protocol):
    """Where handover notes are kept."""

    def add(self, *, author_id: str, author_name: str, scope: str, text: str, now_ms: int) -> HandoverNote:
        """Save a note (and audit it)."""
        ...

    def recent(self, scopes: set[str] | None, *, since_ms: int, limit: int = 20) -> list[HandoverNote]:
        """Newest first, since ``since_ms``, for one of ``scopes`` (None: all)."""
        ...


class MemoryHandover:
    """Handover notes in a list (the in-memory backend's companion)."""

    def __init__(self) -> None:
        self._notes: list[HandoverNote] = []
        self._lock = threading.Lock()

    def add(self, *, author_id: str, author_name: str, scope: str, text: str, now_ms: int) -> HandoverNote:
        """Save a note."""
        with self._lock:
            note = HandoverNote(len(self._notes) + 1, now_ms, author_id, author_name, scope, text)
            self._notes.append(note)
            return note

    def recent(self, scopes: set[str] | None, *, since_ms: int, limit: int = 20) -> list[HandoverNote]:
        """Newest first."""
        with self._lock:
            notes = [n for n in self._notes if n.time_ms >= since_ms and (scopes is None or n.scope in scopes)]
        return sorted(notes, key=lambda n: (n.time_ms, n.id), reverse=True)[:limit]


def visible_scopes(scope_id: str, tree: Hierarchy) -> set[str]:
    """The officer's own node and every node below it: whose handover notes they read.

    >>> from dashboards.models import Node
    >>> tree = Hierarchy(streets=(Node("S1", "s", "D1"),), communities=(Node("C1", "c", "S1"),))
    >>> sorted(visible_scopes("S1", tree))
    ['C1', 'S1']
    """
    seen = {scope_id}
    for level in (tree.districts, tree.streets, tree.communities, tree.grids):
        seen |= {n.id for n in level if n.parent in seen}
    return seen
