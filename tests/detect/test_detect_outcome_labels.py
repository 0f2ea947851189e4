"""A worker's outcome feeds the home's baseline (alerts.learning → Engine.label_outcome), on the real engine."""

from __future__ import annotations

from detect_helpers import RULES, Home, at, rd, registry

from alerts.learning import apply_outcome
from alerts.lifecycle import Outcome
from detection.engine import Engine
from detection.models import AlertType


def _alerted_home() -> tuple[Engine, Home, int]:
    engine = Engine(registry=registry(), config=RULES)
    home = Home(engine=engine)
    home.send(rd("mat1", at(0, 8, 0), event="out_of_bed"), rd("pir1", at(0, 8, 5), event="motion", room="living"))
    home.advance(at(0, 9, 0))
    [alert] = home.of(AlertType.INACTIVITY)
    return engine, home, alert.time_ms


def test_false_alarm_is_learned_and_a_hospital_stay_is_not() -> None:
    engine, home, t = _alerted_home()
    assert apply_outcome(engine, site="h1", alert_type="inactivity", raised_ms=t, outcome=Outcome.FALSE_ALARM) is False
    home.advance(at(0, 12, 30))
    [day] = engine.homes["h1"].history
    assert not day.flagged and day.fine_labels == 1 and engine.learned("h1")["fine_labels"] == 1

    engine, home, t = _alerted_home()
    assert apply_outcome(engine, site="h1", alert_type="inactivity", raised_ms=t, outcome=Outcome.SENT_TO_HOSPITAL)
    home.advance(at(0, 12, 30))
    [day] = engine.homes["h1"].history
    assert day.flagged and day.fine_labels == 0


def test_outcomes_that_say_nothing_about_the_routine_are_not_labels() -> None:
    engine, home, t = _alerted_home()
    assert apply_outcome(engine, site="h1", alert_type="inactivity", raised_ms=t, outcome=Outcome.DEVICE_FIXED) is None
    assert apply_outcome(engine, site="h1", alert_type="sos", raised_ms=t, outcome=Outcome.FALSE_ALARM) is None
    home.advance(at(0, 12, 30))
    [day] = engine.homes["h1"].history
    assert not day.flagged and day.fine_labels == 0
