"""Behavioural detectors: exact event times against the population defaults, explanations with numbers."""

from __future__ import annotations

import msgspec
from detect_helpers import MIN, Home, at, rd

from detection.models import AlertType


def _night(home: Home) -> None:
    home.send(rd("mat1", at(0, 22, 0), event="in_bed"))


def test_night_bed_exit_fires_at_the_limit_not_before_and_return_clears() -> None:
    home = Home()
    _night(home)
    home.send(rd("mat1", at(1, 2, 0), event="out_of_bed"))
    home.advance(at(1, 2, 39, 59))
    assert home.of(AlertType.NIGHT_BED_EXIT) == []
    home.advance(at(1, 2, 40))
    [alert] = home.of(AlertType.NIGHT_BED_EXIT)
    assert alert.time_ms == at(1, 2, 40)
    assert "since 02:00" in alert.explanation and "40 min" in alert.explanation
    assert "population default" in alert.explanation and "none since leaving bed" in alert.explanation
    assert "02:00 离床" in alert.explanation_zh
    home.send(rd("mat1", at(1, 2, 55), event="in_bed"))
    assert len(home.of(AlertType.NIGHT_BED_EXIT, clears=True)) == 1


def test_a_late_in_bed_reading_does_not_put_an_elder_who_got_up_back_in_bed() -> None:
    """QoS 1 re-sends, and a cluster whose nodes each carry some of a home's messages, can deliver one device's
    readings out of order. Seen on the 3-node cluster: the 30-s occupancy telemetry stamped 02:00:00 arrived after
    the one stamped 02:00:30 that said the bed was empty, put the elder back in bed, and the night bed exit never
    paged. A reading older than the newest the mattress already gave is history, not news."""
    home = Home()
    _night(home)
    home.send(rd("mat1", at(1, 1, 59, 30), occupied=True), rd("mat1", at(1, 2, 0, 30), occupied=False))
    late = msgspec.structs.replace(rd("mat1", at(1, 2, 0), occupied=True), received_ms=at(1, 2, 0, 31))
    home.send(late)
    assert not home.engine.homes["h1"].in_bed
    home.advance(at(1, 2, 41))
    [alert] = home.of(AlertType.NIGHT_BED_EXIT)
    assert alert.time_ms == at(1, 2, 40, 30) and "since 02:00" in alert.explanation
    # the same holds for the mattress's own bed events: a late "in_bed" is not a return
    again = Home()
    _night(again)
    again.send(rd("mat1", at(1, 2, 0, 30), event="out_of_bed"))
    again.send(msgspec.structs.replace(rd("mat1", at(1, 2, 0), event="in_bed"), received_ms=at(1, 2, 0, 31)))
    again.advance(at(1, 2, 41))
    assert [a.time_ms for a in again.of(AlertType.NIGHT_BED_EXIT)] == [at(1, 2, 40, 30)]
    # ... while a newer reading still counts at once
    back = Home()
    _night(back)
    back.send(rd("mat1", at(1, 2, 0, 30), occupied=False), rd("mat1", at(1, 2, 1), occupied=True))
    back.advance(at(1, 3, 0))
    assert back.of(AlertType.NIGHT_BED_EXIT) == [] and back.engine.homes["h1"].in_bed


def test_short_toilet_trip_raises_nothing() -> None:
    home = Home()
    _night(home)
    home.send(rd("mat1", at(1, 2, 0), event="out_of_bed"), rd("mat1", at(1, 2, 8), event="in_bed"))
    home.advance(at(1, 4, 0))
    assert home.of(AlertType.NIGHT_BED_EXIT) == [] and home.of(AlertType.INACTIVITY) == []


def test_moving_elder_is_alerted_only_once_still() -> None:
    home = Home()
    _night(home)
    home.send(rd("mat1", at(1, 2, 0), event="out_of_bed"))
    for m in range(5, 55, 5):
        home.send(rd("pir1", at(1, 2, m), event="motion"))
    home.advance(at(1, 3, 29, 59))
    assert home.of(AlertType.NIGHT_BED_EXIT) == []
    home.advance(at(1, 3, 30))
    [alert] = home.of(AlertType.NIGHT_BED_EXIT)
    assert alert.time_ms == at(1, 3, 30) and "last movement in the home 02:50" in alert.explanation


def test_inactivity_fires_at_last_activity_plus_limit() -> None:
    home = Home()
    home.send(rd("mat1", at(0, 8, 0), event="out_of_bed"), rd("pir1", at(0, 9, 0), event="motion"))
    home.motion_idle(at(0, 9, 0), at(0, 9, 40))
    home.advance(at(0, 9, 44, 59))
    assert home.of(AlertType.INACTIVITY) == []
    home.motion_idle(at(0, 9, 40), at(0, 9, 50))
    [alert] = home.of(AlertType.INACTIVITY)
    assert alert.time_ms == at(0, 9, 45)
    assert "45 min since 09:00" in alert.explanation and "population default" in alert.explanation
    assert alert.evidence["limit_min"] == 45.0 and alert.evidence["block"] == "morning"
    home.send(rd("pir1", at(0, 10, 0), count=3, window_s=600))
    assert len(home.of(AlertType.INACTIVITY, clears=True)) == 1


