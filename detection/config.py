"""Hyperparameters of the detection core: population defaults, safety floors, time zone.

Everything is a keyword argument with a typed default; the composition root builds one :class:`DetectConfig`
from its settings and hands it down. Nothing here reads the environment.
"""

from __future__ import annotations

import msgspec


class DetectConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Thresholds of every detector. Minutes (``_min``) or seconds (``_s``) as named."""

    tz_offset_s: int = 8 * 3600
    """Local time offset for time-of-day logic (Asia/Shanghai: UTC+8, no DST)."""
    night_start_min: int = 22 * 60
    night_end_min: int = 6 * 60
    day_boundary_min: int = 12 * 60
    """Local time at which one "care day" ends: a night and the following morning belong to one day."""

    grace_days: int = 7
    """Days of history before an elder's own baseline replaces the population defaults."""
    grace_days_wake: int = 3
    """Days of observed wake times before the personal not-up deadline applies (a wake time is one number a day)."""
    history_days: int = 28

    # night bed exit (field practice: 30–45 min between 22:00 and 06:00)
    bed_exit_default_min: float = 40.0
    bed_exit_floor_min: float = 30.0
    bed_exit_ceiling_min: float = 45.0
    bed_exit_min_s: int = 60
    bed_exit_moved_s: int = 120
    """Movement in the home later than this after leaving bed means the elder is up and about, not lying still."""
    """Out-of-bed spells shorter than this are turning over, not an exit."""

    # unusual inactivity (at home, awake, out of bed)
    inactivity_default_min: float = 45.0
    inactivity_floor_min: float = 30.0
    inactivity_ceiling_min: float = 120.0
    """Safety ceiling: never wait longer than this, whatever the elder's history says (homes with a motion sensor
    outside the bedroom: a still PIR is strong evidence)."""
    inactivity_sparse_ceiling_min: float = 240.0
    """The ceiling in homes with contacts only: a quiet cupboard is weak evidence that nobody moves, and such homes'
    own quiet spells run to hours; the learned limit may go this far."""
    inactivity_margin: float = 1.15
    """Learned limit = margin × a high quantile of the daily longest quiet spells in that block (and room)."""
    inactivity_quantile: float = 0.95
    """Quantile of the daily longest quiet spells a learned limit starts from (robust to an unlabelled bad day)."""
    inactivity_backstop_min: float = 240.0
    """Where a home's own quiet spells outlast its ceiling (silence there is weak evidence), page only after this
    long a silence; 0 turns the rule off there instead."""
    inactivity_close_watch_backstop_min: float = 120.0
    """The backstop in a home under close watch (a resident tagged 重点关注): the community accepts more false pages
    to find a long lie sooner. It also caps the home's ceiling (contacts-only homes wait up to 4 h otherwise).
    Measured on the real development homes with every home under close watch (docs/detection.md, "Long lie: what
    the backstop costs"): long-lie median delay 226 → 125 min (check-in window included), false pages 1.1 → 2.2
    and check-in prompts 0.5 → 1.6 per home-month (session 17)."""
    inactivity_run_on_before_min: int = 20 * 60
    """A daytime silence that began outside the bedroom before this local time may run on into the night (an
    evening fall); later, silence is taken for bedtime unless a bed sensor says otherwise."""
    inactivity_pages_per_month: float = 0.5
    """False-page budget of the learned inactivity limits, per home-month. A home's daily longest quiet spells in each
    cell (block of the day, or block × room of the last activity) are fitted with a Gumbel (extreme-value)
    distribution and the limit is the spell length a day exceeds with probability ``budget / 30 / cells``: more
    watched rooms share the same budget. Never below the empirical rule (quantile × margin). 0 = empirical only."""
    inactivity_room_prior_days: float = 28.0
    """Weight, in days, of the block's limit in a room × block limit (shrinkage): ``n / (n + this)`` is the room's."""
    inactivity_block_prior_days: float = 7.0
    """Weight, in days, of the home's own daytime limit (median of its daytime blocks) in one block's limit: a block
    with few days of short spells is shrunk toward it by ``n / (n + this)`` (0 = off)."""
    inactivity_room_quantile: float = 1.0
    """The same per room of the last activity: the longest spell seen (each room × block is one more chance a day
    to exceed a limit; measured on real homes, a 95th percentile per room doubled the false alerts)."""
    inactivity_population_min: tuple[float, float, float, float, float] = (621.0, 262.0, 168.0, 221.0, 526.0)
    """Grace-period limits per block of the day (night, morning, midday, afternoon, evening), before the home's
    ceiling clips them: 1.15 × the median over the real development homes (van Kasteren A–C, MIT subject 1; not the
    simulator) of each home's 95th percentile of the daily longest quiet spell in that block
    (``detection.realdata.evaluate.fit_population_prior``). In practice a new elder is watched at the ceiling
    (2 h with a motion sensor, 4 h with contacts only) until the home's own days replace it."""

    couple_day_start_min: int = 7 * 60
    couple_day_end_min: int = 21 * 60
    """With a second resident, silence only counts between these local times (the other person's bedtime
    quiet is not the monitored elder's)."""

    # not up by the usual time
    not_up_default_min: float = 11 * 60.0
    """Population default deadline, before ``grace_days_wake`` mornings are known: up by 11:00, the latest a learned
    deadline may be (a home with 3 mornings known gets p90 + a margin widened for few mornings, which reaches the
    11:00 clip for most homes; a home with fewer must not be held to an earlier time). Was 10:00: on the real
    development homes, two of the 13 pages of their first week were a 26-year-old's mornings at 10:05."""
    not_up_margin_min: float = 60.0
    not_up_earliest_min: float = 6 * 60 + 30.0
    not_up_latest_min: float = 11 * 60.0
    """Latest learned deadline (a late riser's own p90 + margin is clipped here; was 10:30 until session 4: on the
    real homes 11:00 kept the development homes' false pages at 2.8 per home-month and raised no-wake-up recall from
    91 to 95 %; chosen after a helper reported an unseen home's late-riser pages, so that home is not blind to it)."""
    not_up_widen_days: float = 14.0
    not_up_widen_step_days: float = 7.0
    """With fewer than ``not_up_widen_days`` mornings learned, the margin grows by one whole margin per
    ``not_up_widen_step_days`` missing mornings: + 60 min × (14 − n) / 7, so 154 min after 3 mornings, 120 after 7,
    60 from two weeks on (the p90 of a few mornings is close to their maximum and has seen no lie-in yet). Was 7 and
    4 (+ 60 min × (7 − n) / 4) until issue 19's lie-in work; see docs/detection.md, "Not up"."""
    not_up_weekend_prior_days: float = 4.0
    """Saturday and Sunday mornings get their own deadline, from the home's weekend wake times shrunk toward all
    its mornings: weight ``n / (n + this)`` for ``n`` weekend mornings (weekdays the same way). 0 = one deadline."""
    morning_start_min: int = 4 * 60
    up_confirm_s: int = 20 * 60
    """Out of bed this long in the morning counts as up for the day."""

    # door at night (wandering) and out not back
    night_door_limit_min: float = 20.0
    away_confirm_s: int = 10 * 60
    """No motion inside this long after the door closes: the elder went out."""
    away_confirm_sparse_s: int = 30 * 60
    """The same in a home with contacts only (no motion sensor outside the bedroom): a still elder fires nothing."""
    out_default_min: float = 240.0
    out_floor_min: float = 180.0
    out_ceiling_min: float = 720.0
    out_margin: float = 1.5
    out_quantile: float = 0.9
    """Learned outing limit = margin × this quantile of the daily longest outings (a weekend away is not the norm)."""
    out_pages_per_month: float = 0.5
    """False-page budget of the learned out-not-back limit per home-month: the day's longest outing is a maximum of the
    day's outings, so (like quiet spells) a Gumbel fit of the home's own days says which length a day exceeds with
    probability ``budget / 30``; the limit is never below the empirical rule (quantile × margin). 0 = empirical."""
    out_latest_min: int = 23 * 60
    """Still out at this local time: not back by the usual time, whatever the duration."""
    night_out_limit_min: float = 60.0
    """An outing that starts at night is "not back" after this long."""
    visit_max_min: float = 60.0
    """After an absence that lasted the night, a return this short and a new departure by day are a visit (someone
    fetching things, watering plants): the absence goes on and is not paged again (measured on a real home: 21 pages
    in two months of a stay away, one per visit)."""

    # vitals
    hr_low: float = 40.0
    hr_high: float = 130.0
    spo2_low: float = 85.0
    vitals_sustain_s: int = 60
    hr_low_severe: float = 38.0
    hr_high_severe: float = 140.0
    vitals_mild_sustain_s: int = 600
    """An episode whose mean lies between the severe and the plain limit must last this long (some elders'
    normal sleeping heart rate touches 40 bpm for a few minutes at the bottom of each sleep cycle). A mild episode
    is ignored altogether when it lies within the elder's own learned night band (see ``mild_band_*``)."""
    mild_band_min_delta: float = 6.0
    mild_band_mads: float = 4.0
    grace_days_vitals: int = 2
    """Nights of heart-rate history before the personal night band is used (thousands of samples a night)."""
    apnea_critical_s: float = 60.0
    """A single breathing pause this long is critical."""
    apnea_warn_s: float = 10.0
    apnea_warn_count: int = 3
    """Pauses ≥ apnea_warn_s per hour of sleep that raise one APNEA warning per night."""
    trend_nights: int = 3
    trend_min_delta_hr: float = 5.0
    trend_min_delta_rr: float = 3.0
    trend_mads: float = 3.5

    # check-in before a page
    checkin_window_s: int = 5 * 60
    """A behavioural alert (inactivity, not up, night bed exit) first asks the elder; it pages only if nobody
    answers within this window (or the answer is "help"). 0 turns the check-in off (page at once)."""

    # alarm-fatigue budget (detection/fatigue.py)
    fatigue_budget_per_month: int = 2
    """Behavioural pages (inactivity, not up) a home may send in ``fatigue_window_days`` before its limits widen;
    0 turns the adaptation off. Life-safety alerts are never counted or changed. On real homes (docs/detection.md
    "Alarm-fatigue budget") 2 cut false pages from 11.6 to 9.0 per home-month with long-lie recall unchanged (96 %)."""
    fatigue_window_days: int = 30
    fatigue_inactivity_step: float = 1 / 3
    """Each step over budget widens the inactivity limit by this fraction of the unadapted limit (2 h → 2 h 40 min)."""
    fatigue_max_factor: float = 3.0
    """At most this multiple of the unadapted limit (and never past the ceiling below)."""
    fatigue_inactivity_ceiling_min: float = 240.0
    """Hard ceiling of an adapted inactivity limit (the 4 h backstop)."""
    fatigue_not_up_step_min: float = 20.0
    fatigue_not_up_latest_min: float = 11 * 60 + 30.0
    """An adapted not-up deadline never goes past this local time (before the noon care-day boundary)."""

    # device health
    offline_cadences: float = 3.0
    offline_learned_factor: float = 3.0
    """Learned limit = factor × longest healthy gap seen (only tightens the declared one)."""
    offline_learn_min_gaps: int = 10
    offline_event_cadences: float = 2.0
    offline_event_grace_s: int = 5 * 60
    """Event-driven devices (PIR, contacts, smoke, call button): offline after this many heartbeats + grace."""
    wristband_offline_min_s: int = 4 * 3600
    """A band goes out with the elder (and out of radio range): silence is only suspicious after hours."""
    wristband_out_with_wearer_s: int = 12 * 3600
    """A band that fell silent when the front door opened went out with its wearer (someone else may still be home,
    so the home need not look empty): offline this long after that opening, or ``wristband_offline_min_s`` after
    the door opens again (a return)."""
    offline_min_s: int = 15 * 60
    battery_low_pct: int = 20
    """At or below this level a battery is low."""
    battery_clear_pct: int = 30
    not_worn_limit_min: float = 120.0
    site_offline_after_s: int = 15 * 60
    site_will_grace_s: int = 3 * 60
    """After the gateway's Last Will, wait this long before paging (a reboot reconnects within ~2 min)."""
    site_escalate_after_s: int = 2 * 3600
    """A dark home of a solitary elder is escalated to critical after this long."""
    backlog_lag_s: int = 60
    """A reading that arrives this much later than its device usually delivers (its lag floor) was buffered by the
    gateway (an outage, a reboot): it starts or extends the home's backlog."""
    backlog_settle_s: int = 10
    """The backlog has arrived once no buffered reading of the home came for this long: until then the home's
    behavioural and device timers that fall due wait (a flush is sent a device queue at a time, not in event-time
    order, so a timer armed by its first reading must not fire before the readings that may disprove it)."""
    backlog_hold_max_s: int = 10 * 60
    """...but never longer than this from the backlog's first reading: a gateway that keeps sending old readings
    cannot hold its home's timers for ever. Life-safety decisions are never held (they are made on the reading)."""
