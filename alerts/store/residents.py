"""Registry, homes, residents and visits in the alert store: import, site context, masked reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from alerts.audit import AuditAction, Entity
from alerts.lifecycle import Channel
from alerts.privacy import mask_id_number, mask_phone
from alerts.store.audit_log import AuditLog, By, add_audit
from alerts.store.errors import RecordNotFound
from alerts.store.records import ImportReport, ResidentRecord, SiteContext
from alerts.store.registry_document import RegistryDoc, parse_registry
from alerts.store.session import SYSTEM
from alerts.store.tables import Community, Device, District, Grid, Resident, Site, Street, Visit, Worker
from gateway.rooms import room_or_none


class Residents(AuditLog):
    """The registry document's tables (hierarchy, sites, devices, residents) and care visits."""

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
                    {"site_id": x.site, "device": d.device, "kind": d.kind, "room": room_or_none(d.room)}
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
            detail = {"created": created, "updated": updated}
            add_audit(s, By(actor, channel, now_ms), AuditAction.REGISTRY_IMPORTED, Entity.REGISTRY, "registry", detail)
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
            registered = list(s.scalars(select(Device).where(Device.site_id == site)))
            devices = {d.device: d.kind for d in registered}
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
                rooms={d.device: d.room for d in registered if d.room},
            )

    def get_resident(
        self, resident_id: str, *, actor: str, channel: str, now_ms: int, reveal: bool = False
    ) -> ResidentRecord:
        """A resident's record, masked unless ``reveal``; every read is audited (with whether it was revealed)."""
        with self._tx() as s:
            row = s.execute(select(Resident, Site).join(Site).where(Resident.id == resident_id)).first()
            if row is None:
                raise RecordNotFound("resident", resident_id)
            res, site = row
            detail = {"revealed": reveal}
            add_audit(s, By(actor, channel, now_ms), AuditAction.RESIDENT_READ, Entity.RESIDENT, resident_id, detail)
            return self._resident_record(res, site, reveal=reveal)

    def list_residents(self, *, actor: str, channel: str, now_ms: int, site: str | None = None) -> list[ResidentRecord]:
        """Residents with masked ID numbers and phones; the listing is audited once."""
        stmt = select(Resident, Site).join(Site).order_by(Resident.id)
        if site is not None:
            stmt = stmt.where(Resident.site_id == site)
        with self._tx() as s:
            out = [self._resident_record(r, st, reveal=False) for r, st in s.execute(stmt)]
            detail = {"count": len(out), "site": site}
            add_audit(s, By(actor, channel, now_ms), AuditAction.RESIDENT_READ, Entity.RESIDENT, "*", detail)
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
            detail = {"visit": visit.id, "outcome": outcome}
            add_audit(
                s, By(worker_id, Channel.API, now_ms), AuditAction.VISIT_RECORDED, Entity.RESIDENT, resident_id, detail
            )
            return visit.id


def _defaults(model: Any) -> dict[str, Any]:
    """Python-side column defaults for bulk inserts (executemany skips ORM defaults for absent keys)."""
    out: dict[str, Any] = {}
    for col in model.__table__.columns:
        if col.default is not None and getattr(col.default, "is_scalar", False):
            out[col.key] = col.default.arg
        elif col.default is not None and getattr(col.default, "is_callable", False):
            out[col.key] = col.default.arg(None)
    return out