def test_activity_moves_the_inactivity_deadline() -> None:
    home = Home()
    home.send(rd("mat1", at(0, 8, 0), event="out_of_bed"), rd("pir1", at(0, 9, 0), event="motion"))
    home.motion_idle(at(0, 9, 0), at(0, 9, 20))
    home.send(rd("pir1", at(0, 9, 30), count=4, window_s=600))
    home.motion_idle(at(0, 9, 30), at(0, 10, 20))
    [alert] = home.of(AlertType.INACTIVITY)
    assert alert.time_ms == at(0, 10, 15)


def test_a_dead_motion_sensor_is_not_evidence_of_inactivity() -> None:
    # Liveness comes from the PIR's heartbeats: its last message at 05:00, so it is offline from 07:05 (2 hourly
    # heartbeats + 5 min). Its silence after that is a dead sensor, not a still elder.
    home = Home()
    home.send(rd("pir1", at(0, 5, 0), status=True, battery=80))
    home.send(rd("mat1", at(0, 8, 0), event="out_of_bed"))
    home.advance(at(0, 11, 0))
    [off] = [a for a in home.of(AlertType.DEVICE_OFFLINE) if a.device == "pir1"]
    assert off.time_ms == at(0, 7, 5)
    assert home.of(AlertType.INACTIVITY) == []


def test_not_up_at_the_population_deadline_while_still_in_bed() -> None:
    home = Home()
    _night(home)
    home.advance(at(1, 10, 59))
    assert home.of(AlertType.NOT_UP) == []
    home.advance(at(1, 11, 0))
    [alert] = home.of(AlertType.NOT_UP)
    assert alert.time_ms == at(1, 11, 0)
    assert "still in bed (since 22:00)" in alert.explanation and "population default (up by 11:00)" in alert.explanation


def test_not_up_is_not_raised_for_a_bedbound_elder() -> None:
    home = Home(bedbound=True)
    _night(home)
    home.advance(at(1, 11, 0))
    assert home.of(AlertType.NOT_UP) == []


def test_night_door_without_return() -> None:
    home = Home()
    _night(home)
    home.send(
        rd("mat1", at(1, 1, 58), event="out_of_bed"),
        rd("door1", at(1, 2, 0), event="open"),
        rd("door1", at(1, 2, 0, 10), event="close"),
    )
    home.advance(at(1, 2, 19, 59))
    assert home.of(AlertType.NIGHT_DOOR) == []
    home.advance(at(1, 2, 20))
    [alert] = home.of(AlertType.NIGHT_DOOR)
    assert alert.time_ms == at(1, 2, 20) and "opened at 02:00" in alert.explanation and "20 min" in alert.explanation


def test_a_night_outing_pages_once_as_night_door_not_again_as_out_not_back() -> None:
    """Measured on a real home: every night outing paged twice, at 20 min (night door) and 60 min (not back)."""
    home = Home()
    _night(home)
    home.send(
        rd("mat1", at(1, 1, 58), event="out_of_bed"),
        rd("door1", at(1, 2, 0), event="open"),
        rd("door1", at(1, 2, 0, 10), event="close"),
    )
    home.advance(at(1, 4, 0))
    [alert] = home.of(AlertType.NIGHT_DOOR)
    assert alert.time_ms == at(1, 2, 20)
    assert home.engine.homes["h1"].away  # the departure was confirmed: the out-not-back rule did run ...
    assert home.of(AlertType.OUT_NOT_BACK) == []  # ... and saw the outing already paged
    # Back at 04:30: the movement inside clears the night door.
    home.send(rd("door1", at(1, 4, 30), event="open"), rd("pir1", at(1, 4, 31), event="motion"))
    assert [a.time_ms for a in home.of(AlertType.NIGHT_DOOR, clears=True)] == [at(1, 4, 31)]


def test_night_door_with_movement_inside_afterwards_is_quiet() -> None:
    home = Home()
    _night(home)
    home.send(
        rd("mat1", at(1, 1, 58), event="out_of_bed"),
        rd("door1", at(1, 2, 0), event="open"),
        rd("door1", at(1, 2, 0, 10), event="close"),
        rd("pir1", at(1, 2, 2), event="motion"),
        rd("mat1", at(1, 2, 5), event="in_bed"),
    )
    home.advance(at(1, 3, 0))
    assert home.of(AlertType.NIGHT_DOOR) == []


