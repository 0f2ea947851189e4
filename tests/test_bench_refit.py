"""`eldercare bench refit` runs both fits on the same histories; they learn the same limits (no timing asserted)."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

import detection.baseline as bl
from bench.refit import histories, numpy_routines, run_bench_refit, table
from detection.baseline import fit_baselines
from detection.config import DetectConfig


def test_the_fast_fit_and_numpys_learn_the_same_limits_and_the_patch_is_undone() -> None:
    config = DetectConfig()
    hist = histories(40, config.history_days, seed=3)
    ours = fit_baselines(hist, config=config)
    assert sum(b.personal for b in ours.values()) == 40 and any(b.room_limit_min for b in ours.values())
    with numpy_routines():
        assert bl._nanq.__module__ == "bench.refit"  # patched inside
        theirs = fit_baselines(hist, config=config)
    assert ours == theirs
    a = np.array([[1.0, np.nan, 3.0]])
    assert bl._nanq.__module__ == "detection.baseline" and bl._nanq(a, 0.5)[0] == 2.0  # restored


def test_bench_refit_prints_a_table_with_ratios() -> None:
    rows = run_bench_refit(homes=[1, 30], repeat=1)
    assert [r.homes for r in rows] == [1, 30] and all(r.same and r.ours_s > 0 and r.numpy_s > 0 for r in rows)
    out = table(rows)
    assert "| 30 |" in out and "×" in out and "NO" not in out
    from eldercare.cli import app

    res = CliRunner().invoke(app, ["bench", "refit", "--homes", "2", "--repeat", "1"])
    assert res.exit_code == 0, res.output
    assert "| 2 |" in res.output and "same limits" in res.output
