"""Data-subject requests under PIPL: export everything stored about one resident, or erase (anonymise) it.

Export (access request, PIPL art. 45): the resident's record, their home and devices, care visits, alerts with
their history and the notifications sent about them, their guardians (family contacts), the home's away notices,
check-in prompts and answers, and what the detection engine learned of the home's routine (saved profile), and the
audit entries that name them.

Erasure (art. 47) anonymises rather than deletes, so statistics and the alert record stay consistent: the
resident row keeps its id, home and ability level but loses name, ID number, phone, contacts, birth year and
categories (name becomes ``已删除``, consent false); visit notes and alert notes are cleared; notification titles
and bodies (which quote name and address) are blanked; the home's address is blanked when no other resident lives
there; with it go the home's routine as the engine learned it (the saved profile), the reasons of its away notices
("住院" is health data) and the details of its check-ins (times and steps stay for the statistics). The resident's
guardians are deleted: their names and phones are other people's data, kept only to reach them about this
resident. Alerts keep type, times and outcome (no personal data). The append-only audit log is kept (it is the
record of who accessed the data, which the law asks to keep) and gains a ``privacy.erased`` entry. Telemetry in
InfluxDB is erased by the caller (``DROP SERIES WHERE "site" = …``), as only the composition root talks to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from alerts.lifecycle import ACTIVE_STATES
from alerts.store.away import AwayNoticeRow
from alerts.store.checkins import CheckInRow
from alerts.store.errors import RecordNotFound
from alerts.store.guardians import GuardianRow
from alerts.store.learned import LearnedRow, LearnedStore
from alerts.store.repository import AlertStore
from alerts.store.tables import AlertEvent, AlertRow, AuditRow, Device, NotificationRow, Resident, Site, Visit

ERASED_NAME = "已删除"


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure changed."""

    resident_id: str
    site: str
    site_emptied: bool
    """True if no other resident lives at the home (its address was blanked; its telemetry may go)."""
    visits: int
    alerts: int
    notifications: int


def _resident(s: Session, resident_id: str) -> Resident:
    row = s.get(Resident, resident_id)
    if row is None:
        raise RecordNotFound("resident", resident_id)
    return row


def export_resident(store: AlertStore, resident_id: str, *, actor: str, now_ms: int) -> dict[str, Any]:
    """Everything stored about a resident, as JSON-ready data; the export itself is audited."""
    with Session(store.engine) as s:
        r = _resident(s, resident_id)
        site = s.get(Site, r.site_id)
        alerts = list(s.scalars(select(AlertRow).where(AlertRow.resident_id == resident_id).order_by(AlertRow.id)))
        ids = [a.id for a in alerts]
        events = list(s.scalars(select(AlertEvent).where(AlertEvent.alert_id.in_(ids)).order_by(AlertEvent.id)))
        notes = list(
            s.scalars(select(NotificationRow).where(NotificationRow.alert_id.in_(ids)).order_by(NotificationRow.id))
        )
        audit = s.scalars(
            select(AuditRow)
            .where(or_(AuditRow.entity_id == resident_id, AuditRow.entity_id.in_([str(i) for i in ids])))
            .order_by(AuditRow.id)
        )
        document: dict[str, Any] = {
            "resident": {
                "id": r.id, "name": r.name, "gender": r.gender, "birth_year": r.birth_year, "id_number": r.id_number,
                "phone": r.phone, "categories": list(r.categories or []), "ability_level": r.ability_level,
                "emergency_contacts": list(r.emergency_contacts or []), "consent": r.consent,
            },
            "home": {
                "site": r.site_id, "address": site.address if site else "", "grid": site.grid_id if site else "",
                "devices": [
                    {"device": d.device, "kind": d.kind, "room": d.room}
                    for d in s.scalars(select(Device).where(Device.site_id == r.site_id).order_by(Device.device))
                ],
                "away_notices": [
                    {"starts_ms": n.starts_ms, "ends_ms": n.ends_ms, "reason": n.reason, "by": n.created_by,
                     "ended_ms": n.ended_ms, "ended_reason": n.ended_reason}
                    for n in s.scalars(select(AwayNoticeRow).where(AwayNoticeRow.site == r.site_id)
                                       .order_by(AwayNoticeRow.id))
                ],
                "checkins": [
                    {"time_ms": c.time_ms, "prompt_ms": c.prompt_ms, "step": c.what, "types": c.types,
                     "detail": c.detail}
                    for c in s.scalars(select(CheckInRow).where(CheckInRow.site == r.site_id)
                                       .order_by(CheckInRow.time_ms, CheckInRow.id))
                ],
            },
            "guardians": [
                {"name": g.name, "relation": g.relation, "phone": g.phone, "channels": list(g.channels or []),
                 "consent": g.consent, "consent_ms": g.consent_ms, "active": g.active}
                for g in s.scalars(select(GuardianRow).where(GuardianRow.resident_id == resident_id)
                                   .order_by(GuardianRow.id))
            ],
            "visits": [
                {"time_ms": v.time_ms, "worker": v.worker_id, "outcome": v.outcome, "note": v.note}
                for v in s.scalars(select(Visit).where(Visit.resident_id == resident_id).order_by(Visit.time_ms))
            ],
            "alerts": [
                {
                    "id": a.id, "type": a.type, "severity": a.severity, "state": a.state, "raised_ms": a.raised_ms,
                    "explanation": a.explanation, "explanation_zh": a.explanation_zh, "outcome": a.outcome,
                    "note": a.note,
                    "events": [
                        {"time_ms": e.time_ms, "actor": e.actor, "action": e.action, "to_state": e.to_state,
                         "note": e.note}
                        for e in events if e.alert_id == a.id
                    ],
                }
                for a in alerts
            ],
            "notifications": [
                {"alert": n.alert_id, "worker": n.worker_id, "channel": n.channel, "status": n.status,
                 "title": n.title, "body": n.body}
                for n in notes
            ],
            "access_log": [
                {"time_ms": e.time_ms, "actor": e.actor, "action": e.action, "entity": e.entity,
                 "entity_id": e.entity_id}
                for e in audit
            ],
        }  # fmt: skip
    document["home"]["learned"] = LearnedStore(store).load(document["home"]["site"])
    store.audit(
        now_ms=now_ms, actor=actor, channel="system", action="privacy.exported", entity="resident",
        entity_id=resident_id, detail={"alerts": len(document["alerts"]), "visits": len(document["visits"])},
    )  # fmt: skip
    return document


