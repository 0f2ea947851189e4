"""Shift handover notes (交班记录) behind the console; the store's implementation is ``HandoverStore``."""

from __future__ import annotations

from typing import Protocol

from alerts.store.handover import HandoverNote
from alerts.views import Hierarchy

__all__ = ["HandoverBook", "HandoverNote", "visible_scopes"]


class HandoverBook(Protocol):
    """Where handover notes are kept."""

    def add(self, *, author_id: str, author_name: str, scope: str, text: str, now_ms: int) -> HandoverNote:
        """Save a note (and audit it)."""
        ...

    def recent(self, scopes: set[str] | None, *, since_ms: int, limit: int = 20) -> list[HandoverNote]:
        """Newest first, since ``since_ms``, for one of ``scopes`` (None: all)."""
        ...


def visible_scopes(scope_id: str, tree: Hierarchy) -> set[str]:
    """The officer's own node and every node below it: whose handover notes they read.

    >>> from alerts.views import Node
    >>> tree = Hierarchy(streets=(Node("S1", "s", "D1"),), communities=(Node("C1", "c", "S1"),))
    >>> sorted(visible_scopes("S1", tree))
    ['C1', 'S1']
    """
    seen = {scope_id}
    for level in (tree.districts, tree.streets, tree.communities, tree.grids):
        seen |= {n.id for n in level if n.parent in seen}
    return seen
