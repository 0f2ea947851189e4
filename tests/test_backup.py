"""Backup → wipe → restore: alert, resident, audit and telemetry counts equal (issue 14, operations)."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr
from support.backend import registry_for

from alerts.lifecycle import Action, Channel
from alerts.store.repository import AlertStore
from eldercare.backup import BackupError, backup, restore, store_counts
from eldercare.servers.influxd import Influxd
from eldercare.servers.postgres import Postgres
from eldercare.settings import Settings
from ingest.errors import QueryError
from ingest.influx import InfluxClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _with_its_entry(counts: dict[str, int]) -> dict[str, int]:
    """The store's row counts plus the backup's own audit entry (``backup.created``, written before the copy)."""
    return {**counts, "audit_log": counts["audit_log"] + 1}


async def _telemetry_count(influxd: Influxd, db: str) -> int:
    async with InfluxClient(url=influxd.url, db=db) as client:
        try:
            results = await client.query('SELECT count("value") FROM "hr"', db=db)
        except QueryError as exc:
            assert "database not found" in str(exc)
            return 0
    rows = [row for r in results for series in r.series for row in series.rows()]
    return int(rows[0]["count"]) if rows else 0


async def _seed_telemetry(influxd: Influxd, db: str, site: str, n: int) -> None:
    now_ms = int(time.time() * 1000)
    lines = "\n".join(f"hr,site={site},device=mat1 value={60 + i % 20}i {now_ms - i * 60_000}" for i in range(n))
    async with InfluxClient(url=influxd.url, db=db) as client:
        await client.execute(f'CREATE DATABASE "{db}"')
        await client.write(lines.encode())


def _seed_store(settings: Settings, site: str) -> None:
    store = AlertStore(url=settings.database_url)
    try:
        store.import_registry(registry_for(site), now_ms=int(time.time() * 1000))
        for i in range(3):
            store.audit(now_ms=1 + i, actor="W01", channel=Channel.CONSOLE, action="resident.read",
                        entity="resident", entity_id=f"R{i}")  # fmt: skip
    finally:
        store.close()


def _raise_alerts(settings: Settings, site: str) -> None:
    from alerts.escalation import PolicyBook
    from alerts.links import LinkSigner
    from alerts.service import AlertService
    from detection.models import Alert, AlertType, Severity

    class Quiet:
        async def send(self, *, url: str, message: object) -> object:
            from alerts.notify import Delivery

            return Delivery(ok=True, channel="test", target=url)

    store = AlertStore(url=settings.database_url)
    service = AlertService(
        store=store, notifier=Quiet(), policies=PolicyBook(), clock=lambda: int(time.time() * 1000),
        links=LinkSigner(secret=b"backup-test-secret-0123456789", base_url="http://x"),
    )  # fmt: skip

    async def go() -> None:
        for kind in (AlertType.SOS, AlertType.FALL):
            record = await service.raise_alert(
                Alert(
                    site=site,
                    type=kind,
                    severity=Severity.CRITICAL,
                    time_ms=int(time.time() * 1000),
                    explanation="x",
                    explanation_zh="x",
                    device="band1",
                )  # fmt: skip
            )
            assert record is not None
            await service.transition(record.id, Action.ACKNOWLEDGE, actor="W01", channel=Channel.CONSOLE)

    try:
        asyncio.run(go())
    finally:
        store.close()


def test_backup_wipe_restore_counts_equal(influxd: Influxd, unique_site: str, unique_db: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(
        data_dir=data_dir, influx_url=influxd.url, influx_db=unique_db,
        influx_backup_host=f"127.0.0.1:{influxd.rpc_port}", link_secret=SecretStr("backup-test-secret-0123456789"),
    )  # fmt: skip
    data_dir.mkdir()
    _seed_store(settings, unique_site)
    _raise_alerts(settings, unique_site)
    (data_dir / "detect").mkdir()
    (data_dir / "detect" / "engine.msgpack").write_bytes(b"\x93snapshot")
    asyncio.run(_seed_telemetry(influxd, unique_db, unique_site, 240))
    before = store_counts(settings)
    points = asyncio.run(_telemetry_count(influxd, unique_db))
    assert before["alerts"] == 2 and before["residents"] >= 1 and before["audit_log"] >= 5 and points == 240
    before = _with_its_entry(before)

    out = tmp_path / "backup"
    manifest = backup(settings, out)
    assert manifest["counts"] == before
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE((out / "store.sqlite").stat().st_mode) == 0o600

    # Wipe: the database file, the telemetry, the detector state.
    for f in data_dir.glob("eldercare.db*"):
        f.unlink()
    (data_dir / "detect" / "engine.msgpack").unlink()

    async def drop() -> None:
        async with InfluxClient(url=influxd.url, db=unique_db) as client:
            await client.drop_database()

    asyncio.run(drop())
    assert asyncio.run(_telemetry_count(influxd, unique_db)) == 0

    # Restore through the CLI, as an operator would.
    env = {
        "ELDERCARE_DATA_DIR": str(data_dir),
        "ELDERCARE_INFLUX_URL": influxd.url,
        "ELDERCARE_INFLUX_DB": unique_db,
        "ELDERCARE_INFLUX_BACKUP_HOST": f"127.0.0.1:{influxd.rpc_port}",
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
    }
    done = subprocess.run([sys.executable, "-m", "eldercare.cli", "restore", str(out)], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    steps = [line.split(" ", 1)[1].split(" / ")[0] for line in done.stderr.splitlines() if line[:2].isdigit()]
    assert [s.split(":")[0] for s in steps] == [  # each step as it ends, with its time (a long restore moves)
        "backup checked",
        "store restored",
        "telemetry",
        "telemetry restored",
    ], done.stderr
    assert store_counts(settings) == before
    assert asyncio.run(_telemetry_count(influxd, unique_db)) == points
    assert (data_dir / "detect" / "engine.msgpack").read_bytes() == b"\x93snapshot"
    assert stat.S_IMODE((data_dir / "eldercare.db").stat().st_mode) == 0o600


@pytest.mark.postgres
def test_backup_wipe_restore_on_postgresql(postgres_server: Postgres, unique_site: str, tmp_path: Path) -> None:
    name = f"b_{unique_site}"
    url = postgres_server.create_database(name)
    settings = Settings(data_dir=tmp_path / "data", database_url=url, link_secret=SecretStr("x" * 32))
    try:
        _seed_store(settings, unique_site)
        _raise_alerts(settings, unique_site)
        before = _with_its_entry(store_counts(settings))
        assert before["alerts"] == 2
        out = tmp_path / "backup"
        assert backup(settings, out, influx=False)["counts"] == before
        postgres_server.drop_database(name)
        postgres_server.create_database(name)  # empty: the wipe
        console = AlertStore(url=url)  # a console still connected to the store: refused, naming it
        try:
            with pytest.raises(BackupError, match=r"eldercare@127\.0\.0\.1.*stop"):
                restore(settings, out, influx=False)
        finally:
            console.close()
        restore(settings, out, influx=False)
        assert store_counts(settings) == before
    finally:
        postgres_server.drop_database(name)


@pytest.mark.postgres
def test_a_backup_leaves_the_schema_alone_and_an_older_one_restores_over_a_newer_store(
    postgres_server: Postgres, tmp_path: Path
) -> None:
    """Found by an operator review: ``eldercare backup`` migrated the live store (a nightly backup after a `git
    pull` moved the schema under services still running the old code), and a backup from an older schema restored
    over a newer store kept the newer tables (``pg_restore --clean`` drops only what the dump holds), so the
    migration after it failed on ``DuplicateTable "gateway_accounts"`` and the backend could not start."""
    name = f"s_{uuid.uuid4().hex[:10]}"
    url = postgres_server.create_database(name)
    settings = Settings(data_dir=tmp_path / "data", database_url=url, link_secret=SecretStr("x" * 32))
    try:
        old = AlertStore(url=url, migrate=False)
        try:
            old.migrate("0007_learned_profiles")
        finally:
            old.close()
        out = tmp_path / "backup"
        manifest = backup(settings, out, influx=False)
        assert manifest["schema"] == "0007_learned_profiles"
        live = AlertStore(url=url, migrate=False)
        try:
            assert live.current_revision() == "0007_learned_profiles"  # the backup changed nothing
            live.migrate()  # the upgrade of the release after it
            head = live.current_revision()
        finally:
            live.close()
        assert head != "0007_learned_profiles"
        restore(settings, out, influx=False)  # back to the older release's store, exactly
        restored = AlertStore(url=url, migrate=False)
        try:
            assert restored.current_revision() == "0007_learned_profiles"
            restored.migrate()  # what `eldercare db upgrade` (the backend's start) does next
            assert restored.current_revision() == head and restored.schema_diff() == []
        finally:
            restored.close()
    finally:
        postgres_server.drop_database(name)


@pytest.mark.postgres
def test_backup_restore_with_a_password_keeps_it_off_the_command_line(
    postgres_server: Postgres, unique_site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password-authenticated role over TCP: pg_dump/pg_restore get it through PGPASSWORD, not in argv (`ps`)."""
    import eldercare.backup as backup_module

    name = f"pw_{unique_site}"
    password = "pw-" + unique_site + "-Secret"
    url = postgres_server.create_password_database(name, password=password)
    settings = Settings(data_dir=tmp_path / "data", database_url=url, link_secret=SecretStr("x" * 32))
    argvs: list[list[str]] = []
    real_run = subprocess.run

    def spy(argv: list[str], **kwargs: object) -> object:
        argvs.append(list(argv))
        return real_run(argv, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(backup_module.subprocess, "run", spy)
    try:
        _seed_store(settings, unique_site)
        before = _with_its_entry(store_counts(settings))
        out = tmp_path / "backup"
        assert backup(settings, out, influx=False)["counts"] == before
        assert password not in (out / "manifest.json").read_text()
        store = AlertStore(url=url)  # the wipe: an alert row the restore must take away again
        try:
            store.audit(now_ms=99, actor="W01", channel=Channel.CONSOLE, action="resident.read", entity="resident",
                        entity_id="extra")  # fmt: skip
        finally:
            store.close()
        assert store_counts(settings) != before
        restore(settings, out, influx=False)
        assert store_counts(settings) == before
    finally:
        postgres_server.drop_database(name)
    # The dump, the restore's check of the backup (``pg_restore --list`` reads the file, connects nowhere), the restore.
    assert [a[0].rsplit("/", 1)[-1] for a in argvs] == ["pg_dump", "pg_restore", "pg_restore"]
    assert not any(password in arg for argv in argvs for arg in argv), argvs


def test_restore_checks_every_precondition_before_changing_anything(
    influxd: Influxd, unique_site: str, unique_db: str, tmp_path: Path
) -> None:
    """Found in the field: pg_restore --clean ran under a live console, then influxd restore refused an existing
    database: store replaced, telemetry not. Now nothing changes until every check has passed."""
    from eldercare.production import serve_lock

    data_dir = tmp_path / "data"
    settings = Settings(
        data_dir=data_dir, influx_url=influxd.url, influx_db=unique_db,
        influx_backup_host=f"127.0.0.1:{influxd.rpc_port}", link_secret=SecretStr("backup-test-secret-0123456789"),
    )  # fmt: skip
    data_dir.mkdir()
    _seed_store(settings, unique_site)
    asyncio.run(_seed_telemetry(influxd, unique_db, unique_site, 30))
    out = tmp_path / "backup"
    before = backup(settings, out)["counts"]
    _raise_alerts(settings, unique_site)  # changes after the backup, which a restore would take away
    after = store_counts(settings)
    assert after != before
    env = {
        "ELDERCARE_DATA_DIR": str(data_dir),
        "ELDERCARE_INFLUX_URL": influxd.url,
        "ELDERCARE_INFLUX_DB": unique_db,
        "ELDERCARE_INFLUX_BACKUP_HOST": f"127.0.0.1:{influxd.rpc_port}",
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "eldercare.cli", "restore", *args], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    # 1. The telemetry database exists: refused, naming it and the option; the store is untouched.
    done = cli(str(out))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    err = " ".join(done.stderr.split())
    assert unique_db in err and "--replace-telemetry" in err and "nothing was changed" in err
    assert store_counts(settings) == after
    # 2. A service holds the data directory: refused, saying how to stop it.
    with serve_lock(data_dir):
        done = cli(str(out), "--replace-telemetry")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "systemctl stop eldercare-console eldercare-backend" in " ".join(done.stderr.split())
    assert store_counts(settings) == after and asyncio.run(_telemetry_count(influxd, unique_db)) == 30
    # 3. Everything in order, --replace-telemetry drops the database through the HTTP API and restores it.
    done = cli(str(out), "--replace-telemetry")
    assert done.returncode == 0, done.stderr
    assert store_counts(settings) == before
    assert asyncio.run(_telemetry_count(influxd, unique_db)) == 30


def test_backup_of_a_missing_telemetry_database_names_it(influxd: Influxd, unique_db: str, tmp_path: Path) -> None:
    """influxd backup said only `backup: EOF`."""
    settings = Settings(data_dir=tmp_path / "data", influx_url=influxd.url, influx_db=unique_db,
                        influx_backup_host=f"127.0.0.1:{influxd.rpc_port}")  # fmt: skip
    (tmp_path / "data").mkdir()
    AlertStore(url=settings.database_url).close()
    with pytest.raises(BackupError, match=f"InfluxDB database '{unique_db}' does not exist"):
        backup(settings, tmp_path / "backup")


def test_backup_with_the_influx_backup_port_unreachable_stops_at_once_writing_nothing(
    influxd: Influxd, unique_db: str, tmp_path: Path
) -> None:
    """Found during an upgrade: influxd backup retried for ~4 minutes, then left store.pgdump and a pending meta file
    without a manifest, with the services stopped meanwhile."""
    from eldercare.servers._child import free_port

    closed = f"127.0.0.1:{free_port()}"
    settings = Settings(data_dir=tmp_path / "data", influx_url=influxd.url, influx_db=unique_db,
                        influx_backup_host=closed)  # fmt: skip
    (tmp_path / "data").mkdir()
    AlertStore(url=settings.database_url).close()
    asyncio.run(_seed_telemetry(influxd, unique_db, "s1", 3))
    out = tmp_path / "backup"
    started = time.monotonic()
    with pytest.raises(BackupError) as caught:
        backup(settings, out)
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert "ELDERCARE_INFLUX_BACKUP_HOST" in message and closed in message and "nothing was written" in message
    assert not out.exists()


def test_backup_with_influxdb_unreachable_writes_nothing(tmp_path: Path) -> None:
    from eldercare.servers._child import free_port

    settings = Settings(data_dir=tmp_path / "data", influx_url=f"http://127.0.0.1:{free_port()}")
    (tmp_path / "data").mkdir()
    AlertStore(url=settings.database_url).close()
    with pytest.raises(BackupError, match=r"InfluxDB at http://127\.0\.0\.1:\d+ .*nothing was written"):
        backup(settings, tmp_path / "backup")
    assert not (tmp_path / "backup").exists()


def test_a_backup_with_influxdb_2_says_how_to_back_its_telemetry_up(influxd: Influxd, tmp_path: Path) -> None:
    """InfluxDB 2.x/3.x serve the v1 API the backend uses (ELDERCARE_INFLUX_TOKEN), not 1.x's backup port: the
    nightly backup failed every night on port 8088 with nothing saying why or what to do instead."""
    settings = Settings(data_dir=tmp_path / "data", influx_url=influxd.url, influx_token=SecretStr("a-2x-token"))
    (tmp_path / "data").mkdir()
    AlertStore(url=settings.database_url).close()
    with pytest.raises(BackupError, match=r"2\.x or 3\.x.*influx backup.*--no-influx.*nothing was written"):
        backup(settings, tmp_path / "backup")
    assert not (tmp_path / "backup").exists()
    assert backup(settings, tmp_path / "backup", influx=False)["influx_db"] is None  # the rest is backed up


def _backup_gauges(render: Callable[[], bytes]) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        family.name: family.samples[0].value
        for family in text_string_to_metric_families(render().decode())
        if family.name.startswith("eldercare_backup_")
    }


