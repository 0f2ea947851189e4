"""Per-elder baselines: daily summaries in, robust personal thresholds out (numpy, vectorised over elders).

The engine condenses each "care day" (noon to noon, so one night and the following morning belong together)
of each home into a :class:`DaySummary`. :func:`fit_baselines` turns the last ``history_days`` unflagged days
of many homes into :class:`Baseline` objects in one vectorised pass (``np.nanquantile`` over a
homes × days matrix), so a nightly refit of 100,000 elders is a few array operations that run in a worker
thread, off the event loop. Days on which a behavioural alert was raised are flagged and never learned from,
so an incident never becomes "normal". Until an elder has ``grace_days`` of history the population
defaults apply, and the fixed safety floors and ceilings of :class:`~detection.config.DetectConfig` always clip
the learned values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from detection.config import DetectConfig

BLOCKS: Final = ("night", "morning", "midday", "afternoon", "evening")
"""Blocks of the day for the inactivity baseline: 22–06, 06–10, 10–14, 14–18, 18–22 local time."""
BLOCKS_ZH: Final = ("夜间", "上午早些时候", "中午前后", "下午", "傍晚")
_BLOCK_EDGES_MIN: Final = (6 * 60, 10 * 60, 14 * 60, 18 * 60, 22 * 60)


def block_of(minute_of_day: float) -> int:
    """Index into :data:`BLOCKS` of a local minute of the day."""
    if minute_of_day < _BLOCK_EDGES_MIN[0] or minute_of_day >= _BLOCK_EDGES_MIN[4]:
        return 0
    if minute_of_day < _BLOCK_EDGES_MIN[1]:
        return 1
    if minute_of_day < _BLOCK_EDGES_MIN[2]:
        return 2
    if minute_of_day < _BLOCK_EDGES_MIN[3]:
        return 3
    return 4


def is_weekend_date(local_date: int) -> bool:
    """True for a Saturday or a Sunday, given the local date as days since 1970-01-01 (a Thursday).

    >>> [is_weekend_date(d) for d in (1, 2, 3, 4)]  # Friday 2 January 1970 to Monday 5 January
    [False, True, True, False]
    """
    return (local_date + 3) % 7 >= 5


def is_weekend_morning(care_day: int) -> bool:
    """True if the morning of this care day (noon to noon: the morning is on the next local date) is a weekend's."""
    return is_weekend_date(care_day + 1)


class DaySummary(msgspec.Struct, kw_only=True):
    """What one home's care day looked like; mutable while the day is running, then archived."""

    day: int
    flagged: bool = False
    """A confirmed incident happened on this day (ground truth in evaluation; in production an alert a worker
    resolved as real): never learned from. An alert alone does not flag a day."""
    fine_labels: int = 0
    """Alerts of this day that turned out fine (check-in answered, or a worker's "elder fine / false alarm")."""
    wake_min: float | None = None
    """Local minute of the day the elder got up (out of bed for good in the morning)."""
    bed_min: float | None = None
    """Minutes after the day boundary (noon) the elder went to bed for the night."""
    night_exits: int = 0
    night_exit_max_min: float | None = None
    hr_sum: float = 0.0
    hr_n: int = 0
    rr_sum: float = 0.0
    rr_n: int = 0
    max_gap_min: list[float | None] = msgspec.field(default_factory=lambda: [None] * len(BLOCKS))
    room_gap_min: dict[str, list[float | None]] = msgspec.field(default_factory=dict)
    """Longest quiet spell per block of the day, by the room of the last activity before it."""
    out_max_min: float | None = None
    back_min: float | None = None
    """Latest return home of the day, minutes after the day boundary (noon): 23:30 is 690, 01:00 is 780."""
    activity: int = 0
    apnea_count: int = 0

    @property
    def night_hr(self) -> float | None:
        """Mean heart rate in bed at night, bpm."""
        return self.hr_sum / self.hr_n if self.hr_n >= 20 else None

    @property
    def night_rr(self) -> float | None:
        """Mean breathing rate in bed at night, breaths/min."""
        return self.rr_sum / self.rr_n if self.rr_n >= 20 else None


