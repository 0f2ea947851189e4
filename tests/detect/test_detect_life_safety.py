"""Life-safety detectors: decided on the message itself, synchronously, with explanations."""

from __future__ import annotations

from detect_helpers import MIN, Home, at, rd

from detection.models import AlertType, Severity


def test_sos_is_returned_by_the_same_process_call() -> None:
    home = Home()
    out = home.send(rd("band1", at(0, 10, 0), event="sos"))
    assert [(a.type, a.severity, a.time_ms) for a in out] == [(AlertType.SOS, Severity.CRITICAL, at(0, 10, 0))]
    assert "SOS" in out[0].explanation and "SOS" in out[0].explanation_zh
    assert out[0].is_life_safety


def test_call_button_press_then_cancel_clears() -> None:
    home = Home()
    home.send(rd("btn1", at(0, 10, 0), event="press"), rd("btn1", at(0, 10, 0, 12), event="cancel"))
    assert [a.time_ms for a in home.of(AlertType.CALL_BUTTON)] == [at(0, 10, 0)]
    cleared = home.of(AlertType.CALL_BUTTON, clears=True)
    assert len(cleared) == 1 and "cancelled" in cleared[0].explanation


def test_a_call_button_or_smoke_alarm_says_which_room_it_is_in() -> None:
    """The worker reads where to look first: the call button in the bedroom, the smoke alarm in the kitchen (the
    registry's rooms of the typical home); a device without a room is named as before."""
    home = Home()
    [call] = [a for a in home.send(rd("btn1", at(0, 10, 0), event="press")) if a.type is AlertType.CALL_BUTTON]
    assert "button btn1 in the bedroom pressed" in call.explanation and call.explanation_zh.startswith("卧室的一键呼叫")
    [smoke] = [a for a in home.send(rd("smoke1", at(0, 11, 0), event="alarm")) if a.type is AlertType.SMOKE]
    assert "btn1" not in smoke.explanation and "smoke1 in the kitchen is sounding" in smoke.explanation
    assert smoke.explanation_zh.startswith("厨房的烟感 smoke1")
    [sos] = [a for a in home.send(rd("band1", at(0, 12, 0), event="sos")) if a.type is AlertType.SOS]
    assert " in the " not in sos.explanation  # a wristband is worn: no room


def test_smoke_alarm_mentions_elder_in_bed() -> None:
    home = Home()
    home.send(rd("mat1", at(0, 23, 0), event="in_bed"))
    out = home.send(rd("smoke1", at(0, 23, 30), event="alarm", level=35))
    smoke = [a for a in out if a.type is AlertType.SMOKE]
    assert len(smoke) == 1 and smoke[0].severity is Severity.CRITICAL
    assert "35 %/m" in smoke[0].explanation and "in bed" in smoke[0].explanation
    assert smoke[0].evidence["in_bed"] is True
    home.send(rd("smoke1", at(0, 23, 40), event="clear"))
    assert len(home.of(AlertType.SMOKE, clears=True)) == 1


def test_fall_then_stillness_escalates_after_two_minutes() -> None:
    home = Home()
    t = at(0, 15, 0)
    home.send(rd("pir1", t - 5 * MIN, event="motion"))
    out = home.send(rd("band1", t, event="fall", confidence=0.9))
    assert [a.severity for a in out if a.type is AlertType.FALL] == [Severity.CRITICAL]
    assert "0.90" in out[0].explanation
    assert home.advance(t + 2 * MIN - 1) == []
    followup = [a for a in home.advance(t + 2 * MIN) if a.type is AlertType.FALL]
    assert len(followup) == 1 and followup[0].time_ms == t + 2 * MIN
    assert followup[0].evidence["followup"] is True and "No movement for 2 min" in followup[0].explanation


