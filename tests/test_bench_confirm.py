"""``eldercare bench confirm`` at toy scale: every reading stored in the real InfluxDB, and with confirmations on,
every reading confirmed back to its gateway's outbox over the real broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.confirm import run_bench_confirm, table

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_small_run_stores_everything_and_confirms_it_when_asked(tmp_path: Path) -> None:
    rounds = run_bench_confirm(homes=5, count=500, repeat=1, interval_ms=200, data_dir=tmp_path)
    assert [r.confirm for r in rounds] == [False, True]
    assert all(r.stored == r.count == 500 for r in rounds)
    without, with_ = rounds
    assert without.confirmed_s is None and without.confirmations == 0
    assert with_.confirmed_s is not None and with_.confirmations > 0
    assert "| with confirmations |" in table(rounds, 5)