class WakeGroup(msgspec.Struct, frozen=True, kw_only=True):
    """Weekday or weekend mornings of a home: their wake times shrunk toward all mornings, and their deadline."""

    deadline_min: float
    p50_min: float
    p90_min: float
    mornings: int
    """Mornings of this group among the learned days."""


class Baseline(msgspec.Struct, frozen=True, kw_only=True):
    """Thresholds for one elder, with where each came from (for explanations)."""

    n_days: int = 0
    personal: bool = False
    """False while the population defaults apply (grace period)."""
    bed_exit_limit_min: float
    longest_night_exit_min: float | None = None
    inactivity_limit_min: tuple[float, ...]
    quiet_ref_min: tuple[float | None, ...] = (None,) * len(BLOCKS)
    room_limit_min: dict[str, tuple[float | None, ...]] = msgspec.field(default_factory=dict)
    """Inactivity limit per room of the last activity and block of the day (None: too few days, use the block's)."""
    room_ref_min: dict[str, tuple[float | None, ...]] = msgspec.field(default_factory=dict)
    """The learned quantile of daily longest quiet spells behind each room limit (for explanations)."""
    fine_labels: int = 0
    """Alerts in the learned days that turned out fine (check-ins answered, workers' "false alarm")."""
    not_up_min: float
    """Deadline on weekday mornings (on every morning while ``weekend`` is None)."""
    wake_p50_min: float | None = None
    wake_p90_min: float | None = None
    """Median and 90th percentile of the wake time over all learned mornings."""
    weekday: WakeGroup | None = None
    """The weekday mornings' own wake times behind ``not_up_min`` (None: all mornings alike)."""
    weekend: WakeGroup | None = None
    """Saturday and Sunday mornings: their own deadline (None: ``not_up_min``)."""
    out_limit_min: float
    longest_out_min: float | None = None
    back_by_min: float | None = None
    """Learned "usually home by": a high quantile of the latest return of each day, minutes after noon."""
    hr_med: float | None = None
    hr_mad: float | None = None
    rr_med: float | None = None
    rr_mad: float | None = None
    routine_score: float | None = None
    """Outlier score of the latest day against the elder's own days (:mod:`detection.day_profile`); ranks visits."""
    routine_drivers: tuple[str, ...] = ()
    """Which daily features made the latest day unusual, most unusual first."""

    def not_up_for(self, *, weekend: bool) -> float:
        """The not-up deadline (local minute) of a weekday or a weekend morning."""
        if weekend and self.weekend is not None:
            return self.weekend.deadline_min
        return self.not_up_min


def population_baseline(config: DetectConfig) -> Baseline:
    """Defaults for a new elder (grace period): the field-practice rules."""
    return Baseline(
        bed_exit_limit_min=config.bed_exit_default_min,
        inactivity_limit_min=tuple(config.inactivity_population_min),
        not_up_min=config.not_up_default_min,
        out_limit_min=config.out_default_min,
    )


def _column(days: Sequence[Sequence[DaySummary]], width: int, get: object) -> npt.NDArray[np.float64]:
    getter = get  # a callable DaySummary -> float | None
    out = np.full((len(days), width), np.nan)
    for i, hist in enumerate(days):
        for j, d in enumerate(hist[-width:]):
            v = getter(d)  # type: ignore[operator]
            if v is not None:
                out[i, j] = v
    return out


