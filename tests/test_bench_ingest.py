"""``eldercare bench ingest`` at toy scale: every row counts real readings on the real broker and InfluxDB."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.ingest import run_bench_ingest
from bench.nodered import ensure_nodered

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_small_run_has_every_row_with_nothing_lost(tmp_path: Path) -> None:
    """Every stage of one run, the Node-RED peer included (installed into the cache by npm on first use)."""
    red_js, reason = ensure_nodered()
    if red_js is None:
        pytest.skip(f"Node-RED unavailable here: {reason}")
    report = run_bench_ingest(count=2_000, naive_count=200, workers=(1,), data_dir=tmp_path, z2m=True)
    names = [r.name for r in report.results]
    assert names[:5] == ["mosquitto_sub", "bare paho", "bare gmqtt", "bare native (ours, acks per batch)", "naive"]
    assert "ours (native)" in names and "ours (paho)" in names
    assert any(n.startswith("Node-RED 4.") for n in names)
    assert any(n.endswith("queued (drain incl. start-up)") for n in names)
    assert "ours, Zigbee2MQTT" in names
    for r in report.results:
        assert r.received >= r.count, r  # verified by counting: in InfluxDB for every storing stage
    stored = [r for r in report.results if r.note == "verified in InfluxDB"]
    assert all(r.rss_mib and r.cpu_s is not None for r in stored)
    table = report.table()
    assert "| vs Node-RED |" in table and report.skipped == []


def test_without_node_the_peer_row_is_skipped_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither node nor npm on it
    assert shutil.which("npm") is None
    red_js, reason = ensure_nodered(tmp_path / "cache")
    assert red_js is None
    assert reason == "node/npm not found on PATH"
    assert not (tmp_path / "cache").exists()  # nothing was fetched