def test_the_last_backups_success_and_failure_are_on_the_metrics(
    influxd: Influxd, unique_db: str, tmp_path: Path
) -> None:
    """A nightly backup that failed was seen only by whoever read the timer's journal: /metrics now says when the
    last one succeeded and when one last failed, so monitoring can page on a stale backup."""
    from eldercare.backup_status import STATUS_FILE, read_status
    from eldercare.production import metrics_source
    from eldercare.servers._child import free_port

    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    settings = Settings(data_dir=data, influx_url=influxd.url, influx_db=unique_db,
                        influx_backup_host=f"127.0.0.1:{influxd.rpc_port}")  # fmt: skip
    asyncio.run(_seed_telemetry(influxd, unique_db, "s1", 3))
    store = AlertStore(url=settings.database_url)
    try:
        render = metrics_source(store, settings, None)
        assert _backup_gauges(render) == {}  # never backed up: no timestamp to mistake for a recent one
        before = time.time()
        backup(settings, tmp_path / "b1")
        after = time.time()
        gauges = _backup_gauges(render)
        assert set(gauges) == {"eldercare_backup_last_success_timestamp_seconds"}
        assert before - 1 <= gauges["eldercare_backup_last_success_timestamp_seconds"] <= after + 1
        assert stat.S_IMODE((data / STATUS_FILE).stat().st_mode) == 0o600
        broken = settings.model_copy(update={"influx_backup_host": f"127.0.0.1:{free_port()}"})
        with pytest.raises(BackupError):
            backup(broken, tmp_path / "b2")
        failed = _backup_gauges(render)
        assert (
            failed["eldercare_backup_last_success_timestamp_seconds"]
            == gauges["eldercare_backup_last_success_timestamp_seconds"]
        )
        assert failed["eldercare_backup_last_failure_timestamp_seconds"] >= after - 1
        status = read_status(data)
        assert status["last_success"]["dir"] == str(tmp_path / "b1")
        assert status["last_failure"]["dir"] == str(tmp_path / "b2")
        assert "ELDERCARE_INFLUX_BACKUP_HOST" in status["last_failure"]["error"]
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_manifest_counts_the_rows_the_backup_holds_while_the_console_writes(
    kind: str, request: pytest.FixtureRequest, unique_site: str, tmp_path: Path
) -> None:
    """The nightly backup runs beside the services: every console page writes an audit entry meanwhile.

    The manifest's row counts were read from the live store after the copy, so a row written in between made them
    differ from the copy's, and the restore of a good backup ended with "restored row counts differ" (exit 1) in
    the middle of a recovery. They must be the counts of what the backup holds.
    """
    import threading

    if kind == "sqlite":
        url, target = f"sqlite:///{tmp_path / 'data' / 'eldercare.db'}", f"sqlite:///{tmp_path / 'again.db'}"
        drop: Callable[[], None] = lambda: None  # noqa: E731
    else:
        server: Postgres = request.getfixturevalue("postgres_server")
        names = (f"c_{unique_site}", f"r_{unique_site}")
        url, target = (server.create_database(n) for n in names)
        drop = lambda: [server.drop_database(n) for n in names] and None  # noqa: E731
    settings = Settings(data_dir=tmp_path / "data", database_url=url, link_secret=SecretStr("x" * 32))
    settings.data_dir.mkdir()
    try:
        _seed_store(settings, unique_site)
        console = AlertStore(url=url)
        stop, written = threading.Event(), [0]

        def pages() -> None:  # a duty officer reading resident pages, each one audited
            while not stop.is_set():
                console.audit(now_ms=int(time.time() * 1000), actor="W01", channel=Channel.CONSOLE,
                              action="resident.read", entity="resident", entity_id="R1")  # fmt: skip
                written[0] += 1

        writer = threading.Thread(target=pages)
        writer.start()
        try:
            while written[0] < 20:  # the console is writing before the backup starts
                time.sleep(0.01)
            manifest = backup(settings, tmp_path / "backup", influx=False)
        finally:
            stop.set()
            writer.join()
            console.close()
        assert store_counts(settings)["audit_log"] > manifest["counts"]["audit_log"]  # it wrote on after the copy
        assert not list((tmp_path / "backup").glob("store.sqlite-*"))  # counting the copy left no WAL files in it
        again = Settings(data_dir=tmp_path / "again", database_url=target, link_secret=SecretStr("x" * 32))
        again.data_dir.mkdir()
        restore(again, tmp_path / "backup", influx=False)
        assert store_counts(again) == manifest["counts"]
    finally:
        drop()