def _sorted_rows(
    a: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Each row sorted (NaNs last), the indices of the rows with a value, and how many values those rows have."""
    n = np.sum(~np.isnan(a), axis=1)
    rows = np.nonzero(n > 0)[0]
    return np.sort(a, axis=1), rows, n[rows]


def _nanq(a: npt.NDArray[np.float64], q: float) -> npt.NDArray[np.float64]:
    """Per row: ``np.nanquantile(row, q)`` (method ``linear``), bit for bit, NaN for a row without a value.

    NumPy's ``nanquantile`` along an axis runs a Python-level quantile per row (``apply_along_axis``), about 40 µs
    a row; the inline refits of a replay fit one home at a time, so it was a third of the replay's time. This is
    the same arithmetic on all rows at once: sort (NaNs last), virtual index ``(n - 1) q``, NumPy's ``_lerp``
    between its neighbours (``tests/detect/test_detect_baseline_quantile.py`` checks equality with NumPy).
    """
    s, rows, n = _sorted_rows(a)
    res = np.full(a.shape[0], np.nan)
    if not rows.size:
        return res
    last = n - 1
    virtual = last * q
    prev = np.floor(virtual)
    gamma = virtual - prev
    above = virtual >= last
    lo_i = np.where(above, last, prev.astype(np.intp))
    hi_i = np.where(above, last, lo_i + 1)
    lo, hi = s[rows, lo_i], s[rows, hi_i]
    diff = hi - lo
    res[rows] = np.where(gamma >= 0.5, hi - diff * (1 - gamma), lo + diff * gamma)
    return res


def _nanmedian_rows(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per row: ``np.nanmedian(row)``, bit for bit: the middle value, or the two middle ones summed and halved.

    (NumPy's ``nanmedian`` of a small array goes through masked arrays, about 0.4 ms a call.)
    """
    s, rows, n = _sorted_rows(a)
    res = np.full(a.shape[0], np.nan)
    h = n // 2
    lo_i = np.where(n % 2 == 1, h, h - 1)
    res[rows] = (s[rows, lo_i] + s[rows, h]) / 2.0
    return res


def _opt(x: float) -> float | None:
    return None if np.isnan(x) else round(float(x), 2)


def fit_baselines(histories: Mapping[str, Sequence[DaySummary]], *, config: DetectConfig) -> dict[str, Baseline]:
    """Fit every home's baseline from its archived days in one vectorised pass.

    Flagged days are dropped first. Homes with fewer than ``config.grace_days`` usable days keep the
    population defaults. Learned values are clipped by the fixed floors and ceilings of ``config``.
    """
    sites = list(histories)
    width = config.history_days
    days = [[d for d in histories[s] if not d.flagged][-width:] for s in sites]
    n_days = np.array([len(h) for h in days])
    pop = population_baseline(config)
    if not sites:
        return {}

    wake = _column(days, width, lambda d: d.wake_min)
    n_wake = np.sum(~np.isnan(wake), axis=1)
    exits = _column(days, width, lambda d: d.night_exit_max_min)
    outs = _column(days, width, lambda d: d.out_max_min)
    backs = _column(days, width, lambda d: d.back_min)
    back_q = _nanq(backs, 0.95)
    n_back = np.sum(~np.isnan(backs), axis=1)
    hr = _column(days, width, lambda d: d.night_hr)
    rr = _column(days, width, lambda d: d.night_rr)
    gaps = [_column(days, width, lambda d, b=b: d.max_gap_min[b]) for b in range(len(BLOCKS))]

    weekend = _column(days, width, lambda d: float(is_weekend_morning(d.day)))
    wake50, wake90 = _nanq(wake, 0.5), _nanq(wake, 0.9)
    not_up, wake_groups = _wake_deadlines(wake, weekend, n_wake, config)
    exit_max = np.nanmax(np.where(np.isnan(exits), -np.inf, exits), axis=1)
    exit_max = np.where(np.isinf(exit_max), np.nan, exit_max)
    bed_exit = np.clip(
        np.nan_to_num(exit_max * 1.3, nan=config.bed_exit_default_min),
        config.bed_exit_floor_min,
        config.bed_exit_ceiling_min,
    )
    out_max = _nanq(outs, config.out_quantile)
    out_emp = out_max * config.out_margin
    if config.out_pages_per_month > 0:
        out_tail = _gumbel_quantile(outs, np.full(len(sites), config.out_pages_per_month / 30.0))
        out_emp = np.where(np.isnan(out_tail), out_emp, np.fmax(out_emp, out_tail))
    out_lim = np.clip(
        np.nan_to_num(out_emp, nan=config.out_default_min),
        config.out_floor_min,
        config.out_ceiling_min,
    )
    room_vals = [_room_values(days[i]) for i in range(len(sites))]
    room_fits = [_room_limits(v, config) for v in room_vals]
    n_cells = np.array(
        [sum(1 for lim in rl.values() for x in lim if x is not None) for rl, _ in room_fits], dtype=np.float64
    )
    gap_ref = []
    inact = []
    enough_blocks = [np.sum(~np.isnan(g), axis=1) >= config.grace_days for g in gaps]
    n_cells += np.sum(np.array(enough_blocks), axis=0)
    p_cell = _cell_probability(config, n_cells)
    for b in range(len(BLOCKS)):
        g = gaps[b]
        # A robust high quantile of the daily longest spells (every day but confirmed incidents is learned, so
        # one unlabelled bad day must not move the limit the way a maximum would) ...
        gmax = _nanq(g, config.inactivity_quantile)
        enough = enough_blocks[b]
        lim = np.where(enough, gmax * config.inactivity_margin, pop.inactivity_limit_min[b])
        # ... and the tail that the home's false-page budget allows (extreme-value fit), whichever is longer.
        tail = _gumbel_quantile(g, p_cell)
        lim = np.where(enough & ~np.isnan(tail), np.maximum(lim, tail), lim)
        gap_ref.append(np.where(enough, gmax, np.nan))
        # Only the floor here: the detector applies the home's own ceiling (device set), and a learned limit above
        # it means silence there is no evidence in this home (the rule stays off there, see InactivityDetector).
        inact.append(np.maximum(lim, config.inactivity_floor_min))
    inact = _shrink_blocks(inact, [np.sum(~np.isnan(g), axis=1) for g in gaps], enough_blocks, config)
    n_hr = np.sum(~np.isnan(hr), axis=1)
    hr_med = _nanq(hr, 0.5)
    hr_mad = _nanq(np.abs(hr - hr_med[:, None]), 0.5) * 1.4826
    rr_med = _nanq(rr, 0.5)
    rr_mad = _nanq(np.abs(rr - rr_med[:, None]), 0.5) * 1.4826

    out: dict[str, Baseline] = {}
    for i, site in enumerate(sites):
        room_lim, room_ref = room_fits[i]
        room_lim = _room_tails(room_vals[i], room_lim, config, float(p_cell[i]), [float(x[i]) for x in inact])
        fine = sum(d.fine_labels for d in days[i])
        if n_days[i] < config.grace_days:
            base = msgspec.structs.replace(pop, n_days=int(n_days[i]), fine_labels=fine)
            if n_hr[i] >= config.grace_days_vitals:
                base = msgspec.structs.replace(base, hr_med=_opt(hr_med[i]), hr_mad=_opt(hr_mad[i]))
            if n_wake[i] >= config.grace_days_wake:
                # One number a day: a few mornings already beat the population rule.
                base = msgspec.structs.replace(
                    base,
                    not_up_min=float(not_up[i]),
                    wake_p50_min=_opt(wake50[i]),
                    wake_p90_min=_opt(wake90[i]),
                )
                base = _with_groups(base, wake_groups, i)
            out[site] = base
            continue
        personal = Baseline(
            n_days=int(n_days[i]),
            personal=True,
            bed_exit_limit_min=round(float(bed_exit[i]), 1),
            longest_night_exit_min=_opt(exit_max[i]),
            inactivity_limit_min=tuple(round(float(x[i]), 1) for x in inact),
            quiet_ref_min=tuple(_opt(x[i]) for x in gap_ref),
            not_up_min=float(np.nan_to_num(not_up[i], nan=config.not_up_default_min)),
            wake_p50_min=_opt(wake50[i]),
            wake_p90_min=_opt(wake90[i]),
            out_limit_min=round(float(out_lim[i]), 1),
            longest_out_min=_opt(out_max[i]),
            back_by_min=_opt(back_q[i]) if n_back[i] >= config.grace_days else None,
            hr_med=_opt(hr_med[i]),
            hr_mad=_opt(hr_mad[i]),
            rr_med=_opt(rr_med[i]),
            rr_mad=_opt(rr_mad[i]),
            room_limit_min=room_lim,
            room_ref_min=room_ref,
            fine_labels=fine,
        )
        out[site] = _with_groups(personal, wake_groups, i)
    return out


_Group = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int_]]
"""Per home: shrunk median and 90th percentile of a group's wake times, its deadline, and its number of mornings."""


