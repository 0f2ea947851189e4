"""The baseline fit's fast paths give NumPy's numbers bit for bit: row-wise quantiles and batched tail fits.

``detection.baseline._nanq`` replaces ``np.nanquantile(a, q, axis=1)`` (a Python-level loop over rows inside NumPy,
a third of a replay's time when every home's baseline is refitted daily): the learned limits, and so every
evaluation table, must not move by a single bit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from detection.baseline import _gumbel_lists, _gumbel_quantile, _nanmedian_rows, _nanq
from detection.config import DetectConfig

C = DetectConfig()
QS = sorted({0.0, 0.5, 0.9, 0.95, 1.0, C.inactivity_quantile, C.inactivity_room_quantile, C.out_quantile, 1 / 3})


def _reference(a: np.ndarray, q: float) -> np.ndarray:
    out = np.full(a.shape[0], np.nan)
    for i, row in enumerate(a):
        vals = row[~np.isnan(row)]
        if vals.size:
            out[i] = np.nanquantile(row, q)
            assert out[i] == np.quantile(vals, q)  # (the two NumPy routes agree)
    return out


@pytest.mark.parametrize("seed", range(20))
def test_row_quantiles_equal_numpys_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(1, 30)), int(rng.integers(1, 40))
    # minutes as the day summaries hold them (one decimal: many ties), some huge, some rows all missing
    a = np.round(rng.gamma(2.0, 60.0, size=(rows, cols)) * rng.choice([1.0, 1.0, 1.0, 37.3], size=(rows, cols)), 1)
    a[rng.random((rows, cols)) < rng.uniform(0.0, 0.9)] = np.nan
    a[rng.random(rows) < 0.15] = np.nan
    for q in [*QS, float(rng.uniform())]:
        mine, ref = _nanq(a, q), _reference(a, q)
        assert mine.tobytes() == ref.tobytes(), (q, mine - ref)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (an all-NaN row)
        assert _nanmedian_rows(a).tobytes() == np.nanmedian(a, axis=1).tobytes()
        assert _nanmedian_rows(a.T).tobytes() == np.nanmedian(a, axis=0).tobytes()  # as _shrink_blocks calls it
    vals = [float(x) for x in a[~np.isnan(a)]][: int(rng.integers(1, 40))]
    if vals:
        for q in QS:  # one list, as a room cell is
            assert _nanq(np.array([vals]), q)[0] == float(np.quantile(np.array(vals), q))


@pytest.mark.parametrize("seed", range(10))
def test_room_cell_tails_in_one_call_per_length_equal_one_call_per_cell(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cells = [
        list(np.round(rng.gamma(2.0, 40.0, size=int(rng.integers(1, 30))), 1)) for _ in range(int(rng.integers(1, 25)))
    ]
    p = float(rng.uniform(0.0001, 0.05))
    one_by_one = [float(_gumbel_quantile(np.array([c]), np.array([p]))[0]) for c in cells]
    assert np.array(_gumbel_lists(cells, p)).tobytes() == np.array(one_by_one).tobytes()


def test_rows_without_values_and_single_values() -> None:
    a = np.array([[np.nan, np.nan], [7.0, np.nan], [np.nan, 3.0], [2.0, 4.0]])
    assert _nanq(a, 0.9).tolist()[1:] == [7.0, 3.0, 3.8] and np.isnan(_nanq(a, 0.9)[0])
    assert np.isnan(_nanq(np.full((2, 0), np.nan), 0.5)).all()
