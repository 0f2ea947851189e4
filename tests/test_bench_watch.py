"""``eldercare bench watch`` at toy scale: both paths store every reading, every SOS press becomes a stored alert."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.watch import run_bench_watch

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_small_run_stores_every_reading_of_both_paths(tmp_path: Path) -> None:
    report = run_bench_watch(count=400, presses=2, data_dir=tmp_path)
    assert [(name, stored) for name, _s, stored in report.rows] == [
        ("contract v1 (MQTT)", 400),
        ("4G watch (TCP)", 400),
    ]
    table = report.table()
    assert "| contract v1 (MQTT) | 400 |" in table and "| 100% | 0 |" in table and "| 4G watch (TCP) | 400 |" in table
    # Every SOS press of both paths ended as a stored alert.
    assert {path: len(times) for path, times in report.latency_ms.items()} == {
        "contract v1 (MQTT)": 2,
        "4G watch (TCP)": 2,
    }
    assert all(t > 0 for times in report.latency_ms.values() for t in times)
    assert "| 4G watch (TCP) | 2 |" in table
