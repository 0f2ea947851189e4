"""Per-elder baselines: grace period, never learning from flagged days, fixed floors and ceilings."""

from __future__ import annotations

import msgspec

from detection.baseline import BLOCKS, DaySummary, fit_baselines, population_baseline
from detection.config import DetectConfig
from detection.detectors.base import Context
from detection.detectors.inactivity import InactivityDetector
from detection.state import HomeState
from detection.timers import TimerQueue


def _days(n: int, *, wake: float, gap: float, flagged: set[int] | None = None) -> list[DaySummary]:
    out = []
    for i in range(n):
        d = DaySummary(day=i, wake_min=wake + (i % 3) * 10, night_exit_max_min=8.0, out_max_min=100.0)
        d.max_gap_min = [None, gap, gap, gap, gap]
        d.flagged = i in (flagged or set())
        out.append(d)
    return out


def test_new_elder_keeps_population_defaults_but_learns_wake_time_early() -> None:
    cfg = DetectConfig()
    [b] = fit_baselines({"h": _days(3, wake=400.0, gap=12.0)}, config=cfg).values()
    pop = population_baseline(cfg)
    assert not b.personal and b.inactivity_limit_min == pop.inactivity_limit_min
    assert b.wake_p50_min == 410.0 and b.not_up_min < cfg.not_up_default_min


def test_personal_limits_are_clipped_by_the_safety_floor_and_ceiling() -> None:
    cfg = DetectConfig()
    fits = fit_baselines(
        {"calm": _days(14, wake=400.0, gap=12.0), "napper": _days(14, wake=400.0, gap=300.0)}, config=cfg
    )
    assert fits["calm"].personal and fits["calm"].inactivity_limit_min[1] == cfg.inactivity_floor_min
    # A napper's own spells outlast the safety ceiling: the learned 300 min × 1.15 is kept, and the detector treats
    # the home's silence in that block as weak evidence (2 h ceiling with a motion sensor, 4 h with contacts only):
    # it waits for the 4 h backstop, or stays off there when the backstop is 0.
    assert fits["napper"].inactivity_limit_min[1] == 345.0
    det = InactivityDetector(config=cfg)
    ctx = Context(config=cfg, timers=TimerQueue())
    home = HomeState(site="h", baseline=fits["napper"], day=DaySummary(day=0), last_activity_ms=8 * 3_600_000)
    assert det.limit_min(ctx, home) == cfg.inactivity_backstop_min == 240.0
    off = msgspec.structs.replace(cfg, inactivity_backstop_min=0.0)
    assert InactivityDetector(config=off).limit_min(Context(config=off, timers=TimerQueue()), home) is None
    home.baseline = fits["calm"]
    assert det.limit_min(ctx, home) == cfg.inactivity_floor_min
    assert fits["calm"].bed_exit_limit_min == cfg.bed_exit_floor_min  # 8 min × 1.3 → floor 30
    assert fits["calm"].out_limit_min == cfg.out_floor_min
    assert len(fits["calm"].inactivity_limit_min) == len(BLOCKS)


def test_flagged_days_are_never_learned() -> None:
    cfg = DetectConfig()
    days = _days(14, wake=400.0, gap=20.0)
    incident = DaySummary(day=14, wake_min=700.0, flagged=True)
    incident.max_gap_min = [None, 110.0, 110.0, 110.0, 110.0]
    [b] = fit_baselines({"h": [*days, incident]}, config=cfg).values()
    assert b.n_days == 14 and b.quiet_ref_min[1] == 20.0 and b.wake_p90_min is not None and b.wake_p90_min < 430


def test_an_out_limit_extrapolates_the_homes_own_outings_within_its_page_budget() -> None:
    """The simulator calibrated on real homes: afternoon outings that vary from 40 min to 3 h paged out-not-back
    0.26 times per elder-month at 1.5 × their 90th percentile; the day's longest outing is a maximum, so its tail is
    fitted like the quiet spells' (budget 0.5 a month: 0.16 per elder-month, no recall lost)."""
    import math

    import numpy as np

    cfg = DetectConfig()
    # Four weeks of an hour's walk (50-70 min) and one afternoon at a daughter's, 5 h: the 90th percentile does not
    # see that afternoon at all; the tail fit widens the limit by what the home's spread says.
    varied = [50.0 + (i * 7) % 21 for i in range(27)] + [300.0]
    steady = [90.0] * 28

    def days(outs: list[float]) -> list[DaySummary]:
        return [DaySummary(day=i, out_max_min=o) for i, o in enumerate(outs)]

    fits = fit_baselines({"varied": days(varied), "steady": days(steady)}, config=cfg)
    n = len(varied)
    mean = sum(varied) / n
    beta = (sum((v - mean) ** 2 for v in varied) / (n - 1)) ** 0.5 * 6**0.5 / math.pi
    p = cfg.out_pages_per_month / 30
    tail = mean - 0.5772156649 * beta - beta * math.log(-math.log(1 - p))
    empirical = float(np.quantile(varied, cfg.out_quantile)) * cfg.out_margin
    assert tail > empirical
    assert fits["varied"].out_limit_min == round(min(max(tail, cfg.out_floor_min), cfg.out_ceiling_min), 1)
    assert fits["steady"].out_limit_min == 180.0  # 90 × 1.5 = 135, no spread: the floor
    off = fit_baselines({"varied": days(varied)}, config=DetectConfig(out_pages_per_month=0))
    assert off["varied"].out_limit_min == round(max(empirical, cfg.out_floor_min), 1)