def _wake_deadlines(
    wake: npt.NDArray[np.float64],
    weekend: npt.NDArray[np.float64],
    n_wake: npt.NDArray[np.int_],
    config: DetectConfig,
) -> tuple[npt.NDArray[np.float64], tuple[_Group, _Group] | None]:
    """Not-up deadlines: one for all mornings, or weekday and weekend ones shrunk toward all mornings.

    A group of ``n`` mornings gets weight ``n / (n + not_up_weekend_prior_days)`` for its own quantiles, so a home
    without a weekend pattern (or with too few weekends yet) keeps about one deadline, and a home that sleeps in on
    Saturdays gets a later weekend deadline without moving its weekdays'. Returns the deadline of weekday mornings
    and the (weekday, weekend) fits, or None when the split is off.
    """
    # Fewer mornings → wider margin (a p90 of a few mornings is close to their maximum, not to the real p90, and
    # has seen no lie-in yet; measured on real and simulated homes, see docs/detection.md, "Not up").
    short = np.clip(config.not_up_widen_days - n_wake, 0.0, None)
    margin = config.not_up_margin_min * (1.0 + short / config.not_up_widen_step_days)
    all50, all90 = _nanq(wake, 0.5), _nanq(wake, 0.9)

    def fit(group: npt.NDArray[np.float64]) -> _Group:
        n = np.sum(~np.isnan(group), axis=1)
        w = n / (n + config.not_up_weekend_prior_days)
        q50 = np.where(n > 0, w * _nanq(group, 0.5) + (1 - w) * all50, all50)
        q90 = np.where(n > 0, w * _nanq(group, 0.9) + (1 - w) * all90, all90)
        deadline = np.clip(np.maximum(q90, q50) + margin, config.not_up_earliest_min, config.not_up_latest_min)
        return q50, q90, deadline, n

    if config.not_up_weekend_prior_days <= 0:
        return np.clip(all90 + margin, config.not_up_earliest_min, config.not_up_latest_min), None
    weekdays = fit(np.where(weekend == 0.0, wake, np.nan))
    return weekdays[2], (weekdays, fit(np.where(weekend == 1.0, wake, np.nan)))


