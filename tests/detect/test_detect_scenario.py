"""Scenario evaluation on fixed seeds: the recall and false-alert targets of issue 6 (simulated homes)."""

from __future__ import annotations

import pytest

from detection.evaluate import BEHAVIOUR, LIFE_SAFETY, Run, evaluate
from detection.models import AlertType


@pytest.mark.slow
def test_incident_rich_homes_meet_the_targets() -> None:
    rep = evaluate(runs=[Run(seed=1, homes=20, days=14, mix="incident-rich")])
    assert rep.rows[AlertType.INACTIVITY.value].incidents >= 1  # the seed does contain a daytime collapse
    assert rep.group_recall(LIFE_SAFETY) == 1.0, rep.missed
    behavioural = rep.group_recall(BEHAVIOUR)
    assert behavioural is not None and behavioural >= 0.95, rep.missed
    assert rep.false_per_elder_month <= 0.5, rep.false_alerts
    collapse = rep.collapse_delay_p50()
    assert collapse is not None and collapse <= 60.0
    assert rep.inactivity_late_s_max <= 60.0 and rep.offline_late_s_max <= 60.0
