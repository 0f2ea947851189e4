"""The interface the web layer needs from the alert store; the store adapter and the in-memory fake implement it.

Every read takes the caller's :class:`~dashboards.scope.Scope` and returns only records inside it; a record
outside is ``None`` (the routes answer 404). Writes raise the store's typed errors
(:class:`~alerts.store.errors.InvalidTransition`, :class:`~alerts.store.errors.AlertNotFound`,
:class:`~alerts.store.errors.LinkError`) which the routes translate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from alerts.lifecycle import Action, Channel, Outcome
from alerts.links import LinkAction, LinkClaim
from dashboards.models import Account, AlertView, AuditRecord, Hierarchy, ResidentView, Role, VisitView
from dashboards.scope import Scope


class ConsoleBackend(Protocol):
    """Reads and writes behind the console, the phone pages, the statistics and the API."""

    def account(self, user_id: str) -> Account | None:
        """The account with this id (workers log in with their id or phone)."""
        ...

    def account_by_login(self, login: str) -> Account | None:
        """The account whose id or phone is ``login``."""
        ...

    def accounts(self, scope: Scope, *, active: bool = True) -> list[Account]:
        """Workers inside ``scope`` (the deactivated ones instead with ``active=False``)."""
        ...

    def create_worker(
        self, *, actor: str, worker_id: str, name: str, role: Role, scope: str, phone: str, password_hash: str
    ) -> Account:
        """Add an active worker; audited as ``worker.created`` by ``actor``.

        Raises ``ValueError`` with a clear message if the id or phone is taken or ``scope`` is no node of the
        role's level (the store's :class:`~alerts.store.errors.RecordConflict` / ``InvalidRecord`` are both).
        """
        ...

    def set_worker_active(self, worker_id: str, active: bool, *, actor: str) -> Account:
        """(De)activate a worker: an inactive one cannot log in, be notified or be assigned; audited.

        Raises :class:`~alerts.store.errors.RecordNotFound` if unknown.
        """
        ...

    def set_password_hash(self, worker_id: str, password_hash: str, *, actor: str) -> None:
        """Set a worker's login password (an argon2 hash); audited as ``worker.password_set`` by ``actor``.

        Raises :class:`~alerts.store.errors.RecordNotFound` if unknown.
        """
        ...

    def alerts_version(self) -> int:
        """A number that changes whenever any alert is raised or changes (cheap; polled by the live feed)."""
        ...

    def list_alerts(
        self,
        scope: Scope,
        *,
        active: bool | None = True,
        since_ms: int | None = None,
        until_ms: int | None = None,
        site: str | None = None,
    ) -> list[AlertView]:
        """Alerts inside ``scope``; ``active=None`` for all states; raise time in ``[since_ms, until_ms)``."""
        ...

    def get_alert(self, scope: Scope, alert_id: int) -> AlertView | None:
        """One alert with its history, or None if it does not exist or is outside ``scope``."""
        ...

    def act(
        self,
        alert_id: int,
        action: Action,
        *,
        actor: str,
        channel: Channel,
        now_ms: int,
        outcome: Outcome | None = None,
        note: str = "",
    ) -> AlertView:
        """Apply a lifecycle action (the store records the event and the audit entry)."""
        ...

    def assign(self, alert_id: int, worker_id: str, *, actor: str, now_ms: int) -> AlertView:
        """Make ``worker_id`` responsible for the alert."""
        ...

    def link_token(
        self, *, alert_id: int, worker_id: str, action: LinkAction, now_ms: int, expires_ms: int | None = None
    ) -> str:
        """A fresh one-tap link token (alerts.links format), expiring no later than ``expires_ms`` if given."""
        ...

    def verify_link(self, token: str, *, now_ms: int) -> LinkClaim:
        """Check a one-tap link without using it."""
        ...

    def use_link(self, token: str, *, now_ms: int, outcome: Outcome | None = None) -> AlertView:
        """Apply a one-tap link's action once (a second use answers with the same result)."""
        ...

    def list_residents(self, scope: Scope) -> list[ResidentView]:
        """Residents inside ``scope``."""
        ...

    def get_resident(self, scope: Scope, resident_id: str) -> ResidentView | None:
        """One resident (unmasked: the caller audits the read), or None if outside ``scope``."""
        ...

    def list_visits(self, scope: Scope, *, since_ms: int, until_ms: int) -> list[VisitView]:
        """Care visits to residents inside ``scope`` in ``[since_ms, until_ms)``."""
        ...

    def record_visit(self, *, resident_id: str, worker_id: str, time_ms: int, outcome: str, note: str) -> VisitView:
        """Store one care visit."""
        ...

    def hierarchy(self, scope: Scope) -> Hierarchy:
        """The nodes of the hierarchy inside ``scope`` (with their ancestors, for names)."""
        ...

    def import_registry(self, data: Mapping[str, Any], *, actor: str = "console") -> None:
        """Add or update hierarchy, workers, sites, devices and residents (docs/registry.md); audited as ``actor``."""
        ...

    def site_grid(self, site: str) -> str | None:
        """The grid of a home in any area (imports check ownership with it), or None if unknown."""
        ...

    def audit(
        self, *, actor: str, channel: str, action: str, entity: str, entity_id: str, detail: Mapping[str, str]
    ) -> None:
        """Append one audit entry."""
        ...

    def audit_log(self, *, limit: int = 200) -> Sequence[AuditRecord]:
        """The newest audit entries first."""
        ...
