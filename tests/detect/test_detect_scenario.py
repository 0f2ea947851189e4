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


@pytest.mark.slow
def test_device_faulty_homes_have_no_late_offline_timer_counting_the_muted_outage() -> None:
    """Seed 2 has gateways going down while a device is already silent. The device cannot speak while its gateway
    is down, so the rule calls it offline a cadence + 10 min after the return; the independent check measured such
    alerts from the device's last message alone and printed 8,569.7 s "late" (target 60 s) in every quick run."""
    rep = evaluate(runs=[Run(seed=2, homes=20, days=14, mix="device-faulty")])
    assert rep.rows[AlertType.SITE_OFFLINE.value].raised > 0 and rep.rows[AlertType.DEVICE_OFFLINE.value].raised > 0
    assert -1e8 < rep.offline_late_s_max <= 60.0