def test_fall_followed_by_movement_is_not_escalated() -> None:
    home = Home()
    t = at(0, 15, 0)
    home.send(rd("band1", t, event="fall", confidence=0.55))
    assert home.of(AlertType.FALL)[0].severity is Severity.WARNING  # low confidence, still raised
    home.send(rd("pir1", t + MIN, event="motion"))
    home.advance(t + 10 * MIN)
    assert len(home.of(AlertType.FALL)) == 1


def test_severe_bradycardia_fires_when_the_minute_completes_not_before() -> None:
    home = Home()
    t0 = at(1, 2, 0)
    for k in range(3):  # 02:00:00, :20, :40 → only 40 s held
        out = home.send(rd("mat1", t0 + k * 20_000, occupied=True, hr=35.0, rr=12.0))
        assert [a for a in out if a.type is AlertType.VITALS_CRITICAL] == []
    assert home.of(AlertType.VITALS_CRITICAL) == []
    home.send(rd("mat1", t0 + 60_000, occupied=True, hr=36.0, rr=12.0))
    [alert] = home.of(AlertType.VITALS_CRITICAL)
    assert alert.time_ms == t0 + 60_000 and alert.severity is Severity.CRITICAL
    assert "fixed safety limit" in alert.explanation and alert.evidence["held_s"] == 60
    assert alert.evidence["limit"] == 40.0 and "心率" in alert.explanation_zh


def test_second_episode_after_leaving_bed_pages_again() -> None:
    home = Home()
    for night, start in ((1, at(1, 2, 0)), (2, at(2, 3, 0))):
        for k in range(4):
            home.send(rd("mat1", start + k * 20_000, occupied=True, hr=35.0, rr=12.0))
        home.send(rd("mat1", start + 5 * MIN, occupied=False))  # gets up: the mattress stops measuring
        assert len(home.of(AlertType.VITALS_CRITICAL)) == night
    assert home.of(AlertType.VITALS_CRITICAL, clears=True) == []  # leaving bed is not a recovery


def test_mild_bradycardia_needs_ten_minutes_and_one_noisy_sample_does_not_reset() -> None:
    home = Home()
    t0 = at(1, 2, 0)
    for k in range(31):  # 10 min of 20-s samples at ~39 bpm with one in-range sample
        hr = 40.5 if k == 5 else 39.0
        home.send(rd("mat1", t0 + k * 20_000, occupied=True, hr=hr))
        if k * 20_000 < 600_000:
            assert home.of(AlertType.VITALS_CRITICAL) == [], k
    [alert] = home.of(AlertType.VITALS_CRITICAL)
    assert alert.time_ms == t0 + 600_000 and alert.evidence["required_s"] == 600


def test_tachycardia_on_the_wristband_needs_two_worn_samples_a_minute_apart() -> None:
    home = Home()
    t0 = at(0, 15, 0)
    home.send(rd("band1", t0, worn=True, hr=150.0, steps=10))
    assert home.of(AlertType.VITALS_CRITICAL) == []
    home.send(rd("band1", t0 + MIN, worn=True, hr=152.0, steps=10))
    [alert] = home.of(AlertType.VITALS_CRITICAL)
    assert alert.time_ms == t0 + MIN and "> 130" in alert.explanation and "wristband" in alert.explanation


def test_apnea_long_pause_is_critical_and_repeated_pauses_warn_once() -> None:
    home = Home()
    t0 = at(1, 3, 0)
    home.send(rd("mat1", t0, event="apnea", duration_s=70.0))
    [crit] = home.of(AlertType.APNEA)
    assert crit.severity is Severity.CRITICAL and "70 s" in crit.explanation
    for k in range(1, 5):
        home.send(rd("mat1", t0 + k * 10 * MIN, event="apnea", duration_s=20.0))
    warns = [a for a in home.of(AlertType.APNEA) if a.severity is Severity.WARNING]
    assert [a.time_ms for a in warns] == [t0 + 30 * MIN]  # third pause within the hour; the fourth merges
    assert warns[0].evidence["count_1h"] == 3
