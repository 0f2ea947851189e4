"""Issue 15, the CLI: a bad recording path is one clear error (no traceback); --seeds without --homes errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from eldercare.cli import app


def test_replay_with_a_missing_file_is_a_short_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["replay", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "Traceback" not in result.output


def test_replay_of_a_bad_file_is_a_short_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("this is not a recording\n")
    result = CliRunner().invoke(app, ["replay", str(bad)])
    assert isinstance(result.exception, SystemExit), result.exception  # handled, not a crash
    assert result.exit_code == 1 and "replay failed" in result.output


def test_evaluate_seeds_need_homes_and_integers() -> None:
    result = CliRunner().invoke(app, ["evaluate", "--seeds", "3,4"])
    assert result.exit_code == 2 and "--homes" in result.output
    result = CliRunner().invoke(app, ["evaluate", "--homes", "1", "--seeds", "a,b"])
    assert result.exit_code == 2 and "integers" in result.output


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
    assert f"127.0.0.1:{port}" in result.output and "Traceback" not in result.output
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
    from eldercare.cli import main

    monkeypatch.setenv("ELDERCARE_DETECT", '{"checkin_windw_s": 60}')
    monkeypatch.setenv("ELDERCARE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("sys.argv", ["eldercare", "deadletter", "stats"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "配置错误 / configuration error" in err and "checkin_windw_s" in err and "Traceback" not in err
