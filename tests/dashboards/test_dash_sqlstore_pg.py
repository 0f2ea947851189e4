"""The dashboards' store adapter (``StoreBackend``) on a real PostgreSQL: scoped reads, actions, accounts, audit.

The rest of the dashboards suite runs the adapter on SQLite; these tests run its key operations on the
session's PostgreSQL (``postgres_server`` in tests/conftest.py) with the real alert service and a real webhook.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from dash_fixtures import IDS, registry
from dash_harness import TestStoreBackend, store_backend
from support.receivers import Webhook

from alerts.lifecycle import Action, Channel, Outcome, State
from alerts.notify import AppriseNotifier
from alerts.scope import Scope
from alerts.store.errors import InvalidTransition, RecordNotFound, WorkerInactive
from alerts.views import Role
from detection.models import Alert, AlertType, Severity
from eldercare.servers.postgres import Postgres

pytestmark = [pytest.mark.postgres, pytest.mark.integration]
HOUR = 3_600_000


@pytest.fixture
def pg_backend(postgres_server: Postgres, webhook: Webhook) -> Iterator[TestStoreBackend]:
    """The adapter over a fresh PostgreSQL database, the dashboards' test district, W_G1 on a real webhook."""
    name = f"d_{uuid.uuid4().hex[:12]}"
    doc = registry()
    for w in doc["workers"]:
        w["channels"] = [webhook.url(w["id"])]
    backend = store_backend(postgres_server.create_database(name), notifier=AppriseNotifier(), doc=doc)
    assert backend.store.dialect == "postgresql"
    yield backend
    backend.store.close()
    postgres_server.drop_database(name)


def sos(site: str, now: int) -> Alert:
    return Alert(
        site=site, type=AlertType.SOS, severity=Severity.CRITICAL, time_ms=now, explanation=f"SOS at {site}",
        explanation_zh=f"{site} SOS", device="btn1",
    )  # fmt: skip


def test_pg_scoped_alerts_act_and_assign(pg_backend: TestStoreBackend, webhook: Webhook) -> None:
    b = pg_backend
    now = b.service.clock()
    a1 = b.raise_alert(sos("h1", now))  # G01 (C01)
    a4 = b.raise_alert(sos("h4", now))  # G04 (C03)
    webhook.wait(1)
    c01 = Scope("community", "C01")
    assert [a.id for a in b.list_alerts(c01)] == [a1.id]
    assert {a.id for a in b.list_alerts(Scope("all"))} == {a1.id, a4.id}
    assert b.get_alert(c01, a4.id) is None and b.get_alert(c01, a1.id) is not None
    assert b.list_alerts(c01, active=False) == []

    version = b.alerts_version()
    assigned = b.assign(a1.id, "W_G1", actor="W_C1", now_ms=now)
    assert assigned.assignee == "W_G1" and assigned.state is State.OPEN
    assert [(e.action, e.actor, e.note) for e in assigned.events][-1] == ("assign", "W_C1", "W_G1")
    assert b.alerts_version() != version
    sent = [n for n in b.store.notifications(alert_id=a1.id) if n.worker_id == "W_G1" and n.kind == "assigned"]
    assert [n.status for n in sent] == ["sent"]
    assert any("已指派给您" in m["title"] for m in webhook.to("W_G1"))

    acked = b.act(a1.id, Action.ACKNOWLEDGE, actor="W_G1", channel=Channel.CONSOLE, now_ms=now)
    assert acked.state is State.ACKNOWLEDGED and acked.acked_ms is not None and acked.assignee == "W_G1"
    done = b.act(
        a1.id, Action.RESOLVE, actor="W_G1", channel=Channel.CONSOLE, now_ms=now, outcome=Outcome.ASSISTED_AT_HOME
    )
    assert done.state is State.RESOLVED and done.outcome == "assisted_at_home"
    assert [a.id for a in b.list_alerts(c01, active=False)] == [a1.id]
    with pytest.raises(InvalidTransition):
        b.assign(a1.id, "W_G2", actor="W_C1", now_ms=now)  # closed
    with pytest.raises(RecordNotFound):
        b.assign(a4.id, "nobody", actor="admin", now_ms=now)
    b.set_worker_active("W_G4", False, actor="admin")
    with pytest.raises(WorkerInactive):
        b.assign(a4.id, "W_G4", actor="admin", now_ms=now)


def test_pg_residents_visits_and_hierarchy(pg_backend: TestStoreBackend) -> None:
    b = pg_backend
    assert [r.id for r in b.list_residents(Scope("street", "S01"))] == ["R1", "R2", "R3"]
    r1 = b.get_resident(Scope("grid", "G01"), "R1")
    assert r1 is not None and r1.id_number == IDS["R1"] and r1.grid_worker == "李网格"
    assert {d.device for d in r1.devices} == {"mat1", "btn1", "door1"} and all(d.online for d in r1.devices)
    assert b.get_resident(Scope("grid", "G01"), "R2") is None

    now = b.service.clock()
    visit = b.record_visit(resident_id="R1", worker_id="W_G1", time_ms=now, outcome="well", note="ok")
    b.record_visit(resident_id="R4", worker_id="W_G4", time_ms=now, outcome="well", note="")
    window = {"since_ms": now - HOUR, "until_ms": now + HOUR}
    assert [v.id for v in b.list_visits(Scope("community", "C01"), **window)] == [visit.id]
    assert len(b.list_visits(Scope("all"), **window)) == 2
    assert b.list_visits(Scope("all"), since_ms=now + 1, until_ms=now + HOUR) == []

    h = b.hierarchy(Scope("street", "S01"))
    assert [g.id for g in h.grids] == ["G01", "G02", "G03"]
    assert [c.id for c in h.communities] == ["C01", "C02"] and [d.id for d in h.districts] == ["D01"]
    assert [g.id for g in b.hierarchy(Scope("grid", "G04")).grids] == ["G04"]


