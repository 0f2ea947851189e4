"""People named on a page (assignee, history actors): their name and role, not their worker id."""

from __future__ import annotations

from collections.abc import Iterable

from alerts.queries import StoreBackend
from alerts.scope import Scope
from alerts.views import Account, AlertView
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
    people = people_of(backend, [alert.assignee, *(e.actor for e in alert.events), *assigned])
    return {i: t("queue.person", name=a.name, role=t(f"role.{a.role.value}")) for i, a in people.items()}
