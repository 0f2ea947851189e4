"""``eldercare bench flood`` end to end at toy scale: both rounds raise the neighbour's alert, and the budget round
stores what the budget allows and counts the rest (the timings themselves are the benchmark's, never asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.flood import run_bench_flood

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_small_flood_is_all_stored_without_a_budget_and_counted_beyond_it_with_one(tmp_path: Path) -> None:
    report = run_bench_flood(flood=3_000, budget="1/500", data_dir=tmp_path)
    off, on = report.rounds
    assert (off.budget, off.stored, off.over_budget) == ("off", 3_000, 0)
    assert on.budget == "1/500"
    assert on.stored + on.over_budget == 3_000
    assert 500 <= on.stored < 3_000
    assert off.raised_s > 0 and on.raised_s > 0  # each round's press raised the neighbour's alert
    assert "| 1/500 |" in report.summary()
