"""``eldercare bench refit``: fitting baselines with the row-wise quantiles, against NumPy's generic routines.

:func:`detection.baseline.fit_baselines` takes many quantiles and medians of small per-home arrays. NumPy's
``nanquantile`` / ``nanmedian`` along an axis run a Python-level routine per row (``apply_along_axis``, masked
arrays for small inputs), and the room cells were fitted one ``np.quantile`` / tail fit per cell. Since session 15
the fit sorts all rows at once and fits the room cells' tails in one call per length, with the same arithmetic
(bit-for-bit equal results: ``tests/detect/test_detect_baseline_quantile.py``). The **baseline** here is the same
fit with NumPy's routines patched back in, measured in the same process on the same histories:

* **1 home** — what a replay (``eldercare replay``, ``eldercare evaluate``) does once per home and care day;
* **N homes** — the backend's hourly refit of every home, in a worker thread.

Histories: ``history_days`` care days per home with a wake time, five blocks' longest quiet spells, four rooms'
spells, outings, returns and night vitals (random, shaped like the real homes' days). Each method runs ``repeat``
times, alternating; the best time counts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

import detection.baseline as bl
from detection.baseline import BLOCKS, Baseline, DaySummary, fit_baselines
from detection.config import DetectConfig

ROOMS = ("bathroom", "bedroom", "kitchen", "living")


def _day(rng: random.Random, day: int) -> DaySummary:
    def spells() -> list[float | None]:
        return [None if rng.random() < 0.2 else round(rng.gammavariate(2.0, 40.0), 1) for _ in BLOCKS]

    return DaySummary(
        day=day,
        wake_min=round(rng.uniform(360, 600), 1),
        night_exit_max_min=round(rng.uniform(2, 30), 1) if rng.random() < 0.6 else None,
        hr_sum=rng.uniform(20_000, 40_000),
        hr_n=rng.randint(0, 600),
        rr_sum=rng.uniform(5_000, 9_000),
        rr_n=rng.randint(0, 600),
        max_gap_min=spells(),
        room_gap_min={room: spells() for room in ROOMS if rng.random() < 0.8},
        out_max_min=round(rng.uniform(10, 300), 1) if rng.random() < 0.7 else None,
        back_min=round(rng.uniform(200, 700), 1) if rng.random() < 0.7 else None,
    )


def histories(homes: int, days: int, *, seed: int = 15) -> dict[str, list[DaySummary]]:
    """``days`` random care days for each of ``homes`` homes."""
    rng = random.Random(seed)
    return {f"h{i:06d}": [_day(rng, d) for d in range(days)] for i in range(homes)}


def _numpy_nanq(a: npt.NDArray[np.float64], q: float) -> npt.NDArray[np.float64]:
    with np.errstate(all="ignore"):
        res = np.full(a.shape[0], np.nan)
        ok = ~np.all(np.isnan(a), axis=1)
        if ok.any():
            res[ok] = np.nanquantile(a[ok], q, axis=1)
        return res


def _numpy_median(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(np.nanmedian(a, axis=1), dtype=np.float64)


def _one_by_one(cells: Sequence[Sequence[float]], p: float) -> list[float]:
    return [float(bl._gumbel_quantile(np.array([c], dtype=np.float64), np.array([p]))[0]) for c in cells]


@contextmanager
def numpy_routines() -> Iterator[None]:
    """The fit as before session 15: NumPy's ``nanquantile`` / ``nanmedian`` per row, one tail fit per cell."""
    saved = (bl._nanq, bl._nanmedian_rows, bl._gumbel_lists)
    bl._nanq, bl._nanmedian_rows, bl._gumbel_lists = _numpy_nanq, _numpy_median, _one_by_one
    try:
        yield
    finally:
        bl._nanq, bl._nanmedian_rows, bl._gumbel_lists = saved


@dataclass(frozen=True, slots=True)
class Row:
    """One home count: best seconds per fit, ours and the baseline's, and whether both fitted the same limits."""

    homes: int
    ours_s: float
    numpy_s: float
    same: bool

    @property
    def ratio(self) -> float:
        """How many times faster ours is."""
        return self.numpy_s / self.ours_s if self.ours_s else float("inf")


def _timed(fit: Callable[[], dict[str, Baseline]]) -> tuple[float, dict[str, Baseline]]:
    t = time.perf_counter()
    out = fit()
    return time.perf_counter() - t, out


def run_bench_refit(*, homes: Sequence[int] = (1, 10_000), repeat: int = 5) -> list[Row]:
    """Time both fits for each home count (alternating, best of ``repeat``)."""
    config = DetectConfig()
    rows = []
    for n in homes:
        hist = histories(n, config.history_days)
        reps = repeat if n < 1000 else max(1, repeat // 2)
        ours_s = numpy_s = float("inf")
        ours: dict[str, Baseline] = {}
        theirs: dict[str, Baseline] = {}

        def fit(h: dict[str, list[DaySummary]] = hist) -> dict[str, Baseline]:
            return fit_baselines(h, config=config)

        for _ in range(reps):
            t, ours = _timed(fit)
            ours_s = min(ours_s, t)
            with numpy_routines():
                t, theirs = _timed(fit)
            numpy_s = min(numpy_s, t)
        rows.append(Row(homes=n, ours_s=ours_s, numpy_s=numpy_s, same=ours == theirs))
    return rows


def table(rows: Sequence[Row]) -> str:
    """Markdown table of the run."""
    head = [
        "| homes | fit (row-wise quantiles) | fit (NumPy per row) | ratio | same limits |",
        "|---:|---:|---:|---:|---|",
    ]
    body = [
        f"| {r.homes:,} | {r.ours_s * 1000:.2f} ms | {r.numpy_s * 1000:.2f} ms | ×{r.ratio:.1f} |"
        f" {'yes' if r.same else 'NO'} |"
        for r in rows
    ]
    return "\n".join([*head, *body])