def test_out_and_not_back_after_the_default_limit() -> None:
    home = Home()
    home.send(
        rd("mat1", at(0, 7, 0), event="out_of_bed"),
        rd("pir1", at(0, 14, 0), event="motion"),
        rd("door1", at(0, 14, 0, 30), event="open"),
        rd("door1", at(0, 14, 0, 40), event="close"),
    )
    home.motion_idle(at(0, 14, 0), at(0, 18, 0))
    assert home.of(AlertType.INACTIVITY) == []  # out, not inactive
    home.advance(at(0, 18, 0, 39))
    assert home.of(AlertType.OUT_NOT_BACK) == []
    home.advance(at(0, 18, 0, 40))
    [alert] = home.of(AlertType.OUT_NOT_BACK)
    assert alert.time_ms == at(0, 18, 0, 40) and "Went out at 14:00" in alert.explanation
    home.send(rd("door1", at(0, 18, 30), event="open"))
    assert len(home.of(AlertType.OUT_NOT_BACK, clears=True)) == 1


def test_two_residents_no_night_inactivity_from_an_empty_bed() -> None:
    home = Home(solitary=False)
    home.send(rd("mat1", at(0, 8, 0), event="out_of_bed"), rd("pir1", at(0, 21, 30), event="motion"))
    home.motion_idle(at(0, 21, 30), at(1, 1, 0))
    assert home.of(AlertType.INACTIVITY) == []


def _gateway_alive(home: Home, start: int, end: int) -> None:
    """The gateway's status every 5 min in ``[start, end)``, advancing the engine (an empty home stays online)."""
    t = start
    while t < end:
        home.send(rd("gw-h1", t, online=True))
        t += 5 * MIN


def _leave(home: Home, t: int) -> None:
    home.send(rd("door1", t, event="open"), rd("door1", t + 10_000, event="close"))


def _come_in(home: Home, t: int, stay_min: int) -> None:
    home.send(rd("door1", t, event="open"), rd("door1", t + 10_000, event="close"))
    for m in range(1, stay_min, 5):
        home.send(rd("pir1", t + m * MIN, event="motion", room="living"))


def test_visits_during_a_stay_away_do_not_page_out_not_back_again() -> None:
    """Measured on a real home (HomeAssist Home1, April–May 2017): away for days at a time, the home visited for
    5–40 min every few days; each visit re-armed the rule and paged at 23:00 (21 pages for one absence)."""
    home = Home()
    home.send(rd("mat1", at(0, 7, 0), event="out_of_bed"), rd("pir1", at(0, 9, 50), event="motion"))
    _leave(home, at(0, 10, 0))
    _gateway_alive(home, at(0, 10, 0), at(2, 14, 35))
    [first] = home.of(AlertType.OUT_NOT_BACK)  # the absence pages once, at the population limit of 4 h
    assert first.time_ms == at(0, 14, 0, 10)
    # Day 2: someone comes in at 14:35, stays 19 min, leaves; the home is empty again all evening and night.
    _come_in(home, at(2, 14, 35), stay_min=19)
    assert [a.time_ms for a in home.of(AlertType.OUT_NOT_BACK, clears=True)] == [at(2, 14, 35)]
    _leave(home, at(2, 14, 54))
    _gateway_alive(home, at(2, 14, 55), at(3, 10, 0))
    assert len(home.of(AlertType.OUT_NOT_BACK)) == 1  # not paged again at 23:00 or at 4 h, ...
    h = home.engine.homes["h1"]
    assert h.away and h.away_goes_on  # ... although the departure was confirmed: the absence goes on
    # Day 3: another visit of 20 min, a visit inside the same absence.
    _come_in(home, at(3, 10, 0), stay_min=20)
    _leave(home, at(3, 10, 20))
    _gateway_alive(home, at(3, 10, 25), at(4, 12, 0))
    assert len(home.of(AlertType.OUT_NOT_BACK)) == 1 and home.engine.homes["h1"].away_goes_on
    # Day 4: the elder is back and stays the afternoon (longer than a visit); out again at 17:00 and not back within
    # the limit of 4 h: a new outing, paged.
    _come_in(home, at(4, 12, 0), stay_min=300)
    _leave(home, at(4, 17, 0))
    _gateway_alive(home, at(4, 17, 5), at(4, 21, 10))
    assert [a.time_ms for a in home.of(AlertType.OUT_NOT_BACK)] == [first.time_ms, at(4, 21, 0, 10)]
    assert not home.engine.homes["h1"].away_goes_on


def test_a_short_return_after_a_day_out_is_not_a_visit() -> None:
    """Only an absence that lasted the night makes the next short return a visit: home for lunch, out again, paged."""
    home = Home()
    home.send(rd("mat1", at(0, 7, 0), event="out_of_bed"), rd("pir1", at(0, 8, 50), event="motion"))
    _leave(home, at(0, 9, 0))
    _gateway_alive(home, at(0, 9, 0), at(0, 12, 0))
    _come_in(home, at(0, 12, 0), stay_min=20)
    _leave(home, at(0, 12, 20))
    _gateway_alive(home, at(0, 12, 25), at(0, 16, 35))
    [alert] = home.of(AlertType.OUT_NOT_BACK)
    assert alert.time_ms == at(0, 16, 20, 10) and "Went out at 12:20" in alert.explanation
    assert not home.engine.homes["h1"].away_goes_on