def _with_groups(base: Baseline, fits: tuple[_Group, _Group] | None, i: int) -> Baseline:
    """``base`` with home ``i``'s weekday and weekend wake groups (unchanged when the split is off or unlearned)."""
    if fits is None or np.isnan(fits[0][2][i]) or np.isnan(fits[1][2][i]):
        return base

    def group(g: _Group) -> WakeGroup:
        q50, q90, deadline, n = g
        return WakeGroup(
            deadline_min=float(deadline[i]), p50_min=round(float(q50[i]), 2), p90_min=round(float(q90[i]), 2),
            mornings=int(n[i]),
        )  # fmt: skip

    return msgspec.structs.replace(base, weekday=group(fits[0]), weekend=group(fits[1]))


_EULER_GAMMA: Final = 0.5772156649


def _shrink_blocks(
    limits: list[npt.NDArray[np.float64]],
    n_days: list[npt.NDArray[np.int_]],
    enough: list[npt.NDArray[np.bool_]],
    config: DetectConfig,
) -> list[npt.NDArray[np.float64]]:
    """Shrink each daytime block's learned limit toward the home's own daytime median by ``n / (n + prior days)``.

    A block seen on a few days, all with short spells (a resident who is up and about for an hour in the morning),
    does not yet prove that 30 min of quiet there is rare; the home's other daytime blocks say how long this
    resident's quiet spells can be. Night is left alone (its spells are sleep).
    """
    k = config.inactivity_block_prior_days
    if k <= 0:
        return limits
    day = np.array(limits[1:], dtype=np.float64)
    ok = np.array(enough[1:])
    has = ok.any(axis=0)
    ref = np.full(has.shape, np.nan)
    if has.any():
        ref[has] = _nanmedian_rows(np.where(ok, day, np.nan)[:, has].T)
    out = [limits[0]]
    for b in range(1, len(limits)):
        n = n_days[b].astype(np.float64)
        w = n / (n + k)
        shrunk = w * limits[b] + (1.0 - w) * ref
        use = enough[b] & ~np.isnan(ref) & (shrunk > limits[b])
        out.append(np.where(use, shrunk, limits[b]))
    return out


