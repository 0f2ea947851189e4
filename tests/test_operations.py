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
    """`sudo -u eldercare eldercare backup …` without the env file fell back to SQLite in the working directory."""
    env_file = tmp_path / "eldercare.env"
    env_file.write_text('ELDERCARE_DATABASE_URL="postgresql+psycopg://eldercare@/eldercare?host=/run/postgresql"\n')
    monkeypatch.setattr("eldercare.production.PRODUCTION_ENV_FILE", env_file)
    for argv in (["db", "upgrade"], ["backup", "--no-influx", str(tmp_path / "b")], ["privacy", "retention"]):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 2, (argv, result.output)
        text = _text(result.output)
        assert str(env_file) in text and "ELDERCARE_DATABASE_URL" in text and "Traceback" not in result.output
    assert not sqlite_env.exists() and not (tmp_path / "b").exists()  # nothing was created
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
