"""Migrations, append-only audit log and the registry import, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import doctest
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from store_helpers import load_registry_example

import alerts.commands
import alerts.escalation
import alerts.lifecycle
import alerts.privacy
import alerts.store.urls
from alerts.audit import AuditAction, Entity
from alerts.store.errors import RecordNotFound, RegistryImportError
from alerts.store.repository import AlertStore


def _head() -> str | None:
    from alembic.script import ScriptDirectory

    from alerts.store.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_store_migrates_to_head_and_matches_models(db_url: str) -> None:
    store = AlertStore(url=db_url)
    try:
        assert store.current_revision() == _head()
        assert store.schema_diff() == []
        store.migrate()  # idempotent at startup
        assert store.current_revision() == _head()
    finally:
        store.close()


def test_store_downgrade_and_upgrade_round_trip(db_url: str) -> None:
    store = AlertStore(url=db_url)
    try:
        with store.engine.begin() as conn:
            from alerts.store import migrate

            migrate.downgrade(conn, "base")
        assert store.current_revision() is None
        store.migrate()
        assert store.schema_diff() == []
        assert set(store.counts()) >= {"alerts", "alert_events", "notifications", "audit_log", "residents", "visits"}
    finally:
        store.close()


def test_store_audit_log_is_append_only(store: AlertStore) -> None:
    store.audit(
        now_ms=1, actor="W01", channel="console", action=AuditAction.RESIDENT_READ, entity=Entity.RESIDENT,
        entity_id="R0001",
    )  # fmt: skip
    for sql in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(sql))
    assert [e.actor for e in store.audit_entries()] == ["W01"]


def test_store_registry_import_is_idempotent_and_updates(store: AlertStore) -> None:
    doc = load_registry_example()
    first = store.import_registry(doc, now_ms=1)
    assert first.created == {
        "districts": 1, "streets": 1, "communities": 1, "grids": 1, "workers": 2, "sites": 1, "devices": 6,
        "residents": 1,
    }  # fmt: skip
    again = store.import_registry(doc, now_ms=2)
    assert sum(again.created.values()) == 0
    assert sum(again.updated.values()) == 0
    changed = copy.deepcopy(doc)
    changed["sites"][0]["address"] = "幸福路 12 号 3 栋 502"
    changed["sites"][0]["devices"].append({"device": "btn2", "kind": "call_button", "room": "bathroom"})
    changed["workers"][0]["channels"] = ["json://127.0.0.1:9/hook"]
    third = store.import_registry(changed, now_ms=3)
    assert third.created["devices"] == 1
    assert third.updated["sites"] == 1
    assert third.updated["workers"] == 1
    ctx = store.site_context("h0001")
    assert ctx is not None
    assert ctx.address == "幸福路 12 号 3 栋 502"
    assert ctx.devices["btn2"] == "call_button"
    assert ctx.community_name == "幸福社区"
    assert ctx.resident_name == "张桂英"
    w01 = store.worker("W01")
    assert w01 is not None and w01.channels == ["json://127.0.0.1:9/hook"]
    # a later import without channels keeps them (channels are managed in the console too)
    store.import_registry(doc, now_ms=4)
    w01 = store.worker("W01")
    assert w01 is not None and w01.channels == ["json://127.0.0.1:9/hook"]
    imports = [e for e in store.audit_entries() if e.action == AuditAction.REGISTRY_IMPORTED]
    assert len(imports) == 4


def test_imported_device_rooms_are_stored_by_their_canonical_name(store: AlertStore) -> None:
    """The console translates, and the detectors read, one name per room (gateway.rooms): "Master Bedroom" and 入户门
    are stored as the bedroom and the entrance; a room of no known kind keeps its words."""
    doc = copy.deepcopy(load_registry_example())
    doc["sites"][0]["devices"] += [
        {"device": "pir9", "kind": "motion", "room": "Master Bedroom"},
        {"device": "door9", "kind": "door", "room": "入户门"},
        {"device": "door8", "kind": "door", "room": "Wardrobe"},
    ]
    store.import_registry(doc, now_ms=1)
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT device, room FROM devices WHERE device LIKE '%9' OR device = 'door8'"))
        rooms = {device: room for device, room in rows}
    assert rooms == {"pir9": "bedroom", "door9": "entrance", "door8": "wardrobe"}


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["sites"][0].update(grid="G99"), "$.sites[0].grid"),
        (lambda d: d["workers"][0].update(role="boss"), "$.workers[0].role"),
        (lambda d: d["sites"][0]["devices"][0].update(kind="toaster"), "$.sites[0].devices[0].kind"),
        (lambda d: d["sites"][0].update(site="bad/site"), "$.sites[0].site"),
        (lambda d: d.update(version=2), "$.version"),
        (lambda d: d["sites"][0]["residents"][0].update(ability_level=7), "$.sites[0].residents[0].ability_level"),
    ],
)
def test_store_registry_import_rejects_bad_documents(store: AlertStore, mutate: object, path: str) -> None:
    doc = copy.deepcopy(load_registry_example())
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(RegistryImportError) as info:
        store.import_registry(doc, now_ms=1)
    assert info.value.path == path
    assert store.counts()["sites"] == 0  # nothing imported


def test_store_resident_reads_are_masked_and_audited(store: AlertStore) -> None:
    store.import_registry(load_registry_example(), now_ms=1)
    masked = store.get_resident("R0001", actor="W01", channel="console", now_ms=10)
    assert masked.id_number == "1101**********0020"
    assert masked.phone == "139****0001"
    assert masked.emergency_contacts[0]["phone"] == "137****0001"
    full = store.get_resident("R0001", actor="W02", channel="console", now_ms=11, reveal=True)
    assert full.id_number == "110101194001010020"
    listed = store.list_residents(actor="W02", channel="console", now_ms=12)
    assert [r.phone for r in listed] == ["139****0001"]
    reads = store.audit_entries(entity=Entity.RESIDENT)
    assert [(e.actor, e.time_ms, e.detail.get("revealed")) for e in reads] == [
        ("W01", 10, False), ("W02", 11, True), ("W02", 12, None),
    ]  # fmt: skip
    with pytest.raises(RecordNotFound):
        store.get_resident("R9999", actor="W01", channel="console", now_ms=13)


def test_store_visits_are_recorded_and_audited(store: AlertStore) -> None:
    store.import_registry(load_registry_example(), now_ms=1)
    visit_id = store.record_visit(
        resident_id="R0001", worker_id="W01", time_ms=100, outcome="visited_well", note="精神好", now_ms=101
    )
    assert visit_id >= 1
    assert store.counts()["visits"] == 1
    assert [e.action for e in store.audit_entries(entity=Entity.RESIDENT)] == ["visit.recorded"]


@pytest.mark.parametrize(
    "module", [alerts.privacy, alerts.lifecycle, alerts.escalation, alerts.commands, alerts.store.urls]
)
def test_store_doctests(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.failed == 0 and result.attempted > 0


def test_a_database_error_does_not_carry_the_personal_data_it_was_writing(store: AlertStore) -> None:
    """SQLAlchemy puts a failed statement's parameters into the error's text, and the services log that text
    (``_LOG.exception``): a guardian's insert that failed wrote her name and phone number into the log."""
    from alerts.store.guardians import GuardianStore

    store.import_registry(load_registry_example(), now_ms=1)
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE guardians RENAME TO guardians_elsewhere"))  # any statement failing will do
    with pytest.raises(DBAPIError) as failed:
        GuardianStore(store).add(
            resident_id="R0001", name="王芳", relation="子女", phone="13912345678", channels=[], consent=True,
            actor="W01", now_ms=2,
        )  # fmt: skip
    assert "guardians" in str(failed.value)  # the statement is still named
    assert "13912345678" not in str(failed.value) and "王芳" not in str(failed.value), str(failed.value)


