"""What an operator following docs/operations.md literally ran into: each mistake is one clear line, no traceback."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eldercare.cli import app


def _text(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite deployment in ``tmp_path/data`` (not created yet), nothing else configured."""
    for name in list(__import__("os").environ):
        if name.startswith("ELDERCARE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ELDERCARE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_backup_creates_missing_parents_private(sqlite_env: Path, tmp_path: Path) -> None:
    sqlite_env.mkdir()
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    out = tmp_path / "backups" / "eldercare" / "nightly"
    result = CliRunner().invoke(app, ["backup", "--no-influx", str(out)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((tmp_path / "backups").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "backups" / "eldercare").stat().st_mode) == 0o700
    assert (out / "store.sqlite").is_file()


def test_backup_into_a_directory_it_cannot_create_is_one_line(
    sqlite_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_env.mkdir()
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    real_mkdir = Path.mkdir

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        if "backups" in self.parts:  # the service user may not write /var/backups (we run the tests as root)
            raise PermissionError(13, "Permission denied", str(self))
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", refuse)
    result = CliRunner().invoke(app, ["backup", "--no-influx", str(tmp_path / "backups" / "eldercare" / "x")])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    text = _text(result.output)
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 3
    assert str(tmp_path / "backups") in text and "install -d -o eldercare -m 0700" in text


def test_a_store_command_without_the_env_file_loaded_refuses_the_sqlite_default(
    sqlite_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sudo -u eldercare eldercare backup …` without the env file fell back to SQLite in the working directory;
    `nats-accounts --from-store` skipped the check: it read an empty SQLite store and wrote no gateway."""
    env_file = tmp_path / "eldercare.env"
    env_file.write_text('ELDERCARE_DATABASE_URL="postgresql+psycopg://eldercare@/eldercare?host=/run/postgresql"\n')
    monkeypatch.setattr("eldercare.production.PRODUCTION_ENV_FILE", env_file)
    monkeypatch.setenv("ELDERCARE_NATS_USER", "workers")  # for nats-accounts, only the store is missing
    nats = ["nats-accounts", "--from-store", "--out", str(tmp_path / "n")]
    for argv in (["db", "upgrade"], ["backup", "--no-influx", str(tmp_path / "b")], ["privacy", "retention"], nats):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 2, (argv, result.output)
        assert isinstance(result.exception, SystemExit) and len(result.output.strip().splitlines()) <= 3
        text = _text(result.output)
        assert str(env_file) in text and "ELDERCARE_DATABASE_URL" in text and "Traceback" not in result.output
    assert not any(p.exists() for p in (sqlite_env, tmp_path / "b", tmp_path / "n"))  # nothing was created
    # Set explicitly, SQLite is fine (and the command says which store it used).
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", f"sqlite:///{sqlite_env / 'eldercare.db'}")
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert str(sqlite_env / "eldercare.db") in _text(result.output)


def test_pg_dump_and_pg_restore_get_no_password_on_their_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ps` shows every argument: the password goes through PGPASSWORD, the URL without it."""
    from eldercare import backup as backup_module

    seen: list[tuple[list[str], dict[str, str]]] = []

    class Done:
        returncode = 0
        stdout = stderr = ""

    def fake_run(argv: list[str], **kwargs: object) -> Done:
        env = kwargs.get("env")
        assert isinstance(env, dict)
        seen.append((argv, env))
        return Done()

    monkeypatch.setattr(backup_module.subprocess, "run", fake_run)
    monkeypatch.setattr(backup_module.shutil, "which", lambda name: f"/usr/bin/{name}")
    url = "postgresql+psycopg://eldercare:s3cret-pw@db.example:5432/eldercare"
    backup_module.pg_dump(url, tmp_path / "store.pgdump")
    backup_module.pg_restore(url, tmp_path / "store.pgdump")
    assert len(seen) == 2
    for argv, env in seen:
        assert not any("s3cret-pw" in a for a in argv), argv
        assert any("postgresql://eldercare@db.example:5432/eldercare" in a for a in argv), argv
        assert env["PGPASSWORD"] == "s3cret-pw"


def _cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> tuple[int, str]:
    import os
    import subprocess
    import sys

    full = {**{k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}, **env, "COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-m", "eldercare.cli", *args], env=full, capture_output=True, text=True,
                          timeout=60, cwd=cwd)  # fmt: skip
    return done.returncode, done.stderr + done.stdout


def _one_clear_line(output: str) -> str:
    assert "Traceback" not in output and "ExceptionGroup" not in output, output
    lines = [line for line in output.splitlines() if line.strip() and " INFO " not in line]
    assert len(lines) == 1, output
    return lines[0]


def _closed_port() -> int:
    from eldercare.servers._child import free_port

    return free_port()


def test_a_wrong_database_url_is_one_line_for_db_upgrade_and_serve(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://eldercare:hunter2-secret@127.0.0.1:{_closed_port()}/eldercare"
    env = {"ELDERCARE_DATA_DIR": str(tmp_path / "d"), "ELDERCARE_DATABASE_URL": url,
           "ELDERCARE_LINK_SECRET": "x" * 32}  # fmt: skip
    for args in (["db", "upgrade"], ["serve", "--role", "console", "--port", str(_closed_port())]):
        code, output = _cli(env, *args, cwd=tmp_path)
        line = _one_clear_line(output)
        assert code == 2, output
        assert "eldercare:***@127.0.0.1" in line and "hunter2-secret" not in output, line
        assert "ELDERCARE_DATABASE_URL" in line


def test_a_busy_console_port_is_one_line_before_serving(tmp_path: Path) -> None:
    import socket

    env = {"ELDERCARE_DATA_DIR": str(tmp_path / "d"), "ELDERCARE_LINK_SECRET": "x" * 32}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, output = _cli(env, "serve", "--role", "console", "--port", str(port), cwd=tmp_path)
    assert code == 2 and f"127.0.0.1:{port}" in _one_clear_line(output), output
    assert "serving on" not in output


def test_an_unreadable_tls_key_names_the_file(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    env = {"ELDERCARE_DATA_DIR": str(tmp_path / "d"), "ELDERCARE_LINK_SECRET": "x" * 32,
           "ELDERCARE_CONSOLE_TLS_CERT": str(cert),
           "ELDERCARE_CONSOLE_TLS_KEY": str(tmp_path / "missing.key")}  # fmt: skip
    code, output = _cli(env, "serve", "--role", "console", "--port", str(_closed_port()), cwd=tmp_path)
    line = _one_clear_line(output)
    assert code == 2 and str(tmp_path / "missing.key") in line and "ELDERCARE_CONSOLE_TLS_KEY" in line, output


def test_a_non_numeric_port_names_the_variable(tmp_path: Path) -> None:
    code, output = _cli({"ELDERCARE_DATA_DIR": str(tmp_path), "ELDERCARE_MQTT_PORT": "188e"}, "db", "upgrade",
                        cwd=tmp_path)  # fmt: skip
    line = _one_clear_line(output)
    assert code == 2 and "ELDERCARE_MQTT_PORT" in line and "integer" in line, output


def test_a_missing_sqlite_data_dir_is_created_private(tmp_path: Path) -> None:
    data = tmp_path / "var" / "lib" / "eldercare"
    code, output = _cli({"ELDERCARE_DATA_DIR": str(data)}, "db", "upgrade", cwd=tmp_path)
    assert code == 0, output
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "eldercare.db").stat().st_mode) == 0o600


def test_first_commands_create_private_files_and_warn_of_a_readable_password_file(tmp_path: Path) -> None:
    """Before `serve` ever ran, `db upgrade` / `db import-registry` left eldercare.db 0644 in a 0755 directory."""
    import json
    import os

    from support.backend import registry_for

    data = tmp_path / "data"
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps(registry_for("h0001")))
    env = {"ELDERCARE_DATA_DIR": str(data)}
    old = os.umask(0o022)  # an administrator's usual umask
    try:
        assert _cli(env, "db", "import-registry", str(registry), cwd=tmp_path)[0] == 0
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        for f in data.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
        password = tmp_path / "pw"
        password.write_text("a long enough admin password\n")
        password.chmod(0o644)
        code, output = _cli(env, "admin", "create", "--id", "root", "--password-file", str(password), cwd=tmp_path)
    finally:
        os.umask(old)
    assert code == 0, output
    text = _text(output)
    assert f"{password} is readable by other users" in text and "chmod 600" in text
    for f in data.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_the_example_env_file_quotes_every_value_so_the_shell_reads_it_like_systemd() -> None:
    import subprocess

    example = Path(__file__).resolve().parents[1] / "deploy" / "eldercare.env.example"
    for line in example.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            value = line.split("=", 1)[1]
            assert value[:1] == value[-1:] == "'", line
    shell = subprocess.run(["sh", "-ec", f'set -a; . "{example}"; set +a; echo "$ELDERCARE_DATABASE_URL"'],
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert shell.stdout.strip().startswith("postgresql+psycopg://eldercare@/eldercare?host=")


def test_backup_holds_the_broker_tls_files_and_dead_letters_and_restore_puts_them_back(tmp_path: Path) -> None:
    """Without the CA key a rebuilt server is rejected by every deployed gateway; dead letters are evidence.

    The escalation policies' file is copied too (put back by hand: no process starts while it is missing)."""
    from eldercare.backup import backup, restore
    from eldercare.certs import server_certificate
    from eldercare.settings import Settings
    from gateway.deadletter import DeadLetterStore
    from gateway.errors import Reason

    data, tls, policies = tmp_path / "data", tmp_path / "tls", tmp_path / "policies.json"
    policies.write_text('{"default": {"critical": {"remind_every_s": 60}}}', encoding="utf-8")
    settings = Settings(data_dir=data, backup_tls_dir=tls, policies_path=policies)
    assert CliRunner().invoke(app, ["db", "upgrade"], env={"ELDERCARE_DATA_DIR": str(data)}).exit_code == 0
    server_certificate(tls, hosts=["mqtt.example.org"])
    _one_dead_letter(data, "ec/v1/h1/x/y/telemetry", b"{")
    originals = {p.name: p.read_bytes() for p in tls.iterdir()}
    assert "ca.key" in originals

    out = tmp_path / "backup"
    manifest = backup(settings, out, influx=False)
    assert sorted(manifest["tls_files"]) == sorted(originals) and manifest["deadletter"] is True
    assert manifest["policies"] is True and (out / "policies.json").read_bytes() == policies.read_bytes()
    assert stat.S_IMODE((out / "tls").stat().st_mode) == 0o700
    for f in [*(out / "tls").iterdir(), out / "deadletter.sqlite3", out / "policies.json"]:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f

    # The host is lost: a new data directory, no certificates.
    import shutil

    shutil.rmtree(data)
    shutil.rmtree(tls)
    restore(settings, out, influx=False)
    assert {p.name: p.read_bytes() for p in tls.iterdir()} == originals
    assert stat.S_IMODE(tls.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in tls.iterdir())
    letters = DeadLetterStore.in_data_dir(data)
    try:
        assert letters.count_by_reason() == {Reason.BAD_JSON: 1}
    finally:
        letters.close()


def test_a_restore_says_what_it_left_out_the_ca_key_and_the_escalation_policies(tmp_path: Path) -> None:
    """Restored on a rebuilt host whose env file lacks ELDERCARE_BACKUP_TLS_DIR and ELDERCARE_POLICIES_PATH, the
    backup's CA key and policies were skipped and the command said "row counts match": every gateway then rejected
    the new broker certificate, and escalations fell back to the built-in defaults unnoticed."""
    from eldercare.backup import backup
    from eldercare.certs import server_certificate
    from eldercare.settings import Settings

    data, tls, policies = tmp_path / "data", tmp_path / "tls", tmp_path / "policies.json"
    policies.write_text('{"default": {"critical": {"remind_every_s": 60}}}', encoding="utf-8")
    assert CliRunner().invoke(app, ["db", "upgrade"], env={"ELDERCARE_DATA_DIR": str(data)}).exit_code == 0
    server_certificate(tls, hosts=["mqtt.example.org"])
    out = tmp_path / "backup"
    backup(Settings(data_dir=data, backup_tls_dir=tls, policies_path=policies), out, influx=False)

    rebuilt = tmp_path / "rebuilt"
    result = CliRunner().invoke(app, ["restore", "--no-influx", str(out)], env={"ELDERCARE_DATA_DIR": str(rebuilt)})
    assert result.exit_code == 0, result.output
    text = _text(result.output)
    assert "ELDERCARE_BACKUP_TLS_DIR" in text and "ca.key" in text and "CA" in text, text
    assert "ELDERCARE_POLICIES_PATH" in text and "policies.json" in text and "built-in" in text, text
    # Both set on the rebuilt host: nothing to say.
    env = {"ELDERCARE_DATA_DIR": str(tmp_path / "again"), "ELDERCARE_BACKUP_TLS_DIR": str(tmp_path / "tls2"),
           "ELDERCARE_POLICIES_PATH": str(policies)}  # fmt: skip
    result = CliRunner().invoke(app, ["restore", "--no-influx", str(out)], env=env)
    assert result.exit_code == 0, result.output
    quiet = _text(result.output)
    assert "ELDERCARE_BACKUP_TLS_DIR" not in quiet and "ELDERCARE_POLICIES_PATH" not in quiet, quiet


def test_a_restore_of_an_older_schema_leaves_it_and_says_to_upgrade(tmp_path: Path) -> None:
    """``backup`` and ``restore`` no longer migrate the store; a restored older store says what comes next."""
    from alerts.store.repository import AlertStore

    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    old = AlertStore(url=f"sqlite:///{data / 'eldercare.db'}", migrate=False)
    try:
        old.migrate("0007_learned_profiles")
    finally:
        old.close()
    env = {"ELDERCARE_DATA_DIR": str(data)}
    result = CliRunner().invoke(app, ["backup", "--no-influx", str(tmp_path / "b")], env=env)
    assert result.exit_code == 0, result.output
    assert "store copied" in result.output and "checksums of 1 files recorded" in result.output, result.output
    result = CliRunner().invoke(app, ["restore", "--no-influx", str(tmp_path / "b")], env=env)
    assert result.exit_code == 0, result.output
    assert "0007_learned_profiles" in _text(result.output) and "eldercare db upgrade" in _text(result.output)
    store = AlertStore(url=f"sqlite:///{data / 'eldercare.db'}", migrate=False)
    try:
        assert store.current_revision() == "0007_learned_profiles"
    finally:
        store.close()


def test_only_db_upgrade_migrates_a_store_of_an_older_schema(tmp_path: Path) -> None:
    """A nightly timer's command run after ``git pull`` and before ``db upgrade`` changed the schema under the
    services still running the old code (every command migrated the store it opened). Now each refuses in one line
    and says to run ``db upgrade``, leaving the store as it is; ``db upgrade`` migrates it; a new store is set up by
    any command (an install's first steps)."""
    from alerts.store.migrate import head_revision
    from alerts.store.repository import AlertStore

    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    url = f"sqlite:///{data / 'eldercare.db'}"
    old = AlertStore(url=url, migrate=False)
    try:
        old.migrate("0007_learned_profiles")
    finally:
        old.close()
    env = {"ELDERCARE_DATA_DIR": str(data)}

    def revision() -> str | None:
        store = AlertStore(url=url, migrate=False)
        try:
            return store.current_revision()
        finally:
            store.close()

    result = CliRunner().invoke(app, ["privacy", "retention"], env=env)
    assert result.exit_code != 0
    assert "0007_learned_profiles" in str(result.exception) and "eldercare db upgrade" in str(result.exception)
    assert revision() == "0007_learned_profiles"
    result = CliRunner().invoke(app, ["db", "upgrade"], env=env)
    assert result.exit_code == 0, result.output
    assert f"migrated from 0007_learned_profiles to {head_revision()}" in _text(result.output), result.output
    assert revision() == head_revision()
    result = CliRunner().invoke(app, ["db", "upgrade"], env=env)
    assert f"is at the latest schema ({head_revision()})" in _text(result.output), result.output
    result = CliRunner().invoke(app, ["privacy", "retention"], env=env)
    assert result.exit_code == 0, result.output
    fresh = tmp_path / "fresh"
    fresh.mkdir(mode=0o700)
    result = CliRunner().invoke(app, ["privacy", "retention"], env={"ELDERCARE_DATA_DIR": str(fresh)})
    assert result.exit_code == 0, result.output


def test_a_busy_backend_health_port_names_the_backend_and_the_real_option(tmp_path: Path) -> None:
    """The message said "the console cannot listen" and suggested --console-port, which `serve` does not have."""
    import socket

    env = {"ELDERCARE_DATA_DIR": str(tmp_path / "d"), "ELDERCARE_LINK_SECRET": "x" * 32,
           "ELDERCARE_MQTT_PASSWORD": "backend-broker-password"}  # fmt: skip
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, output = _cli(env, "serve", "--role", "backend", "--port", str(port), cwd=tmp_path)
    line = _one_clear_line(output)
    assert code == 2 and f"127.0.0.1:{port}" in line, output
    assert "backend" in line and "the console" not in line and "--console-port" not in line, line
    assert "--port" in line and "ELDERCARE_CONSOLE_PORT" in line, line


@pytest.mark.parametrize("case", ["certificate as key", "key of another certificate"])
def test_a_tls_key_that_does_not_fit_is_one_line_before_serving(tmp_path: Path, case: str) -> None:
    """Found by the IT administrator: "serving on …", then a 142-line traceback ending in KEY_VALUES_MISMATCH."""
    from eldercare.certs import server_certificate

    one = server_certificate(tmp_path / "one")
    other = server_certificate(tmp_path / "other")
    key = one.cert if case == "certificate as key" else other.key
    env = {"ELDERCARE_DATA_DIR": str(tmp_path / "d"), "ELDERCARE_LINK_SECRET": "x" * 32,
           "ELDERCARE_CONSOLE_TLS_CERT": str(one.cert), "ELDERCARE_CONSOLE_TLS_KEY": str(key)}  # fmt: skip
    code, output = _cli(env, "serve", "--role", "console", "--port", str(_closed_port()), cwd=tmp_path)
    line = _one_clear_line(output)
    assert code == 2, output
    assert "ELDERCARE_CONSOLE_TLS_CERT" in line and "ELDERCARE_CONSOLE_TLS_KEY" in line, line
    assert str(one.cert) in line and str(key) in line, line
    assert "serving on" not in output


def test_a_backup_whose_store_cannot_be_reached_writes_nothing(sqlite_env: Path, tmp_path: Path) -> None:
    """pg_dump failed after the directory was made: a half-written backup without a manifest was left behind."""
    url = f"postgresql+psycopg://eldercare@127.0.0.1:{_closed_port()}/eldercare"
    out = tmp_path / "backups" / "pre-upgrade"
    result = CliRunner().invoke(app, ["backup", "--no-influx", str(out)], env={"ELDERCARE_DATABASE_URL": url})
    text = _text(result.output)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "127.0.0.1" in text and "nothing was written" in text, text
    assert not out.exists()


def test_a_backup_failing_midway_leaves_no_partial_directory(sqlite_env: Path, tmp_path: Path) -> None:
    """A step failing after the store was copied (here a TLS directory holding a FIFO) removes what was written."""
    import os

    sqlite_env.mkdir()
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    tls = tmp_path / "tls"
    tls.mkdir()
    os.mkfifo(tls / "pipe")
    out = tmp_path / "backups" / "nightly"
    result = CliRunner().invoke(app, ["backup", "--no-influx", str(out)], env={"ELDERCARE_BACKUP_TLS_DIR": str(tls)})
    text = _text(result.output)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "ELDERCARE_BACKUP_TLS_DIR" in text and "removed" in text, text
    assert not out.exists()
    assert (tmp_path / "backups").is_dir()  # the parents made for it stay: the nightly unit needs them


def test_backup_under_a_directory_it_cannot_enter_gives_the_install_hint(
    sqlite_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the service user `eldercare backup /root/x` said only "Permission denied: /root/x" (stat refused)."""
    sqlite_env.mkdir()
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    closed = tmp_path / "root"
    closed.mkdir()
    real_stat = Path.stat

    def refuse(self: Path, *args: object, **kwargs: object) -> object:
        if closed in self.parents:  # like /root (0700) for the eldercare user (we run the tests as root)
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "stat", refuse)
    result = CliRunner().invoke(app, ["backup", "--no-influx", str(closed / "backups" / "x")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    text = _text(result.output)
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 3, result.output
    assert str(closed / "backups") in text and "install -d -o eldercare -m 0700" in text, text


def _files_private(data: Path) -> list[str]:
    """Paths under ``data`` (itself included) that other users may read: directories not 0700, files not 0600."""
    loose = []
    for p in [data, *data.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        if mode != (0o700 if p.is_dir() else 0o600):
            loose.append(f"{p.relative_to(data.parent)} {mode:o}")
    return loose


@pytest.mark.integration
def test_the_module_entry_points_create_private_files_under_an_administrators_umask(
    broker: object, influxd: object, tmp_path: Path
) -> None:
    """``python -m eldercare.pipeline`` and ``python -m eldercare.partition_worker`` (docs/scale-out.md) never set the
    private umask the ``eldercare`` commands set: under umask 022 the data directory was 0755, the worker's SQLite
    store (the resident registry) and the dead-letter records (payload previews) 0644. The same worker, started
    with NATS unreachable, logged a traceback five times a second and ignored SIGTERM."""
    import asyncio
    import os
    import subprocess
    import sys
    import time

    from support.backend import end_session

    from eldercare.stack import Broker, Influxd

    assert isinstance(broker, Broker) and isinstance(influxd, Influxd)
    root = Path(__file__).resolve().parents[1]
    base = {
        **os.environ,
        "ELDERCARE_MQTT_HOST": broker.host,
        "ELDERCARE_MQTT_PORT": str(broker.backend_port),
        "ELDERCARE_MQTT_USERNAME": broker.backend_user,
        "ELDERCARE_MQTT_PASSWORD": broker.backend_password,
        "ELDERCARE_INFLUX_URL": influxd.url,
        "ELDERCARE_INFLUX_DB": "umask_check",
    }
    runs = {
        "pipeline": (["-m", "eldercare.pipeline"], ["ELDERCARE_MQTT_CLIENT_ID"], "pipeline ready"),
        # No NATS there: the worker opens its store and dead-letter records, then keeps trying to connect.
        "worker": (["-m", "eldercare.partition_worker"], [], "deadletter"),
    }
    for name, (args, ids, ready) in runs.items():
        data = tmp_path / name / "data"
        data.parent.mkdir()
        env = {**base, "ELDERCARE_DATA_DIR": str(data), "ELDERCARE_NATS_URLS": "nats://127.0.0.1:1",
               "ELDERCARE_LINK_SECRET": "umask-test-link-secret-0123456789"}  # fmt: skip
        env.update({k: f"umask-{name}" for k in ids})
        log = tmp_path / name / "log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, *args], env=env, cwd=root, stdout=out, stderr=out,
                preexec_fn=lambda: os.umask(0o022),  # noqa: PLW1509 - an administrator's usual umask
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not (
                (ready in log.read_text() if name == "pipeline" else any(data.rglob("deadletter*")))
                and any(data.rglob("*.sqlite3"))
            ):
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(30)
        text = log.read_text()
        if name == "pipeline":  # the shared broker stops keeping its session
            asyncio.run(end_session(broker, f"umask-{name}"))
        else:
            # SIGTERM stops a worker that is still trying to reach NATS (it used to wait for systemd's SIGKILL),
            # and the attempts, every 0.2 s, are one warning line, not an ERROR with a traceback each.
            assert proc.returncode == 0 and "stopped before NATS could be reached" in text, text[-3000:]
            assert "Traceback" not in text and text.count("NATS: ConnectionRefusedError") == 1, text[-3000:]
        assert _files_private(data) == [], text[-2000:]


def test_the_example_env_files_placeholder_secrets_are_refused(tmp_path: Path) -> None:
    """deploy/eldercare.env.example ships ``change-me-long-random`` for every secret, and a copy with one left in
    worked: ``broker password`` derived a gateway's password from the public string (anyone could log in as any
    home), one-tap links were signed with it (anyone could resolve an SOS), and /metrics was open to it."""
    example = Path(__file__).resolve().parents[1] / "deploy" / "eldercare.env.example"
    placeholders = {
        line.split("=", 1)[0]: line.split("=", 1)[1].strip("'")
        for line in example.read_text().splitlines()
        if "change-me" in line and not line.startswith("#")
    }
    assert set(placeholders) >= {"ELDERCARE_GATEWAY_SECRET", "ELDERCARE_LINK_SECRET", "ELDERCARE_MQTT_PASSWORD"}
    base = {"ELDERCARE_DATA_DIR": str(tmp_path / "data")}
    for variable, value in placeholders.items():
        env = {**base, "ELDERCARE_GATEWAY_SECRET": "a-real-random-secret-0123456789", variable: value}
        code, output = _cli(env, "policies", cwd=tmp_path)  # any command reading the settings
        assert code == 2, (variable, output)
        line = _one_clear_line(output)
        assert variable in line and "openssl rand" in line, line
    code, output = _cli({**base, "ELDERCARE_GATEWAY_SECRET": "a-real-random-secret-0123456789"}, "policies",
                        cwd=tmp_path)  # fmt: skip
    assert code == 0, output


def test_stopping_influxdb_or_the_broker_does_not_stop_the_backend_unit() -> None:
    """``Requires=mosquitto.service influxdb.service`` made systemd stop the backend with either (``systemctl stop
    influxdb`` for maintenance, or an InfluxDB that failed at boot) and not start it again when they came back:
    no SOS was raised meanwhile, although the backend spools readings and keeps raising life-safety alerts without
    InfluxDB, and reconnects to the broker on its own. Its servers are ordered and wanted, never required."""
    import configparser

    units = Path(__file__).resolve().parents[1] / "deploy" / "systemd"
    servers = {"mosquitto.service", "influxdb.service", "postgresql.service"}
    for path in sorted(units.glob("eldercare-*.service")):
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.optionxform = str  # type: ignore[assignment,method-assign]
        unit.read(path)
        section = unit["Unit"]
        for binding in ("Requires", "Requisite", "BindsTo", "PartOf"):
            assert not servers & set(section.get(binding, "").split()), (path.name, binding)
        if path.name == "eldercare-backend.service":
            assert servers <= set(section.get("Wants", "").split()), path.name
            assert servers <= set(section.get("After", "").split()), path.name


def test_nightly_backups_keep_the_newest_few_and_remove_the_rest(tmp_path: Path) -> None:
    """Each night wrote one more full copy into /var/backups/eldercare and nothing ever removed one: the disk that
    InfluxDB, PostgreSQL and the spool share filled up, and personal data outlived its retention and erasures in
    the old copies. ``--keep N`` removes the older backups beside the new one, only directories eldercare wrote."""
    import json
    import os

    data, parent = tmp_path / "data", tmp_path / "backups"
    env = {"ELDERCARE_DATA_DIR": str(data)}
    assert CliRunner().invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    for night in range(1, 5):
        result = CliRunner().invoke(app, ["backup", "--no-influx", str(parent / f"2026120{night}T0230")], env=env)
        assert result.exit_code == 0, result.output
    (parent / "notes").mkdir()  # not a backup: never touched
    (parent / "partial").mkdir()
    (parent / "partial" / "store.sqlite").write_bytes(b"")  # no manifest: not eldercare's backup, left alone
    # A copy taken out of order by hand (older manifest time, newer name) is judged by its manifest.
    manifest = parent / "20261203T0230" / "manifest.json"
    older = json.loads(manifest.read_text())
    older["created_ms"] -= 10 * 86_400_000
    manifest.write_text(json.dumps(older))
    os.utime(manifest)
    result = CliRunner().invoke(app, ["backup", "--no-influx", "--keep", "3", str(parent / "20261205T0230")], env=env)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in parent.iterdir()) == [
        "20261202T0230", "20261204T0230", "20261205T0230", "notes", "partial",
    ]  # fmt: skip
    text = _text(result.output)
    assert "removed 2 older backups" in text and "20261203T0230" in text and "20261201T0230" in text
    result = CliRunner().invoke(app, ["backup", "--no-influx", "--keep", "0", str(parent / "x")], env=env)
    assert result.exit_code == 2 and not (parent / "x").exists()  # keeps at least the one it writes


def test_bulk_reads_of_personal_data_by_command_are_audited(tmp_path: Path) -> None:
    """``eldercare backup`` copies every resident's data and ``deadletter list --payload`` shows what devices sent:
    neither left an audit entry, although every access to personal data must be auditable."""
    from alerts.store.repository import AlertStore

    data = tmp_path / "data"
    env = {"ELDERCARE_DATA_DIR": str(data)}
    assert CliRunner().invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    _one_dead_letter(data, "ec/v1/h1/band/b1/telemetry", b'{"hr": 72,')
    assert CliRunner().invoke(app, ["deadletter", "list"], env=env).exit_code == 0  # no payloads: nothing to audit
    result = CliRunner().invoke(app, ["deadletter", "list", "--payload"], env=env)
    assert result.exit_code == 0 and '"hr": 72' in result.output, result.output
    result = CliRunner().invoke(app, ["backup", "--no-influx", str(tmp_path / "b")], env=env)
    assert result.exit_code == 0, result.output
    store = AlertStore(url=f"sqlite:///{data / 'eldercare.db'}", migrate=False)
    try:
        entries = [(e.action, e.actor.startswith("cli:"), e.detail) for e in store.audit_entries()]
    finally:
        store.close()
    assert [(a, cli) for a, cli, _ in entries if a.startswith(("deadletter.", "backup."))] == [
        ("deadletter.payloads_read", True), ("backup.created", True), ("backup.completed", True),
    ], entries  # fmt: skip
    assert entries[-2][2]["dir"] == entries[-1][2]["dir"] == str(tmp_path / "b")


def _one_dead_letter(data: Path, topic: str, payload: bytes) -> None:
    """One refused message (not JSON) in the dead-letter record of ``data``."""
    from gateway.deadletter import DeadLetter, DeadLetterStore
    from gateway.errors import Reason

    letters = DeadLetterStore.in_data_dir(data)
    try:
        letters.add_many(
            [DeadLetter(received_ms=1, topic=topic, reason=Reason.BAD_JSON, detail="not JSON", payload=payload)]
        )
    finally:
        letters.close()


def test_metrics_say_when_each_tls_certificate_expires(tmp_path: Path) -> None:
    """The broker's certificate (825 days) expiring cuts every home off at once, its SOS presses included, and
    nothing watched it: /metrics now carries each certificate's end date, read here against openssl's own."""
    import datetime as dt
    import subprocess

    from prometheus_client.parser import text_string_to_metric_families

    from alerts.store.repository import AlertStore
    from eldercare.certs import issue, server_certificate
    from eldercare.production import metrics_source
    from eldercare.settings import Settings

    tls = tmp_path / "tls"
    server_certificate(tls)
    issue(tls, "gw-short", client=True, days=3)
    (tls / "notes.crt").write_text("not a certificate")  # an operator's stray file does not fail the scrape
    console = tmp_path / "console"
    console_files = server_certificate(console)
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    settings = Settings(data_dir=data, backup_tls_dir=tls, console_tls_cert=console_files.cert,
                        console_tls_key=console_files.key)  # fmt: skip
    store = AlertStore(url=settings.database_url)
    try:
        text = metrics_source(store, settings, None)().decode()
    finally:
        store.close()
    [family] = [f for f in text_string_to_metric_families(text) if f.name.startswith("eldercare_tls_")]
    seen = {s.labels["file"]: s.value for s in family.samples}

    def openssl_end(path: Path) -> float:
        out = subprocess.run(["openssl", "x509", "-enddate", "-noout", "-in", str(path)], capture_output=True,
                             text=True, check=True).stdout.strip().removeprefix("notAfter=")  # fmt: skip
        when = dt.datetime.strptime(out, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC)
        return when.timestamp()

    expected = [tls / "ca.crt", tls / "gw-short.crt", tls / "server.crt", console_files.cert]
    assert seen == {str(p): openssl_end(p) for p in expected}
    soon = seen[str(tls / "gw-short.crt")] - dt.datetime.now(dt.UTC).timestamp()
    assert 2 * 86400 < soon <= 3 * 86400  # the 3-day certificate reads as about to expire


def test_a_certificate_is_expiring_inside_the_warning_days_and_expired_after_its_last_second(tmp_path: Path) -> None:
    """The rule ``broker check`` and the console's notice share (eldercare.certs.validity), at its edges."""
    import datetime as dt

    from eldercare.certs import EXPIRY_WARN_DAYS, issue, validity

    files = issue(tmp_path, "gw", client=True, days=40)
    [end] = [v.until_s for v in validity([files.cert])]

    def state(now_s: float) -> tuple[bool, bool]:
        [v] = validity([files.cert, tmp_path / "missing.crt"], now_s=now_s)  # a missing file is left out
        assert v.path == str(files.cert) and v.until_s == end
        return v.expiring, v.expired

    day = 86400.0
    assert state(end - (EXPIRY_WARN_DAYS + 1) * day) == (False, False)
    assert state(end - (EXPIRY_WARN_DAYS - 1) * day) == (True, False)
    assert state(end) == (True, False)  # its last second still counts
    assert state(end + 1) == (False, True)
    [v] = validity([files.cert], now_s=end + 1)
    assert v.date == dt.datetime.fromtimestamp(end, dt.UTC).strftime("%Y-%m-%d")
