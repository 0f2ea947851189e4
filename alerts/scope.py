"""Least privilege: what part of the hierarchy a person may see, as a predicate and as a SQL filter.

Every list and detail query goes through :func:`scope_of` and then either :meth:`Scope.contains` (in memory) or
:func:`scope_clause` (SQL). A record outside the scope is reported as "not found", never as "forbidden", so the
existence of another grid's resident does not leak.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, false, true
from sqlalchemy.orm import InstrumentedAttribute

from alerts.views import Account, Place, Role

Level = Literal["all", "district", "street", "community", "grid"]
Column = ColumnElement[Any] | InstrumentedAttribute[Any]

LEVEL_OF_ROLE: dict[Role, Level] = {
    Role.ADMIN: "all",
    Role.DISTRICT: "district",
    Role.STREET: "street",
    Role.COMMUNITY_DUTY: "community",
    Role.GRID_WORKER: "grid",
}
"""The hierarchy level each role works at (admins: everything)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """A node of the hierarchy and everything under it (``level="all"``: everything)."""

    level: Level
    id: str = ""

    def contains(self, place: Place) -> bool:
        """True if a home at ``place`` is inside this scope.

        >>> Scope("community", "C01").contains(Place("D01", "S01", "C01", "G02"))
        True
        >>> Scope("grid", "G01").contains(Place("D01", "S01", "C01", "G02"))
        False
        """
        if self.level == "all":
            return True
        return bool(self.id) and getattr(place, self.level) == self.id


def area_inside(scope: Scope, area: str, places: Iterable[Place], *, level: Level | None = None) -> bool:
    """True if the hierarchy node ``area`` has homes and all of them lie inside ``scope``.

    ``level`` names the node's level; without it ``area`` may be a node of any level.

    >>> places = [Place("D01", "S01", "C01", "G01"), Place("D01", "S01", "C02", "G03")]
    >>> area_inside(Scope("community", "C01"), "G01", places), area_inside(Scope("community", "C01"), "S01", places)
    (True, False)
    """
    if level is None:
        under = [p for p in places if area in (p.district, p.street, p.community, p.grid)]
    else:
        under = [p for p in places if getattr(p, level) == area]
    return bool(under) and all(scope.contains(p) for p in under)


def scope_of(user: Account) -> Scope:
    """The scope of a logged-in person: admins see everything, others their node of the hierarchy.

    >>> scope_of(Account(id="W01", name="李", role=Role.GRID_WORKER, scope="G01"))
    Scope(level='grid', id='G01')
    """
    return Scope(LEVEL_OF_ROLE[user.role], user.scope)


def scope_clause(
    who: Account | Scope,
    *,
    district: Column,
    street: Column,
    community: Column,
    grid: Column,
) -> ColumnElement[bool]:
    """A SQL ``WHERE`` clause restricting rows (sites, residents, alerts joined to sites) to ``user``'s scope.

    The caller passes the columns that hold each level's id for the rows being filtered (usually from the
    joined grid → community → street chain), so the same rule serves every table.
    """
    scope = who if isinstance(who, Scope) else scope_of(who)
    columns = {"district": district, "street": street, "community": community, "grid": grid}
    if scope.level == "all":
        return true()
    if not scope.id:
        return false()
    return columns[scope.level] == scope.id