def test_processes_starting_together_on_a_new_store_all_migrate_it(db_url: str, tmp_path: Path) -> None:
    """The backend, the console and every partition worker open the store at start; on a new store they race.

    Each opening migrates an older store to its code's schema. On PostgreSQL the DDL of two processes migrating a new
    store at once collided (one failed on a duplicate table or type and its unit stopped); SQLite's write lock
    serialises them. Four real processes start at the same instant here; each must end with the store at head.
    """
    go = tmp_path / "go"
    script = (
        "import pathlib, sys, time\n"
        "from alerts.store.repository import AlertStore\n"
        "go = pathlib.Path(sys.argv[2])\n"
        "print('ready', flush=True)\n"
        "while not go.exists(): time.sleep(0.005)\n"
        "s = AlertStore(url=sys.argv[1]); print(s.current_revision()); s.close()\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, db_url, str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    assert [p.stdout.readline().strip() for p in procs if p.stdout is not None] == ["ready"] * 4  # all imported
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    failed = [err for p, (_, err) in zip(procs, outs, strict=True) if p.returncode != 0]
    assert failed == [], "\n".join(line for err in failed for line in err.splitlines() if "Error" in line)[:2000]
    assert [out.strip() for out, _ in outs] == [_head()] * 4  # each read the revision the first one left