def _cell_probability(config: DetectConfig, n_cells: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Daily probability each inactivity cell may be exceeded so the home stays within its monthly page budget."""
    budget = config.inactivity_pages_per_month
    if budget <= 0:
        return np.full(n_cells.shape, np.nan)
    return np.asarray(budget / 30.0 / np.maximum(n_cells, 1.0), dtype=np.float64)


def _gumbel_quantile(a: npt.NDArray[np.float64], p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per row: the value a day exceeds with probability ``p`` under a Gumbel fit (method of moments).

    The daily longest quiet spell is a maximum of many spells, so its tail is extreme-value shaped; a fit lets a
    few weeks of days say where the once-a-year spell lies, which no empirical quantile of 28 days can.

    >>> a = np.array([[30.0, 40.0, 50.0, 40.0, 35.0, 45.0, 40.0]])
    >>> bool(60 < _gumbel_quantile(a, np.array([0.002]))[0] < 90)
    True
    """
    ok = ~np.isnan(a)
    n = np.sum(ok, axis=1)
    x = np.where(ok, a, 0.0)
    with np.errstate(all="ignore"):
        mean = x.sum(axis=1) / n
        sd = np.sqrt(np.where(ok, (x - mean[:, None]) ** 2, 0.0).sum(axis=1) / (n - 1))
        beta = sd * np.sqrt(6.0) / np.pi
        mu = mean - _EULER_GAMMA * beta
        y = -np.log(-np.log1p(-p))
        out = mu + beta * y
    return np.asarray(np.where((n >= 3) & ~np.isnan(p), out, np.nan), dtype=np.float64)


def _room_tails(
    values: Mapping[str, list[list[float]]],
    limits: dict[str, tuple[float | None, ...]],
    config: DetectConfig,
    p: float,
    block_limits: Sequence[float],
) -> dict[str, tuple[float | None, ...]]:
    """Widen each room × block limit to the Gumbel tail of the home's budget (never narrower than the empirical).

    A room cell holds fewer days than its block (only days with a spell after that room), so its tail is shrunk
    toward the block's limit by ``n / (n + inactivity_room_prior_days)``: a few weeks of short spells after the
    bathroom do not yet prove that an hour there is rare (measured on real homes: a contact-only home's bathroom
    door closed, then the resident sat for an hour in a room without a sensor).
    """
    if np.isnan(p):
        return limits
    cells = [values[room][b] for room, lims in limits.items() for b, lim in enumerate(lims) if lim is not None]
    tails = iter(_gumbel_lists(cells, p))
    out: dict[str, tuple[float | None, ...]] = {}
    for room, lims in limits.items():
        row: list[float | None] = []
        for b, lim in enumerate(lims):
            if lim is None:
                row.append(None)
                continue
            vals = values[room][b]
            tail = next(tails)
            if np.isnan(tail):
                row.append(lim)
                continue
            w = len(vals) / (len(vals) + config.inactivity_room_prior_days)
            row.append(round(max(lim, w * tail + (1.0 - w) * max(block_limits[b], tail)), 1))
        out[room] = tuple(row)
    return out


def _gumbel_lists(cells: Sequence[Sequence[float]], p: float) -> list[float]:
    """:func:`_gumbel_quantile` of each list, in one call per list length.

    Not padded to one width: a padded row would sum in another order, and the limits must not move by a bit.
    """
    tails = [np.nan] * len(cells)
    by_len: dict[int, list[int]] = {}
    for i, vals in enumerate(cells):
        by_len.setdefault(len(vals), []).append(i)
    for idx in by_len.values():
        fit = _gumbel_quantile(np.array([cells[i] for i in idx], dtype=np.float64), np.full(len(idx), p))
        for i, v in zip(idx, fit, strict=True):
            tails[i] = float(v)
    return tails


def _room_values(days: Sequence[DaySummary]) -> dict[str, list[list[float]]]:
    """Per room of the last activity (sorted) and block of the day: the daily longest quiet spells of the days."""
    rooms = sorted({r for d in days for r in d.room_gap_min})
    return {
        room: [
            [v for d in days if (g := d.room_gap_min.get(room)) is not None and (v := g[b]) is not None]
            for b in range(len(BLOCKS))
        ]
        for room in rooms
    }


def _room_limits(
    values: Mapping[str, list[list[float]]], config: DetectConfig
) -> tuple[dict[str, tuple[float | None, ...]], dict[str, tuple[float | None, ...]]]:
    """Per room of the last activity and block: quantile of the daily longest spells × margin, clipped."""
    limits: dict[str, tuple[float | None, ...]] = {}
    refs: dict[str, tuple[float | None, ...]] = {}
    cells = [vals for per_block in values.values() for vals in per_block if len(vals) >= config.grace_days]
    width = max((len(v) for v in cells), default=0)
    table = np.full((len(cells), width), np.nan)
    for i, vals in enumerate(cells):
        table[i, : len(vals)] = vals
    quantiles = iter(_nanq(table, config.inactivity_room_quantile).tolist())  # all cells at once: sort-based
    for room, per_block in values.items():
        lim: list[float | None] = []
        ref: list[float | None] = []
        for vals in per_block:
            if len(vals) < config.grace_days:
                lim.append(None)
                ref.append(None)
                continue
            # Each room × block is one more chance a day to exceed its limit, so a room's limit starts from the
            # longest spell seen (not a quantile); only the floor clips it (the detector applies the ceiling).
            q = next(quantiles)
            ref.append(round(q, 1))
            lim.append(round(max(q * config.inactivity_margin, config.inactivity_floor_min), 1))
        if any(x is not None for x in lim):
            limits[room] = tuple(lim)
            refs[room] = tuple(ref)
    return limits, refs


CHANGE_MIN: Final = 5.0
"""A learned limit is reported as changed when it moves by at least this many minutes and 5 %."""


def baseline_changes(old: Baseline, new: Baseline) -> list[tuple[str, float, float]]:
    """What moved between two baselines of a home, for the resident page: ``(what, old, new)``.

    ``what`` is ``personal`` (the grace period ended, or a home fell back to the population prior),
    ``inactivity:<block>`` (minutes), ``not_up`` (local minute of the day) or ``out_limit`` (minutes).

    >>> a = population_baseline(DetectConfig())
    >>> b = msgspec.structs.replace(a, personal=True, not_up_min=a.not_up_min - 60, out_limit_min=a.out_limit_min + 2)
    >>> baseline_changes(a, b)
    [('personal', 0.0, 1.0), ('not_up', 660.0, 600.0)]
    """
    out: list[tuple[str, float, float]] = []
    if old.personal != new.personal:
        out.append(("personal", float(old.personal), float(new.personal)))

    def moved(x: float, y: float) -> bool:
        return abs(y - x) >= CHANGE_MIN and abs(y - x) >= 0.05 * max(abs(x), 1.0)

    for name, x, y in zip(BLOCKS, old.inactivity_limit_min, new.inactivity_limit_min, strict=True):
        if moved(x, y):
            out.append((f"inactivity:{name}", x, y))
    if moved(old.not_up_min, new.not_up_min):
        out.append(("not_up", old.not_up_min, new.not_up_min))
    if moved(old.out_limit_min, new.out_limit_min):
        out.append(("out_limit", old.out_limit_min, new.out_limit_min))
    return out


def hhmm(minute_of_day: float) -> str:
    """Format a local minute of the day as ``HH:MM``."""
    m = int(minute_of_day) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"
