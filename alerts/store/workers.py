"""Workers in the alert store: contacts for notifications, login accounts, activation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError

from alerts.audit import AuditAction, Entity
from alerts.lifecycle import Channel
from alerts.store.audit_log import AuditLog, By, add_audit
from alerts.store.errors import InvalidRecord, RecordConflict, RecordNotFound
from alerts.store.records import SiteContext, WorkerContact, WorkerRecord
from alerts.store.registry_document import ID_PATTERN, ROLES
from alerts.store.session import record_of
from alerts.store.tables import Community, District, Grid, Street, Worker


class Workers(AuditLog):
    """Workers: who is told about an alert, who may log in, who may be assigned."""

    def recipients(self, context: SiteContext | None, roles: Iterable[str]) -> list[WorkerContact]:
        """Active workers holding ``roles`` for the home's grid, community, street or district (admins: anywhere)."""
        roles_list = list(roles)
        scope_of = {
            "grid_worker": context.grid_id if context else None,
            "community_duty": context.community_id if context else None,
            "street": context.street_id if context else None,
            "district": context.district_id if context else None,
        }
        conds = []
        for role in roles_list:
            if role == "admin":
                conds.append(Worker.role == "admin")
            elif (scope := scope_of.get(role)) is not None:
                conds.append(and_(Worker.role == role, Worker.scope == scope))
        if not conds:
            return []

        def load() -> list[WorkerContact]:
            with self._read() as s:
                rows = s.scalars(select(Worker).where(Worker.active.is_(True), or_(*conds)).order_by(Worker.id))
                return [self._contact(w) for w in rows]

        key = ("recipients", context.site if context else "", *roles_list)
        result: list[WorkerContact] = self._cached(key, load)
        return list(result)

    @staticmethod
    def _contact(w: Worker) -> WorkerContact:
        return record_of(WorkerContact, w, channels=list(w.channels or []), lang=w.lang or "zh")

    def worker(self, worker_id: str) -> WorkerContact | None:
        """One worker, or None."""
        with self._read() as s:
            w = s.get(Worker, worker_id)
            return self._contact(w) if w else None

    def set_worker_channels(self, worker_id: str, channels: Sequence[str], *, now_ms: int, actor: str) -> None:
        """Replace a worker's notification channels (apprise URLs); audited without the URLs' secrets."""
        with self._tx() as s:
            w = s.get(Worker, worker_id)
            if w is None:
                raise RecordNotFound("worker", worker_id)
            w.channels = list(channels)
            self.invalidate_registry_cache()
            schemes = [c.split("://", 1)[0] for c in channels]
            detail = {"channels": schemes}
            add_audit(s, By(actor, Channel.API, now_ms), AuditAction.WORKER_UPDATED, Entity.WORKER, worker_id, detail)

    @staticmethod
    def _worker_record(w: Worker) -> WorkerRecord:
        return record_of(WorkerRecord, w, lang=w.lang or "zh")

    def worker_record(self, worker_id: str) -> WorkerRecord | None:
        """One worker with login state (active or not), or None."""
        with self._read() as s:
            w = s.get(Worker, worker_id)
            return self._worker_record(w) if w else None

    def create_worker(
        self,
        *,
        worker_id: str,
        name: str,
        role: str,
        scope: str,
        phone: str,
        password_hash: str | None = None,
        channels: Sequence[str] = (),
        lang: str = "zh",
        actor: str,
        channel: str,
        now_ms: int,
    ) -> WorkerRecord:
        """Add a worker; the id and login phone must be new and ``scope`` a node of the role's level; audited.

        Raises :class:`RecordConflict` (id or phone taken) or :class:`InvalidRecord` (bad id, role or scope),
        both also ``ValueError``.
        """
        if not ID_PATTERN.fullmatch(worker_id):
            raise InvalidRecord("worker", "id", f"{worker_id!r} does not match {ID_PATTERN.pattern}")
        if role not in ROLES:
            raise InvalidRecord("worker", "role", f"unknown role {role!r}")
        if not name.strip():
            raise InvalidRecord("worker", "name", "a name is required")
        levels: dict[str, tuple[Any, ...]] = {
            "grid_worker": (Grid,), "community_duty": (Community,), "street": (Street,), "district": (District,),
            "admin": (District, Street, Community, Grid),
        }  # fmt: skip
        try:
            with self._tx() as s:
                # An admin covers everything: no scope, or any node of the hierarchy (as in the registry).
                everywhere = role == "admin" and scope == ""
                if not everywhere and not any(s.get(model, scope) is not None for model in levels[role]):
                    level = {"grid_worker": "grid", "community_duty": "community"}.get(role, role)
                    level = "node" if role == "admin" else level
                    raise InvalidRecord("worker", "scope", f"{scope!r} is not a known {level} (role {role})")
                if s.get(Worker, worker_id) is not None:
                    raise RecordConflict("worker", "id", worker_id)
                if phone and s.scalars(select(Worker.id).where(Worker.phone == phone).limit(1)).first() is not None:
                    raise RecordConflict("worker", "phone", phone)
                w = Worker(
                    id=worker_id, name=name.strip(), role=role, scope=scope, phone=phone or None,
                    channels=list(channels), lang=lang, active=True, password_hash=password_hash or None,
                )  # fmt: skip
                s.add(w)
                detail = {"role": role, "scope": scope, "password": password_hash is not None}
                add_audit(s, By(actor, channel, now_ms), AuditAction.WORKER_CREATED, Entity.WORKER, worker_id, detail)
                s.flush()
                record = self._worker_record(w)
        except IntegrityError:
            # PostgreSQL: a concurrent creation of the same id won between our check and our insert.
            raise RecordConflict("worker", "id", worker_id) from None
        self.invalidate_registry_cache()
        return record

    def set_worker_active(self, worker_id: str, active: bool, *, actor: str, channel: str, now_ms: int) -> WorkerRecord:
        """Activate or deactivate a worker (a deactivated one cannot log in, be notified or be assigned); audited.

        Setting the state it already has changes nothing and writes no audit entry.
        """
        with self._tx() as s:
            w = self._locked_worker(s, worker_id)
            if w.active != active:
                w.active = active
                action = AuditAction.WORKER_ACTIVATED if active else AuditAction.WORKER_DEACTIVATED
                add_audit(s, By(actor, channel, now_ms), action, Entity.WORKER, worker_id, {"active": active})
            record = self._worker_record(w)
        self.invalidate_registry_cache()
        return record

    def set_password_hash(self, worker_id: str, password_hash: str, *, actor: str, channel: str, now_ms: int) -> None:
        """Set a worker's login password (an argon2 hash, never the password); audited without the hash."""
        with self._tx() as s:
            w = self._locked_worker(s, worker_id)
            w.password_hash = password_hash
            add_audit(s, By(actor, channel, now_ms), AuditAction.WORKER_PASSWORD_SET, Entity.WORKER, worker_id)
