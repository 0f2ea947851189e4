"""Seconds-scale detection rules for the check-in tests on real components (embedded backend and cluster workers)."""

from __future__ import annotations

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