def test_pg_accounts_create_deactivate_password_and_audit(pg_backend: TestStoreBackend) -> None:
    b = pg_backend
    assert {a.id for a in b.accounts(Scope("community", "C01"))} == {"W_C1", "W_G1", "W_G2"}
    login = b.account_by_login("13800000001")
    assert login is not None and login.id == "W_G1"

    made = b.create_worker(
        actor="W_C1", worker_id="W_G9", name="孙网格", role=Role.GRID_WORKER, scope="G02", phone="13800000019",
        password_hash="$argon2id$v=19$x",
    )  # fmt: skip
    assert (made.id, made.role, made.scope, made.password_hash) == ("W_G9", Role.GRID_WORKER, "G02", "$argon2id$v=19$x")
    assert "W_G9" in {a.id for a in b.accounts(Scope("community", "C01"))}
    with pytest.raises(ValueError, match="phone"):
        b.create_worker(
            actor="W_C1", worker_id="W_G8", name="重号", role=Role.GRID_WORKER, scope="G02", phone="13800000019",
            password_hash="",
        )  # fmt: skip
    with pytest.raises(ValueError, match="not a known community"):
        b.create_worker(
            actor="W_C1", worker_id="W_C9", name="错层", role=Role.COMMUNITY_DUTY, scope="G01", phone="",
            password_hash="",
        )  # fmt: skip

    b.set_password_hash("W_G9", "$argon2id$v=19$y", actor="W_C1")
    account = b.account("W_G9")
    assert account is not None and account.password_hash == "$argon2id$v=19$y"
    off = b.set_worker_active("W_G9", False, actor="W_C1")
    assert off.id == "W_G9"
    assert b.account("W_G9") is None and b.account_by_login("13800000019") is None
    assert "W_G9" not in {a.id for a in b.accounts(Scope("all"))}
    with pytest.raises(RecordNotFound):
        b.set_worker_active("nobody", False, actor="W_C1")
    with pytest.raises(RecordNotFound):
        b.set_password_hash("nobody", "x", actor="W_C1")

    b.audit(actor="W_C1", channel="console", action="login", entity="worker", entity_id="W_C1", detail={})
    log = b.audit_log(limit=5)
    assert [(e.action, e.actor, e.entity_id) for e in log[:4]] == [
        ("login", "W_C1", "W_C1"),
        ("worker.deactivated", "W_C1", "W_G9"),
        ("worker.password_set", "W_C1", "W_G9"),
        ("worker.created", "W_C1", "W_G9"),
    ]
    assert all("argon2" not in str(e.detail) for e in log)


def test_pg_handover_notes_and_guardians(pg_backend: TestStoreBackend) -> None:
    """Issue 15's two tables on PostgreSQL: handover notes by scope, guardians and consent."""
    from alerts.store.guardians import GuardianStore
    from alerts.store.handover import HandoverStore

    now = pg_backend.service.clock()
    notes = HandoverStore(pg_backend.store)
    notes.add(author_id="W_C1", author_name="王值班", scope="C01", text="床垫离线", now_ms=now - 1000)
    notes.add(author_id="W_G4", author_name="钱网格", scope="G04", text="other street", now_ms=now)
    assert [n.text for n in notes.recent({"S01", "C01", "G01", "G02"}, since_ms=now - HOUR)] == ["床垫离线"]
    assert len(notes.recent(None, since_ms=now - HOUR)) == 2
    guardians = GuardianStore(pg_backend.store)
    yes = guardians.add(
        resident_id="R1", name="张明", relation="子女", phone="13700000001", channels=["json://x/y"], consent=True,
        actor="W_C1", now_ms=now,
    )  # fmt: skip
    guardians.add(
        resident_id="R1", name="张亮", relation="子女", phone="", channels=["json://x/z"], consent=False,
        actor="W_C1", now_ms=now,
    )  # fmt: skip
    assert [g.id for g in guardians.to_notify("h1")] == [yes.id]
    guardians.set_consent(yes.id, False, actor="W_C1", now_ms=now)
    assert guardians.to_notify("h1") == []
    with pytest.raises(RecordNotFound):
        guardians.add(resident_id="nobody", name="x", relation="x", phone="", channels=[], consent=True,
                      actor="W_C1", now_ms=now)  # fmt: skip
    assert {"handover.noted", "guardian.added", "guardian.consent"} <= {e.action for e in pg_backend.audit_log()}