def erase_resident(store: AlertStore, resident_id: str, *, actor: str, now_ms: int) -> Erasure:
    """Anonymise a resident everywhere in the store, in one transaction; audited as ``privacy.erased``."""
    with Session(store.engine) as s, s.begin():
        r = _resident(s, resident_id)
        site_id = r.site_id
        r.name, r.gender, r.birth_year, r.id_number, r.phone = ERASED_NAME, None, None, None, None
        r.categories, r.emergency_contacts, r.consent = [], [], False
        visits = len(list(s.scalars(select(Visit.id).where(Visit.resident_id == resident_id))))
        s.execute(update(Visit).where(Visit.resident_id == resident_id).values(note=None))
        ids = list(s.scalars(select(AlertRow.id).where(AlertRow.resident_id == resident_id)))
        s.execute(update(AlertRow).where(AlertRow.id.in_(ids)).values(note=None))
        s.execute(update(AlertEvent).where(AlertEvent.alert_id.in_(ids)).values(note=None))
        notifications = len(list(s.scalars(select(NotificationRow.id).where(NotificationRow.alert_id.in_(ids)))))
        s.execute(update(NotificationRow).where(NotificationRow.alert_id.in_(ids)).values(title=None, body=None))
        others = s.scalars(
            select(Resident.id).where(Resident.site_id == site_id, Resident.id != resident_id).limit(1)
        ).first()
        guardians = len(list(s.scalars(select(GuardianRow.id).where(GuardianRow.resident_id == resident_id))))
        s.execute(delete(GuardianRow).where(GuardianRow.resident_id == resident_id))
        emptied = others is None
        if emptied:
            site = s.get(Site, site_id)
            if site is not None:
                site.address = ""
            s.execute(delete(LearnedRow).where(LearnedRow.site == site_id))
            s.execute(update(AwayNoticeRow).where(AwayNoticeRow.site == site_id).values(reason="", ended_reason=""))
            s.execute(update(CheckInRow).where(CheckInRow.site == site_id).values(detail=""))
    result = Erasure(resident_id, site_id, emptied, visits, len(ids), notifications)
    store.audit(
        now_ms=now_ms, actor=actor, channel="system", action="privacy.erased", entity="resident",
        entity_id=resident_id,
        detail={"site": site_id, "site_emptied": emptied, "visits": result.visits, "alerts": result.alerts,
                "notifications": result.notifications, "guardians": guardians},
    )  # fmt: skip
    return result


def redact_closed_alerts(store: AlertStore, *, closed_before_ms: int, actor: str, now_ms: int) -> int:
    """Retention: blank the free text of alerts closed before the cutoff (notes, notification title and body).

    Type, times, outcome and the event trail stay (statistics, SLA). Returns how many alerts were redacted;
    audited as ``privacy.retention``.
    """
    with Session(store.engine) as s, s.begin():
        ids = list(
            s.scalars(
                select(AlertRow.id).where(
                    AlertRow.state.not_in([st.value for st in ACTIVE_STATES]),
                    AlertRow.resolved_ms.is_not(None),
                    AlertRow.resolved_ms < closed_before_ms,
                    or_(AlertRow.note.is_not(None), AlertRow.id.in_(select(NotificationRow.alert_id).where(
                        NotificationRow.body.is_not(None)))),
                )
            )
        )  # fmt: skip
        if ids:
            s.execute(update(AlertRow).where(AlertRow.id.in_(ids)).values(note=None))
            s.execute(update(AlertEvent).where(AlertEvent.alert_id.in_(ids)).values(note=None))
            s.execute(update(NotificationRow).where(NotificationRow.alert_id.in_(ids)).values(title=None, body=None))
    store.audit(
        now_ms=now_ms, actor=actor, channel="system", action="privacy.retention", entity="alert", entity_id="*",
        detail={"closed_before_ms": closed_before_ms, "alerts": len(ids)},
    )  # fmt: skip
    return len(ids)