def test_a_damaged_backup_is_found_by_verify_and_refused_by_restore_before_the_store_is_touched(
    unique_site: str, tmp_path: Path
) -> None:
    """A copy damaged in storage or on its way off-site was found only by ``restore``, after it had deleted the live
    store for it: the deployment was left with a broken store and without its old one. Now ``verify-backup`` finds
    it where the copies are kept, and ``restore`` refuses it with nothing changed."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    settings = Settings(data_dir=data, link_secret=SecretStr("x" * 32))
    _seed_store(settings, unique_site)
    (data / "detect").mkdir()
    (data / "detect" / "engine.msgpack").write_bytes(b"\x93snapshot")
    out = tmp_path / "backup"
    backup(settings, out, influx=False)
    live = store_counts(settings)
    env = {"ELDERCARE_DATA_DIR": str(data), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "eldercare.cli", *args], env=env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    done = cli("verify-backup", str(out))
    assert done.returncode == 0 and "whole, 2 files match" in done.stdout + done.stderr, done.stdout + done.stderr
    # One byte of the store copy changes on its way (a page's payload: SQLite's own check does not see it).
    store = out / "store.sqlite"
    raw = bytearray(store.read_bytes())
    raw[len(raw) - 100] ^= 0xFF
    store.write_bytes(bytes(raw))
    (out / "detect" / "engine.msgpack").unlink()
    (out / "notes.txt").write_text("added later")
    done = cli("verify-backup", str(out))
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, said
    assert "store.sqlite has changed since the backup" in said and "detect/engine.msgpack is missing" in said, said
    assert "notes.txt was not written by the backup" in said, said
    done = cli("restore", "--no-influx", str(out))
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1 and "damaged" in said and "nothing was changed" in said, said
    assert store_counts(settings) == live  # the live store is the one it was


def test_verify_checks_a_backup_written_before_checksums_by_its_store_copys_own_check(
    unique_site: str, tmp_path: Path
) -> None:
    from eldercare.backup_verify import verify

    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    settings = Settings(data_dir=data, link_secret=SecretStr("x" * 32))
    _seed_store(settings, unique_site)
    out = tmp_path / "backup"
    backup(settings, out, influx=False)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["files"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    checked = verify(out)
    assert (checked.ok, checked.checksums) == (True, False)
    store = out / "store.sqlite"
    store.write_bytes(store.read_bytes()[: store.stat().st_size // 2])  # cut short
    assert [p.split(":")[0] for p in verify(out).problems] == ["store.sqlite"]


@pytest.mark.postgres
def test_verify_reads_a_postgresql_dumps_table_of_contents(postgres_server: Postgres, unique_site: str,
                                                           tmp_path: Path) -> None:  # fmt: skip
    from eldercare.backup_verify import verify

    name = f"v_{unique_site}"
    url = postgres_server.create_database(name)
    try:
        settings = Settings(data_dir=tmp_path / "data", database_url=url, link_secret=SecretStr("x" * 32))
        _seed_store(settings, unique_site)
        out = tmp_path / "backup"
        backup(settings, out, influx=False)
        assert verify(out).ok
        dump = out / "store.pgdump"
        dump.write_bytes(dump.read_bytes()[:200])  # cut short
        problems = verify(out).problems
        assert any(p.startswith("store.pgdump has changed") for p in problems), problems
        assert any(p.startswith("store.pgdump: pg_restore cannot read it") for p in problems), problems
    finally:
        postgres_server.drop_database(name)
