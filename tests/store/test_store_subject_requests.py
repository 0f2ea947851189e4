"""PIPL data-subject requests: a resident's data exported in full, then erased (anonymised), audited."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session
from store_helpers import DAYTIME, load_registry_example, make_alert, store_raise

from alerts.store.away import AwayStore
from alerts.store.checkins import CheckInStep, CheckInStore
from alerts.store.errors import RecordNotFound
from alerts.store.guardians import GuardianStore
from alerts.store.learned import LearnedStore
from alerts.store.repository import AlertStore
from alerts.store.subject_requests import ERASED_NAME, erase_resident, export_resident, redact_closed_alerts
from alerts.store.tables import AlertRow, NotificationRow, Resident, Site, Visit


@pytest.fixture
def seeded(store: AlertStore) -> int:
    store.import_registry(load_registry_example(), now_ms=DAYTIME)
    alert_id = store_raise(store, make_alert()).record.id
    store.record_visit(resident_id="R0001", worker_id="W01", time_ms=DAYTIME, outcome="well", note="血压偏高，已提醒",
                       now_ms=DAYTIME)  # fmt: skip
    with Session(store.engine) as s, s.begin():
        s.add(NotificationRow(alert_id=alert_id, worker_id="W01", kind="alert", channel="json", target="x",
                              status="sent", attempts=1, created_ms=DAYTIME, title="张桂英 SOS",
                              body="幸福路 12 号 3 栋 402"))  # fmt: skip
    store.audit(now_ms=DAYTIME, actor="W02", channel="console", action="resident.read", entity="resident",
                entity_id="R0001")  # fmt: skip
    return alert_id


def test_export_holds_everything_about_the_resident_and_is_audited(store: AlertStore, seeded: int) -> None:
    doc = export_resident(store, "R0001", actor="cli:ops", now_ms=DAYTIME + 1)
    text = json.dumps(doc, ensure_ascii=False)
    assert doc["resident"]["id_number"] == "110101194001010020" and doc["resident"]["name"] == "张桂英"
    assert doc["home"]["address"] == "幸福路 12 号 3 栋 402" and len(doc["home"]["devices"]) == 6
    assert [a["id"] for a in doc["alerts"]] == [seeded] and doc["alerts"][0]["events"]
    assert doc["visits"][0]["note"] == "血压偏高，已提醒"
    assert doc["notifications"][0]["title"] == "张桂英 SOS"
    assert any(e["actor"] == "W02" and e["action"] == "resident.read" for e in doc["access_log"])
    assert "13700000001" in text  # emergency contact
    last = store.audit_entries(entity_id="R0001")[-1]
    assert (last.action, last.actor) == ("privacy.exported", "cli:ops")


def test_erase_anonymises_the_resident_everywhere_and_keeps_the_record(store: AlertStore, seeded: int) -> None:
    result = erase_resident(store, "R0001", actor="cli:ops", now_ms=DAYTIME + 2)
    assert (result.site, result.site_emptied, result.alerts, result.visits, result.notifications) == (
        "h0001", True, 1, 1, 1,
    )  # fmt: skip
    with Session(store.engine) as s:
        r = s.get(Resident, "R0001")
        assert r is not None
        assert (r.name, r.id_number, r.phone, r.birth_year, r.emergency_contacts, r.consent) == (
            ERASED_NAME, None, None, None, [], False,
        )  # fmt: skip
        assert s.get(Site, "h0001").address == ""  # type: ignore[union-attr]
        assert all(v.note is None for v in s.query(Visit))
        assert all(n.title is None and n.body is None for n in s.query(NotificationRow))
    doc = export_resident(store, "R0001", actor="cli:ops", now_ms=DAYTIME + 3)
    text = json.dumps(doc, ensure_ascii=False)
    for secret in ("张桂英", "110101194001010020", "13900000001", "13700000001", "幸福路", "血压"):
        assert secret not in text, secret
    assert store.get_alert(seeded).type == "sos"  # the alert record stays for statistics
    actions = [e.action for e in store.audit_entries(entity_id="R0001")]
    assert "privacy.erased" in actions and "resident.read" in actions  # the access record is kept


def test_unknown_resident_is_an_error(store: AlertStore) -> None:
    with pytest.raises(RecordNotFound):
        export_resident(store, "R9999", actor="cli", now_ms=1)
    with pytest.raises(RecordNotFound):
        erase_resident(store, "R9999", actor="cli", now_ms=1)


def test_retention_redacts_only_old_closed_alerts(store: AlertStore, seeded: int) -> None:
    assert redact_closed_alerts(store, closed_before_ms=DAYTIME + 10, actor="cli", now_ms=DAYTIME + 20) == 0  # open
    with Session(store.engine) as s, s.begin():
        s.execute(update(AlertRow).where(AlertRow.id == seeded).values(state="resolved", resolved_ms=DAYTIME,
                                                                       note="邻居帮忙"))  # fmt: skip
    assert redact_closed_alerts(store, closed_before_ms=DAYTIME, actor="cli", now_ms=DAYTIME + 20) == 0  # too recent
    assert redact_closed_alerts(store, closed_before_ms=DAYTIME + 10, actor="cli", now_ms=DAYTIME + 20) == 1
    with Session(store.engine) as s:
        row = s.get(AlertRow, seeded)
        assert row is not None and row.note is None and row.outcome is None and row.type == "sos"
        assert all(n.body is None for n in s.query(NotificationRow))
    assert redact_closed_alerts(store, closed_before_ms=DAYTIME + 10, actor="cli", now_ms=DAYTIME + 20) == 0


def test_the_homes_later_records_are_exported_and_erased_with_the_last_resident(store: AlertStore, seeded: int) -> None:
    """Tables added after the first export (guardians, away notices, check-ins, what the engine learned) hold the
    resident's data too: a hospital stay as an away notice's reason, a daughter's phone, the times she usually gets
    up. An access request shows them; an erasure that empties the home removes them (the guardians with it: their
    phones are other people's data, kept only to reach them about this resident)."""
    GuardianStore(store).add(
        resident_id="R0001", name="李小红", relation="女儿", phone="13811112222", channels=["json://x"], consent=True,
        actor="W01", now_ms=DAYTIME,
    )  # fmt: skip
    AwayStore(store).register(
        site="h0001", starts_ms=DAYTIME, ends_ms=DAYTIME + 86_400_000, reason="住院（心内科）", by_id="W01",
        by_name="王网格员", now_ms=DAYTIME,
    )  # fmt: skip
    CheckInStore(store).record(
        [CheckInStep("h0001", DAYTIME, DAYTIME, "prompt", ("inactivity",), "No activity for 47 min since 卫生间")],
        now_ms=DAYTIME,
    )
    LearnedStore(store).save([("h0001", {"personal": True, "not_up_by": "07:40"})], now_ms=DAYTIME)
    doc = export_resident(store, "R0001", actor="cli:ops", now_ms=DAYTIME + 1)
    assert [g["phone"] for g in doc["guardians"]] == ["13811112222"]
    assert [n["reason"] for n in doc["home"]["away_notices"]] == ["住院（心内科）"]
    assert [c["detail"] for c in doc["home"]["checkins"]] == ["No activity for 47 min since 卫生间"]
    assert doc["home"]["learned"]["not_up_by"] == "07:40"
    erase_resident(store, "R0001", actor="cli:ops", now_ms=DAYTIME + 2)
    text = json.dumps(export_resident(store, "R0001", actor="cli:ops", now_ms=DAYTIME + 3), ensure_ascii=False)
    for secret in ("李小红", "13811112222", "住院", "卫生间", "07:40"):
        assert secret not in text, secret
    assert LearnedStore(store).load("h0001") == {} and GuardianStore(store).for_resident("R0001") == []
    assert [c.what for c in CheckInStore(store).for_site("h0001")] == ["prompt"]  # counted in statistics still
