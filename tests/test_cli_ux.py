"""Issue 15, the CLI: a bad recording path is one clear error (no traceback); --seeds without --homes errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eldercare.cli import app


def _text(output: str) -> str:
    """The words of a CLI message, without the error box's frame and its line breaks (they follow the path's length)."""
    return " ".join(output.replace("│", " ").split())


def test_replay_with_a_missing_file_is_a_short_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["replay", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2
    assert "does not exist" in _text(result.output) and "Traceback" not in result.output


def test_replay_of_a_bad_file_is_a_short_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("this is not a recording\n")
    result = CliRunner().invoke(app, ["replay", str(bad)])
    assert isinstance(result.exception, SystemExit), result.exception  # handled, not a crash
    assert result.exit_code == 1 and "replay failed" in _text(result.output)


def test_evaluate_seeds_need_homes_and_integers() -> None:
    result = CliRunner().invoke(app, ["evaluate", "--seeds", "3,4"])
    assert result.exit_code == 2 and "--homes" in _text(result.output)
    result = CliRunner().invoke(app, ["evaluate", "--homes", "1", "--seeds", "a,b"])
    assert result.exit_code == 2 and "integers" in _text(result.output)


def test_up_with_a_busy_console_port_is_a_short_error_before_any_server_starts() -> None:
    # Found by running `scripts/up` while another console held 8000: uvicorn's bind error came from inside its task,
    # after the broker, InfluxDB and the backend had started, and the launcher hung instead of stopping.
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = CliRunner().invoke(app, ["up", "--console-port", str(port), "--duration", "5"])
    assert result.exit_code == 2, result.output
    assert f"127.0.0.1:{port}" in _text(result.output) and "Traceback" not in result.output
    assert "starting mosquitto" not in result.output  # nothing was started


def test_detection_settings_come_from_the_environment_and_bad_ones_fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """ELDERCARE_DETECT sets any DetectConfig field; a typo or a wrong type stops start-up with the field named."""
    from eldercare.settings import Settings

    monkeypatch.setenv("ELDERCARE_DETECT", '{"checkin_window_s": 180, "fatigue_budget_per_month": 3}')
    cfg = Settings().detect_config()
    assert cfg.checkin_window_s == 180 and cfg.fatigue_budget_per_month == 3
    assert cfg.inactivity_pages_per_month == 0.5  # everything else stays at its default
    monkeypatch.setenv("ELDERCARE_DETECT", '{"checkin_window": 180}')
    with pytest.raises(ValueError, match="unknown detection setting.*checkin_window"):
        Settings()
    monkeypatch.setenv("ELDERCARE_DETECT", '{"checkin_window_s": "soon"}')
    with pytest.raises(ValueError, match=r"ELDERCARE_DETECT: Expected `int`.*checkin_window_s"):
        Settings()


def test_a_wrong_detection_setting_is_one_clear_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("ELDERCARE_DETECT", '{"checkin_windw_s": 60}')
    err = _start_up_refused(monkeypatch, capsys, tmp_path)
    assert "配置错误 / configuration error" in err and "checkin_windw_s" in err


def _start_up_refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    """What a command prints when the environment's settings stop it: exit 2, no traceback; returns stderr."""
    from eldercare.cli import main

    monkeypatch.setenv("ELDERCARE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("sys.argv", ["eldercare", "deadletter", "stats"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_escalation_policies_come_from_a_file_checked_at_start_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """ELDERCARE_POLICIES_PATH: every process that raises or notifies alerts uses it; a bad file stops start-up."""
    import json

    from eldercare.settings import Settings

    good = tmp_path / "policies.json"
    good.write_text(json.dumps({"communities": {"C01": {"critical": {"remind_every_s": 60}}}}), encoding="utf-8")
    monkeypatch.setenv("ELDERCARE_POLICIES_PATH", str(good))
    book = Settings().policy_book()
    assert book.communities["C01"].critical.remind_every_s == 60 and book.default.critical.remind_every_s == 120
    result = CliRunner().invoke(app, ["policies"])
    assert result.exit_code == 0, result.output
    assert "C01 · critical" in result.output and "every 1 min, at most 8" in result.output

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"default": {"critical": {"quiet_hours": True}}}), encoding="utf-8")
    result = CliRunner().invoke(app, ["policies", "--file", str(bad)])
    assert result.exit_code == 2 and "critical alerts are never batched or muted" in _text(result.output)
    monkeypatch.setenv("ELDERCARE_POLICIES_PATH", str(bad))
    err = _start_up_refused(monkeypatch, capsys, tmp_path)
    assert "ELDERCARE_POLICIES_PATH" in err and "never batched or muted" in err


def _utc_stamped_recording(tmp_path: Path) -> tuple[Path, Path]:
    """Five days of a home whose recording keeps local wall time as if UTC (as research datasets are often
    converted): up at 07:00, a PIR every 10 min until 23:00, in at night; an outing 14:00-15:00 by the front door."""
    import datetime as dt
    import json

    day0 = int(dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp() * 1000)
    hour, lines, seq = 3_600_000, [], 0

    def add(t: int, topic: str, event: str) -> None:
        nonlocal seq
        seq += 1
        payload = {"event": event, "seq": seq, "ts": t}
        lines.append(json.dumps({"t": t, "topic": f"ec/v1/h0001/{topic}", "payload": json.dumps(payload)}))

    for d in range(5):
        t = day0 + d * 24 * hour + 7 * hour
        while t < day0 + d * 24 * hour + 23 * hour:
            if t == day0 + d * 24 * hour + 14 * hour:
                add(t, "door/door1/event", "open")
                add(t + 60_000, "door/door1/event", "close")
                t += hour
                continue
            add(t, "motion/pir1/event", "motion")
            t += 10 * 60_000
    rec = tmp_path / "utc.jsonl"
    rec.write_text("\n".join(lines) + "\n", encoding="utf-8")
    registry = {
        "version": 1,
        "sites": [
            {
                "site": "h0001",
                "gateway": "gw-h0001",
                "devices": [
                    {"device": "pir1", "kind": "motion", "room": "living"},
                    {"device": "door1", "kind": "door", "room": "entrance"},
                ],
                "residents": [{"id": "R1", "categories": ["独居"], "ability_level": 1}],
            }
        ],
    }
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps(registry), encoding="utf-8")
    return rec, reg


def test_replay_warns_when_a_homes_night_falls_at_noon_and_takes_the_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    rec, reg = _utc_stamped_recording(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.delenv("ELDERCARE_DETECT", raising=False)
    at_default = CliRunner().invoke(app, ["replay", str(rec), "--registry", str(reg), "--out", str(tmp_path / "a")])
    assert at_default.exit_code == 0, at_default.output
    assert "local time UTC+8" in at_default.output
    assert "home h0001 is quietest around noon" in at_default.output and "--utc-offset 0" in at_default.output
    # Read at UTC+8 the afternoon walk at 14:00 is a front door opened at 22:00: a night-door page every day.
    wrong = [json.loads(x) for x in (tmp_path / "a").read_text(encoding="utf-8").splitlines()]
    assert sum(r["type"] == "night_door" and r["notify"] for r in wrong) == 5

    right = CliRunner().invoke(
        app, ["replay", str(rec), "--registry", str(reg), "--out", str(tmp_path / "b"), "--utc-offset", "0"]
    )
    assert right.exit_code == 0 and "local time UTC+0" in right.output
    assert "quietest around noon" not in right.output
    rows = [json.loads(x) for x in (tmp_path / "b").read_text(encoding="utf-8").splitlines()]
    assert rows and all(r["time"].endswith("+00:00") for r in rows)
    assert not any(r["type"] == "night_door" for r in rows)

    # The deployment's detection settings apply to replays too.
    monkeypatch.setenv("ELDERCARE_DETECT", '{"tz_offset_s": 0}')
    env = CliRunner().invoke(app, ["replay", str(rec), "--registry", str(reg), "--out", str(tmp_path / "c")])
    assert env.exit_code == 0 and "local time UTC+0" in env.output
    assert (tmp_path / "c").read_text(encoding="utf-8") == (tmp_path / "b").read_text(encoding="utf-8")


def test_start_up_logs_the_migrations_but_not_alembics_plugin_roll_call(tmp_path: Path) -> None:
    """An operator reading the first lines of ``eldercare up`` / ``serve`` sees the schema upgrades, not seven lines
    of alembic announcing its own plugins."""
    code = (
        "from eldercare.cli import _logging; _logging(False)\n"
        "from alerts.store.repository import AlertStore\n"
        f"AlertStore(url='sqlite:///{tmp_path / 'alerts.db'}').close()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "Running upgrade" in proc.stderr
    assert "setup plugin" not in proc.stderr


def test_a_store_migrated_by_a_newer_release_is_one_clear_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Going back to an older release without restoring its backup: the store's schema is newer than the code.

    Before, ``db upgrade`` (the backend unit's start) and every command that opens the store died with Alembic's
    traceback ("Can't locate revision"); the operator needs what happened and what to do.
    """
    from alerts.store.migrate import head_revision
    from alerts.store.repository import AlertStore
    from eldercare.cli import main

    url = f"sqlite:///{tmp_path / 'eldercare.db'}"
    store = AlertStore(url=url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099_from_a_newer_release'")
    store.close()
    monkeypatch.setenv("ELDERCARE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", url)
    monkeypatch.setattr("sys.argv", ["eldercare", "db", "upgrade"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err
    assert "0099_from_a_newer_release" in err and str(head_revision()) in err and "restore" in err
    store = AlertStore(url=url, migrate=False)
    try:
        assert store.current_revision() == "0099_from_a_newer_release"  # left as it was
    finally:
        store.close()
