"""The alert store: the only module that creates SQLAlchemy engines and sessions.

SQLite (default, embedded) and PostgreSQL run the same code. Writes that read before they write take
a row lock (``SELECT ... FOR UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite), and raising an alert is
one ``INSERT ... ON CONFLICT (open_key) DO UPDATE`` so concurrent raises of the same condition make one row.
The store is synchronous; the async service calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Connection, Engine, and_, case, create_engine, event, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from alerts.audit import AuditAction, AuditEntry, Entity
from alerts.escalation import DEVICE_TYPES, Timers
from alerts.lifecycle import ACTIVE_STATES, Action, Channel, Outcome, State, next_state, reached
from alerts.privacy import mask_id_number, mask_phone
from alerts.store import migrate as migrations
from alerts.store.errors import (
    AlertNotFound,
    InvalidRecord,
    InvalidTransition,
    RecordConflict,
    RecordNotFound,
    WorkerInactive,
)
from alerts.store.records import (
    AlertRecord,
    AssignResult,
    EventRecord,
    ImportReport,
    NotificationDraft,
    NotificationRecord,
    RaiseResult,
    ResidentRecord,
    SiteContext,
    TransitionResult,
    WorkerContact,
    WorkerRecord,
)
from alerts.store.registry_document import ID_PATTERN, ROLES, RegistryDoc, parse_registry
from alerts.store.tables import (
    AlertEvent,
    AlertRow,
    AuditRow,
    Base,
    Community,
    Device,
    District,
    Grid,
    LinkUse,
    NotificationRow,
    Resident,
    Site,
    Street,
    Visit,
    Worker,
)
from detection.models import Alert, AlertType

_LOG = logging.getLogger(__name__)
_ACTIVE: Final = tuple(s.value for s in ACTIVE_STATES)
_ALERT_FIELDS: Final = tuple(c.key for c in AlertRow.__table__.columns if c.key != "open_key")
SYSTEM: Final = "system"


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _min_due(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def open_key(site: str, alert_type: str, subject: str) -> str:
    """The dedup key of an active alert: one per home and type (per device for device-health types)."""
    return f"{site}|{alert_type}|{subject}"


def subject_of(alert: Alert) -> str:
    """Device-health alerts are per device; everything else is per home (resident)."""
    return (alert.device or "") if alert.type in DEVICE_TYPES else ""


def _alert_record(row: AlertRow) -> AlertRecord:
    data = {key: getattr(row, key) for key in _ALERT_FIELDS}
    data["notified"] = list(data["notified"] or [])
    data["evidence"] = dict(data["evidence"] or {})
    data["policy"] = dict(data["policy"] or {})
    return AlertRecord(**data)


def _notification_record(row: NotificationRow) -> NotificationRecord:
    return NotificationRecord(
        id=row.id,
        alert_id=row.alert_id,
        worker_id=row.worker_id,
        kind=row.kind,
        channel=row.channel,
        target=row.target,
        status=row.status,
        attempts=row.attempts,
        created_ms=row.created_ms,
        due_ms=row.due_ms,
        sent_ms=row.sent_ms,
        error=row.error,
        title=row.title,
        body=row.body,
    )


class AlertStore:
    """Repository over the alert and registry tables; every method is one transaction."""

    def __init__(
        self,
        *,
        url: str,
        migrate: bool = True,
        pool_size: int = 5,
        echo: bool = False,
        registry_cache_s: float = 30.0,
    ) -> None:
        self.url = normalise_url(url)
        self.registry_cache_s = registry_cache_s
        self._cache: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._cache_lock = threading.Lock()
        self.engine: Engine = self._create_engine(self.url, pool_size=pool_size, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(eldercare_read_only=True), expire_on_commit=False
        )
        if migrate:
            self.migrate()

    @staticmethod
    def _create_engine(url: str, *, pool_size: int, echo: bool) -> Engine:
        if url.startswith("sqlite"):
            memory = url in ("sqlite://", "sqlite:///:memory:")
            engine = create_engine(
                url,
                echo=echo,
                connect_args={"check_same_thread": False, "timeout": 30},
                poolclass=StaticPool if memory else None,
            )

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                # Let SQLAlchemy, not pysqlite, issue BEGIN, so every transaction takes the write
                # lock up front (BEGIN IMMEDIATE): read-then-write cannot deadlock between threads.
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                if not memory:
                    cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                # Read-only transactions (see _read) take no write lock, so they never queue behind writers.
                read_only = conn.get_execution_options().get("eldercare_read_only", False)
                conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

            return engine
        return create_engine(url, echo=echo, pool_size=pool_size, max_overflow=10, pool_pre_ping=True)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def migrate(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to ``revision`` (run at startup)."""
        with self.engine.begin() as conn:
            migrations.upgrade(conn, revision)

    def current_revision(self) -> str | None:
        """The database's migration revision."""
        with self.engine.connect() as conn:
            return migrations.current_revision(conn)

    def schema_diff(self) -> list[Any]:
        """Differences between the models and the database (empty after ``migrate``)."""
        with self.engine.connect() as conn:
            return migrations.schema_diff(conn)

    def close(self) -> None:
        """Release all pooled connections."""
        self.engine.dispose()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def _cached(self, key: tuple[str, ...], load: Any) -> Any:
        # Registry lookups are on every alert's hot path and change rarely: keep them briefly.
        # Imports in this process invalidate at once; other processes see changes within registry_cache_s.
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = load()
        with self._cache_lock:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = (now + self.registry_cache_s, value)
        return value

    def invalidate_registry_cache(self) -> None:
        """Forget cached registry lookups (after an import or a change of channels)."""
        with self._cache_lock:
            self._cache.clear()

    @contextlib.contextmanager
    def _read(self) -> Iterator[Session]:
        with self._read_sessions.begin() as session:
            yield session

    @contextlib.contextmanager
    def read_session(self) -> Iterator[Session]:
        """A read-only transaction for adapters that run their own scoped queries (the dashboards).

        On SQLite it starts with a plain ``BEGIN`` (a WAL snapshot), so it never queues behind a writer's
        ``BEGIN IMMEDIATE``; on PostgreSQL it is an ordinary transaction. Do not write through it.
        """
        with self._read() as session:
            yield session

    @staticmethod
    def _locked_alert(session: Session, alert_id: int) -> AlertRow:
        """The alert's row, locked for update until the transaction ends; :class:`AlertNotFound` if none."""
        row = session.scalars(select(AlertRow).where(AlertRow.id == alert_id).with_for_update()).first()
        if row is None:
            raise AlertNotFound(alert_id)
        return row

    @staticmethod
    def _locked_worker(session: Session, worker_id: str) -> Worker:
        """The worker's row, locked for update until the transaction ends; :class:`RecordNotFound` if none."""
        w = session.scalars(select(Worker).where(Worker.id == worker_id).with_for_update()).first()
        if w is None:
            raise RecordNotFound("worker", worker_id)
        return w

    def _insert(self, table: Any) -> Any:
        if self.dialect == "postgresql":
            return pg_dialect.insert(table)
        if self.dialect == "sqlite":
            return sqlite_dialect.insert(table)
        raise NotImplementedError(f"unsupported database {self.dialect}")

    # ------------------------------------------------------------------ audit

    @staticmethod
    def _audit(
        session: Session,
        *,
        now_ms: int,
        actor: str,
        channel: str,
        action: AuditAction | str,
        entity: Entity | str,
        entity_id: str | int,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        # Truncated to the column widths: the web layer audits free-form names (logins, exports) too.
        session.add(
            AuditRow(
                time_ms=now_ms,
                actor=actor[:64],
                channel=str(channel)[:16],
                action=str(action)[:64],
                entity=str(entity)[:32],
                entity_id=str(entity_id)[:64],
                detail=dict(detail or {}),
            )
        )

    def audit(
        self,
        *,
        now_ms: int,
        actor: str,
        channel: str,
        action: AuditAction | str,
        entity: Entity | str,
        entity_id: str | int,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one audit entry (``action``/``entity``: the enums, or a caller's own name such as ``login``)."""
        with self._tx() as s:
            self._audit(
                s, now_ms=now_ms, actor=actor, channel=channel, action=action, entity=entity, entity_id=entity_id,
                detail=detail,
            )  # fmt: skip

    def audit_entries(
        self, *, entity: Entity | None = None, entity_id: str | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """Audit entries in time order, optionally for one entity."""
        stmt = select(AuditRow).order_by(AuditRow.time_ms, AuditRow.id).limit(limit)
        if entity is not None:
            stmt = stmt.where(AuditRow.entity == entity.value)
        if entity_id is not None:
            stmt = stmt.where(AuditRow.entity_id == entity_id)
        with self._read() as s:
            return [
                AuditEntry(
                    id=r.id,
                    time_ms=r.time_ms,
                    actor=r.actor,
                    channel=r.channel,
                    action=r.action,
                    entity=r.entity,
                    entity_id=r.entity_id,
                    detail=dict(r.detail or {}),
                )  # fmt: skip
                for r in s.scalars(stmt)
            ]

    # ------------------------------------------------------------------ registry

    def import_registry(
        self,
        data: Mapping[str, Any] | bytes | str | RegistryDoc,
        *,
        now_ms: int,
        actor: str = SYSTEM,
        channel: str = Channel.API,
    ) -> ImportReport:
        """Upsert a registry document (docs/registry.md); idempotent, all or nothing, audited."""
        doc = data if isinstance(data, RegistryDoc) else parse_registry(data)
        tables: list[tuple[str, Any, list[dict[str, Any]]]] = [
            ("districts", District, [{"id": d.id, "name": d.name} for d in doc.all_districts]),
            ("streets", Street, [{"id": x.id, "name": x.name, "district_id": x.district} for x in doc.streets]),
            (
                "communities",
                Community,
                [{"id": x.id, "name": x.name, "street_id": x.street} for x in doc.communities],
            ),
            ("grids", Grid, [{"id": x.id, "name": x.name, "community_id": x.community} for x in doc.grids]),
            ("workers", Worker, [self._worker_values(w) for w in doc.workers]),
            (
                "sites",
                Site,
                [{"id": x.site, "gateway": x.gateway, "grid_id": x.grid, "address": x.address} for x in doc.sites],
            ),
            (
                "devices",
                Device,
                [
                    {"site_id": x.site, "device": d.device, "kind": d.kind, "room": d.room}
                    for x in doc.sites
                    for d in x.devices
                ],
            ),
            (
                "residents",
                Resident,
                [
                    {
                        "id": r.id,
                        "site_id": x.site,
                        "name": r.name,
                        "gender": r.gender,
                        "birth_year": r.birth_year,
                        "id_number": r.id_number,
                        "phone": r.phone,
                        "categories": list(r.categories),
                        "ability_level": r.ability_level,
                        "emergency_contacts": [
                            {"name": c.name, "relation": c.relation, "phone": c.phone} for c in r.emergency_contacts
                        ],
                        "consent": r.consent,
                    }
                    for x in doc.sites
                    for r in x.residents
                ],
            ),
        ]
        created: dict[str, int] = {}
        updated: dict[str, int] = {}
        self.invalidate_registry_cache()
        with self._tx() as s:
            for name, model, rows in tables:
                created[name], updated[name] = self._upsert_rows(s, model, rows)
            self._audit(
                s, now_ms=now_ms, actor=actor, channel=channel, action=AuditAction.REGISTRY_IMPORTED,
                entity=Entity.REGISTRY, entity_id="registry", detail={"created": created, "updated": updated},
            )  # fmt: skip
        self.invalidate_registry_cache()
        return ImportReport(created=created, updated=updated)

    @staticmethod
    def _worker_values(w: Any) -> dict[str, Any]:
        values: dict[str, Any] = {"id": w.id, "name": w.name, "role": w.role, "scope": w.scope, "phone": w.phone}
        if isinstance(w.channels, list):
            values["channels"] = list(w.channels)
        if isinstance(w.lang, str):
            values["lang"] = w.lang
        return values

    @staticmethod
    def _upsert_rows(session: Session, model: Any, rows: list[dict[str, Any]]) -> tuple[int, int]:
        if not rows:
            return 0, 0
        pk_cols = [c.key for c in model.__table__.primary_key.columns]
        existing: dict[tuple[Any, ...], dict[str, Any]] = {}
        keys_used = sorted({k for r in rows for k in r})
        cols = [model.__table__.c[k] for k in keys_used]
        wanted = {tuple(r[k] for k in pk_cols) for r in rows}
        # Large imports read the whole (small) registry table in one scan: long IN lists against a
        # freshly loaded, not yet analysed PostgreSQL table are planned as repeated sequential scans.
        chunks: list[Any] = [None] if len(rows) > 1000 else [rows]
        for chunk in chunks:
            stmt = select(*cols)
            if chunk is not None:
                # Filter on the first key column (an index prefix on every database), then exactly in Python.
                stmt = stmt.where(model.__table__.c[pk_cols[0]].in_(sorted({r[pk_cols[0]] for r in chunk})))
            for row in session.execute(stmt).mappings():
                key = tuple(row[k] for k in pk_cols)
                if key in wanted:
                    existing[key] = dict(row)
        new = [r for r in rows if tuple(r[k] for k in pk_cols) not in existing]
        changed = [
            r
            for r in rows
            if (old := existing.get(tuple(r[k] for k in pk_cols))) is not None
            and any(old[k] != v for k, v in r.items())
        ]
        if new:
            session.execute(insert(model), [{**_defaults(model), **r} for r in new])
        if changed:
            session.execute(update(model), changed)
        return len(new), len(changed)

    def site_context(self, site: str) -> SiteContext | None:
        """Address, hierarchy, first resident's name and devices of a home (None if not registered); cached."""
        result: SiteContext | None = self._cached(("site", site), lambda: self._load_site_context(site))
        return result

    def _load_site_context(self, site: str) -> SiteContext | None:
        with self._read() as s:
            row = s.execute(
                select(Site, Grid, Community, Street)
                .join(Grid, Grid.id == Site.grid_id)
                .join(Community, Community.id == Grid.community_id)
                .join(Street, Street.id == Community.street_id)
                .where(Site.id == site)
            ).first()
            if row is None:
                return None
            site_row, grid, community, street = row
            resident = s.scalars(
                select(Resident).where(Resident.site_id == site).order_by(Resident.id).limit(1)
            ).first()
            devices = {d.device: d.kind for d in s.scalars(select(Device).where(Device.site_id == site))}
            return SiteContext(
                site=site,
                address=site_row.address,
                grid_id=grid.id,
                community_id=community.id,
                community_name=community.name,
                street_id=street.id,
                district_id=street.district_id,
                resident_id=resident.id if resident else None,
                resident_name=resident.name if resident else "",
                devices=devices,
            )

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
        return WorkerContact(
            id=w.id, name=w.name, role=w.role, scope=w.scope, channels=list(w.channels or []), lang=w.lang or "zh"
        )

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
            self._audit(
                s, now_ms=now_ms, actor=actor, channel=Channel.API, action=AuditAction.WORKER_UPDATED,
                entity=Entity.WORKER, entity_id=worker_id, detail={"channels": schemes},
            )  # fmt: skip

    @staticmethod
    def _worker_record(w: Worker) -> WorkerRecord:
        return WorkerRecord(
            id=w.id, name=w.name, role=w.role, scope=w.scope, phone=w.phone, lang=w.lang or "zh", active=w.active,
            password_hash=w.password_hash,
        )  # fmt: skip

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
                self._audit(
                    s, now_ms=now_ms, actor=actor, channel=channel, action=AuditAction.WORKER_CREATED,
                    entity=Entity.WORKER, entity_id=worker_id,
                    detail={"role": role, "scope": scope, "password": password_hash is not None},
                )  # fmt: skip
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
                self._audit(
                    s, now_ms=now_ms, actor=actor, channel=channel,
                    action=AuditAction.WORKER_ACTIVATED if active else AuditAction.WORKER_DEACTIVATED,
                    entity=Entity.WORKER, entity_id=worker_id, detail={"active": active},
                )  # fmt: skip
            record = self._worker_record(w)
        self.invalidate_registry_cache()
        return record

    def set_password_hash(self, worker_id: str, password_hash: str, *, actor: str, channel: str, now_ms: int) -> None:
        """Set a worker's login password (an argon2 hash, never the password); audited without the hash."""
        with self._tx() as s:
            w = self._locked_worker(s, worker_id)
            w.password_hash = password_hash
            self._audit(
                s, now_ms=now_ms, actor=actor, channel=channel, action=AuditAction.WORKER_PASSWORD_SET,
                entity=Entity.WORKER, entity_id=worker_id, detail={},
            )  # fmt: skip

    def get_resident(
        self, resident_id: str, *, actor: str, channel: str, now_ms: int, reveal: bool = False
    ) -> ResidentRecord:
        """A resident's record, masked unless ``reveal``; every read is audited (with whether it was revealed)."""
        with self._tx() as s:
            row = s.execute(select(Resident, Site).join(Site).where(Resident.id == resident_id)).first()
            if row is None:
                raise RecordNotFound("resident", resident_id)
            res, site = row
            self._audit(
                s, now_ms=now_ms, actor=actor, channel=channel, action=AuditAction.RESIDENT_READ,
                entity=Entity.RESIDENT, entity_id=resident_id, detail={"revealed": reveal},
            )  # fmt: skip
            return self._resident_record(res, site, reveal=reveal)

    def list_residents(self, *, actor: str, channel: str, now_ms: int, site: str | None = None) -> list[ResidentRecord]:
        """Residents with masked ID numbers and phones; the listing is audited once."""
        stmt = select(Resident, Site).join(Site).order_by(Resident.id)
        if site is not None:
            stmt = stmt.where(Resident.site_id == site)
        with self._tx() as s:
            out = [self._resident_record(r, st, reveal=False) for r, st in s.execute(stmt)]
            self._audit(
                s, now_ms=now_ms, actor=actor, channel=channel, action=AuditAction.RESIDENT_READ,
                entity=Entity.RESIDENT, entity_id="*", detail={"count": len(out), "site": site},
            )  # fmt: skip
            return out

    @staticmethod
    def _resident_record(res: Resident, site: Site, *, reveal: bool) -> ResidentRecord:
        contacts = [dict(c) for c in (res.emergency_contacts or [])]
        if not reveal:
            for c in contacts:
                c["phone"] = mask_phone(c.get("phone"))
        return ResidentRecord(
            id=res.id,
            site=res.site_id,
            name=res.name,
            gender=res.gender,
            birth_year=res.birth_year,
            id_number=(res.id_number or "") if reveal else mask_id_number(res.id_number),
            phone=(res.phone or "") if reveal else mask_phone(res.phone),
            categories=list(res.categories or []),
            ability_level=res.ability_level,
            emergency_contacts=contacts,
            consent=res.consent,
            address=site.address,
        )

    def record_visit(
        self, *, resident_id: str, worker_id: str, time_ms: int, outcome: str, note: str | None, now_ms: int
    ) -> int:
        """Record a worker's visit to a resident; audited."""
        with self._tx() as s:
            visit = Visit(resident_id=resident_id, worker_id=worker_id, time_ms=time_ms, outcome=outcome, note=note)
            s.add(visit)
            s.flush()
            self._audit(
                s, now_ms=now_ms, actor=worker_id, channel=Channel.API, action=AuditAction.VISIT_RECORDED,
                entity=Entity.RESIDENT, entity_id=resident_id, detail={"visit": visit.id, "outcome": outcome},
            )  # fmt: skip
            return visit.id

    # ------------------------------------------------------------------ alerts

    def raise_alert(
        self,
        alert: Alert,
        *,
        now_ms: int,
        context: SiteContext | None,
        policy: Mapping[str, Any],
        timers: Timers,
    ) -> RaiseResult:
        """Store a raised alert, or count a repeat of the active one (race-free upsert on the dedup key)."""
        subject = subject_of(alert)
        table = AlertRow.__table__
        values: dict[str, Any] = {
            "site": alert.site,
            "community_id": context.community_id if context else None,
            "resident_id": context.resident_id if context else None,
            "device": alert.device,
            "type": alert.type.value,
            "subject": subject,
            "severity": alert.severity.value,
            "life_safety": alert.is_life_safety,
            "state": State.OPEN.value,
            "open_key": open_key(alert.site, alert.type.value, subject),
            "raised_ms": alert.time_ms,
            "created_ms": now_ms,
            "last_seen_ms": alert.time_ms,
            "count": 1,
            "explanation": alert.explanation,
            "explanation_zh": alert.explanation_zh,
            "evidence": dict(alert.evidence),
            "policy": dict(policy),
            "remind_due_ms": timers.remind_due_ms,
            "escalate_due_ms": timers.escalate_due_ms,
            "escalation_step": timers.escalation_step,
            "on_site_due_ms": timers.on_site_due_ms,
            "next_due_ms": _min_due(timers.remind_due_ms, timers.escalate_due_ms, timers.on_site_due_ms),
            "notified": [],
        }
        stmt = self._insert(table).values(**values)
        excluded = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.open_key],
            set_={
                "count": table.c.count + 1,
                "last_seen_ms": case(
                    (excluded.last_seen_ms > table.c.last_seen_ms, excluded.last_seen_ms), else_=table.c.last_seen_ms
                ),
                "explanation": excluded.explanation,
                "explanation_zh": excluded.explanation_zh,
                "evidence": excluded.evidence,
            },
        ).returning(table.c.id, table.c.count)
        with self._tx() as s:
            result = s.execute(stmt).one()
            alert_id, count = int(result[0]), int(result[1])
            created = count == 1
            if created:
                s.add(
                    AlertEvent(
                        alert_id=alert_id, time_ms=now_ms, actor=SYSTEM, channel=Channel.DEVICE.value, action="raise",
                        from_state=None, to_state=State.OPEN.value, outcome=None, note=None,
                    )
                )  # fmt: skip
                self._audit(
                    s, now_ms=now_ms, actor=SYSTEM, channel=Channel.DEVICE, action=AuditAction.ALERT_RAISED,
                    entity=Entity.ALERT, entity_id=alert_id,
                    detail={"site": alert.site, "type": alert.type.value, "severity": alert.severity.value},
                )  # fmt: skip
            elif alert.is_life_safety:
                self._audit(
                    s, now_ms=now_ms, actor=SYSTEM, channel=Channel.DEVICE, action=AuditAction.ALERT_REPEATED,
                    entity=Entity.ALERT, entity_id=alert_id, detail={"count": count},
                )  # fmt: skip
            row = s.get_one(AlertRow, alert_id, populate_existing=True)
            return RaiseResult(record=_alert_record(row), created=created)

    def clear_alert(self, alert: Alert, *, now_ms: int) -> AlertRecord | None:
        """The condition ended by itself: clear the active alert (life-safety: only mark ``cleared_ms``)."""
        key = open_key(alert.site, alert.type.value, subject_of(alert))
        with self._tx() as s:
            row = s.scalars(select(AlertRow).where(AlertRow.open_key == key).with_for_update()).first()
            if row is None:
                return None
            state = State(row.state)
            new = next_state(state, Action.CLEAR, life_safety=row.life_safety, alert_id=row.id)
            if row.cleared_ms is None:
                row.cleared_ms = now_ms
            if new is State.CLEARED:
                row.state = new.value
                row.open_key = None
                self._stop_timers(row, remind=True, on_site=True)
            s.add(
                AlertEvent(
                    alert_id=row.id, time_ms=now_ms, actor=SYSTEM, channel=Channel.DEVICE.value,
                    action=Action.CLEAR.value, from_state=state.value, to_state=new.value, outcome=None, note=None,
                )
            )  # fmt: skip
            self._audit(
                s, now_ms=now_ms, actor=SYSTEM, channel=Channel.DEVICE, action=AuditAction.ALERT_CLEARED,
                entity=Entity.ALERT, entity_id=row.id, detail={"state": new.value},
            )  # fmt: skip
            return _alert_record(row)

    @staticmethod
    def _stop_timers(row: AlertRow, *, remind: bool, on_site: bool) -> None:
        if remind:
            row.remind_due_ms = None
            row.escalate_due_ms = None
        if on_site:
            row.on_site_due_ms = None
        row.next_due_ms = _min_due(row.remind_due_ms, row.escalate_due_ms, row.on_site_due_ms)

    def get_alert(self, alert_id: int) -> AlertRecord:
        """One alert; raise :class:`AlertNotFound`."""
        with self._read() as s:
            row = s.get(AlertRow, alert_id)
            if row is None:
                raise AlertNotFound(alert_id)
            return _alert_record(row)

    def list_alerts(
        self,
        *,
        active_only: bool = False,
        site: str | None = None,
        alert_type: AlertType | None = None,
        limit: int = 200,
    ) -> list[AlertRecord]:
        """Alerts, newest first."""
        stmt = select(AlertRow).order_by(AlertRow.raised_ms.desc(), AlertRow.id.desc()).limit(limit)
        if active_only:
            stmt = stmt.where(AlertRow.state.in_(_ACTIVE))
        if site is not None:
            stmt = stmt.where(AlertRow.site == site)
        if alert_type is not None:
            stmt = stmt.where(AlertRow.type == alert_type.value)
        with self._read() as s:
            return [_alert_record(r) for r in s.scalars(stmt)]

    def events(self, alert_id: int) -> list[EventRecord]:
        """The alert's transitions in order."""
        with self._read() as s:
            rows = s.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id))
            return [
                EventRecord(
                    id=e.id,
                    alert_id=e.alert_id,
                    time_ms=e.time_ms,
                    actor=e.actor,
                    channel=e.channel,
                    action=e.action,
                    from_state=e.from_state,
                    to_state=e.to_state,
                    outcome=e.outcome,
                    note=e.note,
                )  # fmt: skip
                for e in rows
            ]

    def transition(
        self,
        alert_id: int,
        action: Action,
        *,
        actor: str,
        channel: Channel,
        now_ms: int,
        outcome: Outcome | None = None,
        note: str | None = None,
        link_nonce: str | None = None,
    ) -> TransitionResult:
        """Apply a lifecycle action; raise :class:`InvalidTransition` if refused.

        With ``link_nonce`` (a one-tap link) the call is idempotent: a used link or a step already done
        returns ``applied=False`` with the reason instead of raising.
        """
        try:
            return self._transition(alert_id, action, actor=actor, channel=channel, now_ms=now_ms, outcome=outcome,
                                    note=note, link_nonce=link_nonce)  # fmt: skip
        except IntegrityError:
            if link_nonce is None:
                raise
            # The same link was used concurrently: the other use won; answer with its result.
            return self._transition(alert_id, action, actor=actor, channel=channel, now_ms=now_ms, outcome=outcome,
                                    note=note, link_nonce=link_nonce)  # fmt: skip

    def _transition(
        self,
        alert_id: int,
        action: Action,
        *,
        actor: str,
        channel: Channel,
        now_ms: int,
        outcome: Outcome | None,
        note: str | None,
        link_nonce: str | None,
    ) -> TransitionResult:
        with self._tx() as s:
            row = self._locked_alert(s, alert_id)
            state = State(row.state)
            if link_nonce is not None:
                used = s.get(LinkUse, link_nonce)
                if used is not None:
                    return TransitionResult(
                        record=_alert_record(row), from_state=state.value, applied=False,
                        reason=f"link already used at {used.used_ms}",
                    )  # fmt: skip
                if reached(state, action):
                    reason = f"already {state.value}" + (f" by {row.owner_id}" if row.owner_id else "")
                    s.add(
                        LinkUse(nonce=link_nonce, alert_id=alert_id, worker_id=actor, action=action.value,
                                used_ms=now_ms, applied=False, state=state.value, detail=reason)
                    )  # fmt: skip
                    return TransitionResult(record=_alert_record(row), from_state=state.value, applied=False,
                                            reason=reason)  # fmt: skip
            new = next_state(state, action, life_safety=row.life_safety, outcome=outcome, alert_id=alert_id)
            self._apply(row, action, new, actor=actor, now_ms=now_ms, outcome=outcome, note=note)
            s.add(
                AlertEvent(
                    alert_id=alert_id, time_ms=now_ms, actor=actor, channel=channel.value, action=action.value,
                    from_state=state.value, to_state=new.value, outcome=outcome.value if outcome else None, note=note,
                )
            )  # fmt: skip
            detail: dict[str, Any] = {"from": state.value, "to": new.value, "action": action.value}
            if outcome is not None:
                detail["outcome"] = outcome.value
            if link_nonce is not None:
                detail["link"] = link_nonce
                s.add(
                    LinkUse(nonce=link_nonce, alert_id=alert_id, worker_id=actor, action=action.value, used_ms=now_ms,
                            applied=True, state=new.value, detail=None)
                )  # fmt: skip
            self._audit(
                s, now_ms=now_ms, actor=actor, channel=channel, action=AuditAction.ALERT_TRANSITION,
                entity=Entity.ALERT, entity_id=alert_id, detail=detail,
            )  # fmt: skip
            s.flush()
            return TransitionResult(record=_alert_record(row), from_state=state.value, applied=True)

    def assign(self, alert_id: int, worker_id: str, *, actor: str, channel: Channel, now_ms: int) -> AssignResult:
        """Make an active worker the alert's owner; records an ``assign`` event and an audit entry.

        Refused with :class:`InvalidTransition` when the alert is resolved or cleared, :class:`AlertNotFound`,
        :class:`RecordNotFound` (unknown worker) or :class:`WorkerInactive`. The state does not change: the
        assignee still acknowledges, goes and resolves through the usual actions.
        """
        with self._tx() as s:
            row = self._locked_alert(s, alert_id)
            state = State(row.state)
            if state not in ACTIVE_STATES:
                raise InvalidTransition(
                    alert_id=alert_id, state=state, action=Action.ASSIGN, reason=f"alert is {state} (final)"
                )
            worker = s.get(Worker, worker_id)
            if worker is None:
                raise RecordNotFound("worker", worker_id)
            if not worker.active:
                raise WorkerInactive(worker_id)
            previous = row.owner_id
            row.owner_id = worker_id
            s.add(
                AlertEvent(
                    alert_id=alert_id, time_ms=now_ms, actor=actor, channel=channel.value, action=Action.ASSIGN.value,
                    from_state=state.value, to_state=state.value, outcome=None, note=worker_id,
                )
            )  # fmt: skip
            self._audit(
                s, now_ms=now_ms, actor=actor, channel=channel, action=AuditAction.ALERT_ASSIGNED,
                entity=Entity.ALERT, entity_id=alert_id, detail={"worker": worker_id, "previous": previous},
            )  # fmt: skip
            s.flush()
            return AssignResult(record=_alert_record(row), previous_owner=previous, worker=self._contact(worker))

    @staticmethod
    def _apply(
        row: AlertRow, action: Action, new: State, *, actor: str, now_ms: int, outcome: Outcome | None, note: str | None
    ) -> None:
        if note:
            row.note = f"{row.note}\n{note}" if row.note else note
        if action is Action.NOTE:
            return
        if row.ack_ms is None:
            # Any forward step means someone has taken the alert: it counts as acknowledged.
            row.ack_ms = now_ms
            row.time_to_ack_ms = now_ms - row.raised_ms
            if actor != SYSTEM and row.owner_id is None:
                row.owner_id = actor
        if action is Action.EN_ROUTE:
            row.en_route_ms = now_ms
        if action is Action.ON_SITE:
            row.on_site_ms = now_ms
            row.time_to_on_site_ms = now_ms - row.raised_ms
        row.state = new.value
        if new is State.RESOLVED:
            row.resolved_ms = now_ms
            row.time_to_resolve_ms = now_ms - row.raised_ms
            row.outcome = outcome.value if outcome else None
            row.open_key = None
        AlertStore._stop_timers(row, remind=True, on_site=new in (State.ON_SITE, State.RESOLVED))

    # ------------------------------------------------------------------ escalation timers

    def due_alerts(self, now_ms: int, *, limit: int = 200) -> list[AlertRecord]:
        """Active alerts with a timer due at or before ``now_ms``, most overdue first."""
        stmt = (
            select(AlertRow)
            .where(AlertRow.next_due_ms <= now_ms, AlertRow.state.in_(_ACTIVE))
            .order_by(AlertRow.next_due_ms)
            .limit(limit)
        )
        with self._read() as s:
            return [_alert_record(r) for r in s.scalars(stmt)]

    def advance_timers(self, alert_id: int, *, expect_next_due_ms: int, timers: Timers) -> bool:
        """Compare-and-set the timers: only the caller that still sees ``expect_next_due_ms`` wins (no double send)."""
        next_due = _min_due(timers.remind_due_ms, timers.escalate_due_ms, timers.on_site_due_ms)
        stmt = (
            update(AlertRow)
            .where(
                AlertRow.id == alert_id,
                AlertRow.next_due_ms == expect_next_due_ms,
                AlertRow.state.in_(_ACTIVE),
            )
            .values(
                remind_due_ms=timers.remind_due_ms,
                escalate_due_ms=timers.escalate_due_ms,
                escalation_step=timers.escalation_step,
                on_site_due_ms=timers.on_site_due_ms,
                next_due_ms=next_due,
            )
            .execution_options(synchronize_session=False)
        )
        with self._tx() as s:
            return bool(s.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]

    def mark_notified(self, alert_id: int, worker_ids: Iterable[str], *, now_ms: int) -> None:
        """Remember who has been told (reminders go to everyone told so far)."""
        self.record_notifications(alert_id, [], now_ms=now_ms, notified=list(worker_ids))

    # ------------------------------------------------------------------ notifications

    def record_notifications(
        self,
        alert_id: int,
        drafts: Sequence[NotificationDraft],
        *,
        now_ms: int,
        audit_action: AuditAction | None = None,
        notified: Sequence[str] = (),
    ) -> list[int]:
        """Write notification rows, their audit entries and who has been told, in one transaction."""
        with self._tx() as s:
            rows = [
                NotificationRow(
                    alert_id=alert_id,
                    worker_id=d.worker_id,
                    kind=d.kind,
                    channel=d.channel,
                    target=d.target,
                    status=d.status,
                    attempts=d.attempts,
                    created_ms=now_ms,
                    due_ms=d.due_ms,
                    sent_ms=d.sent_ms,
                    error=d.error,
                    title=d.title,
                    body=d.body,
                )  # fmt: skip
                for d in drafts
            ]
            s.add_all(rows)
            if audit_action is not None:
                for d in drafts:
                    self._audit(
                        s, now_ms=now_ms, actor=SYSTEM, channel=Channel.SYSTEM, action=audit_action,
                        entity=Entity.ALERT, entity_id=alert_id,
                        detail={"worker": d.worker_id, "kind": d.kind, "channel": d.channel, "status": d.status},
                    )  # fmt: skip
            if notified:
                row = self._locked_alert(s, alert_id)
                known = list(row.notified or [])
                row.notified = known + [w for w in dict.fromkeys(notified) if w not in known]
                row.last_notified_ms = now_ms
            s.flush()
            return [r.id for r in rows]

    def claim_notifications(self, now_ms: int, *, limit: int = 500) -> list[NotificationRecord]:
        """Take queued/retry notifications that are due (status → sending); concurrent tickers split them."""
        with self._tx() as s:
            ids = list(
                s.scalars(
                    select(NotificationRow.id)
                    .where(NotificationRow.status.in_(("queued", "retry")), NotificationRow.due_ms <= now_ms)
                    .order_by(NotificationRow.due_ms, NotificationRow.id)
                    .limit(limit)
                )
            )
            if not ids:
                return []
            claimed = set(
                s.scalars(
                    update(NotificationRow)
                    .where(NotificationRow.id.in_(ids), NotificationRow.status.in_(("queued", "retry")))
                    .values(status="sending")
                    .returning(NotificationRow.id)
                    .execution_options(synchronize_session=False)
                )
            )
            rows = s.scalars(
                select(NotificationRow).where(NotificationRow.id.in_(claimed)).order_by(NotificationRow.id)
            )
            return [_notification_record(r) for r in rows]

    def finish_notification(
        self,
        notification_id: int,
        *,
        status: str,
        now_ms: int,
        error: str | None = None,
        due_ms: int | None = None,
        channel: str | None = None,
        target: str | None = None,
    ) -> None:
        """Record the result of a (re)send: sent, failed, or retry at ``due_ms``."""
        with self._tx() as s:
            row = s.get(NotificationRow, notification_id)
            if row is None:
                raise RecordNotFound("notification", str(notification_id))
            row.status = status
            row.attempts += 1
            row.error = error
            row.due_ms = due_ms
            if status == "sent":
                row.sent_ms = now_ms
            if channel is not None:
                row.channel = channel
            if target is not None:
                row.target = target

    def notifications(self, *, alert_id: int | None = None, worker_id: str | None = None) -> list[NotificationRecord]:
        """Notification records in order."""
        stmt = select(NotificationRow).order_by(NotificationRow.id)
        if alert_id is not None:
            stmt = stmt.where(NotificationRow.alert_id == alert_id)
        if worker_id is not None:
            stmt = stmt.where(NotificationRow.worker_id == worker_id)
        with self._read() as s:
            return [_notification_record(r) for r in s.scalars(stmt)]

    def counts(self) -> dict[str, int]:
        """Row counts per table (operator overview and tests)."""
        with self._read() as s:
            return {
                t.name: int(s.execute(select(func.count()).select_from(t)).scalar_one())
                for t in Base.metadata.sorted_tables
            }


def _defaults(model: Any) -> dict[str, Any]:
    """Python-side column defaults for bulk inserts (executemany skips ORM defaults for absent keys)."""
    out: dict[str, Any] = {}
    for col in model.__table__.columns:
        if col.default is not None and getattr(col.default, "is_scalar", False):
            out[col.key] = col.default.arg
        elif col.default is not None and getattr(col.default, "is_callable", False):
            out[col.key] = col.default.arg(None)
    return out
