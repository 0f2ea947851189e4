"""``eldercare bench latency`` end to end at toy scale: every press reaches every stage, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.latency import PHASES, STAGES, run_bench_latency
from bench.sos_trace import TRACE_STAGES

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_small_run_times_every_stage_of_every_press(tmp_path: Path) -> None:
    report = run_bench_latency(
        homes=20, presses=3, burst=2, burst_rounds=1, data_dir=tmp_path, spacing_s=0.05, warmup_s=1.0
    )
    assert [p.phase for p in report.samples].count("burst") == 2
    for phase in PHASES:
        for stage in STAGES:
            stats = report.stats(phase, stage)
            assert stats.missing == 0 and stats.count > 0, (phase, stage)
            assert 0 <= stats.p50 <= stats.p99 <= stats.max < 30_000
    # Stages happen in pipeline order for each press.
    for press in report.samples:
        times = [press.ms(stage) for stage in STAGES]
        assert None not in times
        assert times[1] <= times[2] <= times[3]  # type: ignore[operator]
    assert report.background_connected == 20
    assert "| loaded | stored |" in report.table()


def test_stage_trace_follows_each_press_from_the_socket_read_to_the_stored_row(tmp_path: Path) -> None:
    report = run_bench_latency(
        homes=20, presses=3, burst=2, burst_rounds=1, data_dir=tmp_path, spacing_s=0.05, warmup_s=1.0, stages=True
    )
    assert set(report.stages) == set(PHASES)
    for phase in PHASES:
        lines = report.stages[phase]
        assert lines[0].startswith(f"stage steps over {2 if phase == 'burst' else 3} presses"), lines
        steps = [line.split(" | ")[0].lstrip("| ") for line in lines if line.startswith("| ") and "→" in line]
        assert steps == [f"{a} → {b}" for a, b in zip(("published", *TRACE_STAGES), TRACE_STAGES, strict=False)]
    assert "the storing thread's CPU" in report.summary()
