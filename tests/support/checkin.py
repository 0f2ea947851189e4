"""Seconds-scale detection rules for the check-in tests on real components (embedded backend and cluster workers)."""

from __future__ import annotations

import msgspec

from detection.config import DetectConfig

WINDOW_S = 4
"""The elder has 4 s to answer a check-in."""
FAST = DetectConfig(
    checkin_window_s=WINDOW_S,
    inactivity_population_min=(0.1,) * 5,
    inactivity_default_min=0.1,
    inactivity_floor_min=0.05,
    inactivity_ceiling_min=0.2,
    inactivity_backstop_min=0.3,
    fatigue_budget_per_month=0,
)
"""Inactivity after about 6 s without motion instead of 45 min."""

AWAY = msgspec.structs.replace(
    FAST,
    checkin_window_s=0,  # page at once (the check-in has its own end-to-end tests)
    away_confirm_s=2,  # out 2 s after the door with nobody inside
    out_default_min=0.1,  # not back after about 6 s
    out_floor_min=0.05,
    out_ceiling_min=0.2,
    night_out_limit_min=0.1,  # the same by night (the tests run at any hour of the day)
    night_door_limit_min=0.1,
    visit_max_min=0.1,  # inside for 6 s is the elder back, not a visit
)
"""Away-notice tests (embedded backend and cluster workers): out after 2 s, not back after 6 s, back after 6 s."""
