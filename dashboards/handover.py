"""Shift handover notes (交班记录): whose notes an officer reads (the notes live in ``alerts.store.handover``)."""

from __future__ import annotations

from alerts.store.handover import HandoverNote
from alerts.views import Hierarchy

__all__ = ["HandoverNote", "visible_scopes"]


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
