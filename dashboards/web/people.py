"""People named on a page (assignee, history actors, assign choices): their name and role, not their worker id."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from alerts.queries import StoreBackend
from alerts.scope import Scope
from alerts.views import Account, AlertView, Place
from dashboards.i18n import Translator

SYSTEM_ACTOR = "system"


def people_of(backend: StoreBackend, ids: Iterable[str]) -> dict[str, Account]:
    """The accounts behind ``ids``, deactivated ones included (someone who left still did what the history says).

    Looked up by id, whatever the viewer's scope: a grid worker's page names the duty officer who acknowledged.
    """
    wanted = {i for i in ids if i and i != SYSTEM_ACTOR}
    found = {i: a for i in wanted if (a := backend.account(i)) is not None}
    if wanted - found.keys():
        found.update({a.id: a for a in backend.accounts(Scope("all"), active=False) if a.id in wanted})
    return found


def person_labels(backend: StoreBackend, alert: AlertView, t: Translator) -> dict[str, str]:
    """``worker id → "name（role）"`` for the alert's assignee and every person in its history (and assigned).

    An id whose account is unknown is left out, so the page falls back to showing the id itself.
    """
    assigned = (e.note for e in alert.events if e.action == "assign")  # an assignment's note is the worker's id
    return name_labels(backend, [alert.assignee, *(e.actor for e in alert.events), *assigned], t)


def name_labels(backend: StoreBackend, ids: Iterable[str], t: Translator) -> dict[str, str]:
    """``worker id → "name（role）"`` of the known accounts among ``ids`` (e.g. who made each visit)."""
    return {i: t("queue.person", name=a.name, role=role_label(a, t)) for i, a in people_of(backend, ids).items()}


def role_label(account: Account, t: Translator) -> str:
    """The account's role in the page's language ("网格员", "grid worker")."""
    return t(f"role.{account.role.value}")


def area_names(backend: StoreBackend, scope: Scope) -> dict[str, str]:
    """``area id → name`` of every district, street, community and grid in ``scope`` (and their ancestors)."""
    tree = backend.hierarchy(scope)
    return {n.id: n.name for n in (*tree.districts, *tree.streets, *tree.communities, *tree.grids)}


def full_address(backend: StoreBackend, place: Place, address: str) -> str:
    """The home's address for a map search: district, street and community names before the registered address.

    The registry keeps no coordinates and its address is the street address alone ("幸福路 12 号 3 栋 402"), which a
    map finds in every city that has that road. A name the address already holds is not repeated.
    """
    names = area_names(backend, Scope("grid", place.grid))
    parts = [names.get(i, "") for i in (place.district, place.street, place.community)]
    prefix = "".join(p for p in parts if p and p not in address)
    return f"{prefix} {address}".strip() if address else ""


def choice_label(account: Account, areas: Mapping[str, str], t: Translator) -> str:
    """``"name · role · area"`` for a list to pick a worker from (an admin covers no area: ``"name · role"``).

    >>> from alerts.views import Role
    >>> choice_label(Account("W_G1", "王芳", Role.GRID_WORKER, "G03"), {"G03": "3号网格"}, Translator("zh"))
    '王芳 · 网格员 · 3号网格'
    """
    area = areas.get(account.scope, account.scope)
    return " · ".join(p for p in (account.name, role_label(account, t), area) if p)


def assign_choices(backend: StoreBackend, scope: Scope, t: Translator) -> list[tuple[str, str]]:
    """``(worker id, "name · role · area")`` of every active worker an alert in ``scope`` can be assigned to."""
    areas = area_names(backend, scope)
    return [(a.id, choice_label(a, areas, t)) for a in backend.accounts(scope)]
