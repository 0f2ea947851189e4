"""The failure modes real homes exposed (issue 19), on the real engine with literal times."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
from detect_helpers import DAY, FORTY_FIVE, MIN, RULES, Home, at, rd, registry

from detection.baseline import DaySummary, fit_baselines
from detection.config import DetectConfig
from detection.engine import Engine
from detection.evaluate import inactivity_late_s
from detection.homes import TYPICAL_DEVICES, DeviceInfo, HomeRegistry
from detection.models import Alert, AlertType
from gateway.models import DeviceKind, MessageType, Reading

_seq = 10_000


def r(device: str, kind: DeviceKind, t: int, *, event: str | None = None, status: bool = False, **f: Any) -> Reading:
    """A reading of home ``h1`` from a device of any kind (the helpers' ``rd`` knows only the typical devices)."""
    global _seq
    _seq += 1
    mtype = MessageType.STATUS if status else MessageType.EVENT if event else MessageType.TELEMETRY
    return Reading(
        site="h1", kind=kind, device=device, type=mtype, seq=_seq, ts_ms=t, received_ms=t, fields=f, event=event
    )


def _ordinary_day(home: Home, d: int) -> None:
    """Up at 07:00, the living-room PIR sees the elder every 10 min, except a 50-min quiet spell 10:00–10:50."""
    home.send(rd("mat1", at(d, 7, 0), event="out_of_bed"))
    t = at(d, 7, 0)
    while t < at(d, 22, 0):
        if not at(d, 10, 0) < t < at(d, 10, 50):
            home.send(rd("pir1", t, event="motion", room="living"))
        t += 10 * MIN
    home.send(rd("mat1", at(d, 22, 0), event="in_bed"))


def test_a_baseline_forms_although_every_day_had_a_50_min_quiet_spell() -> None:
    home = Home()  # check-in off: every one of these spells pages while the population default (45 min) applies
    for d in range(9):
        _ordinary_day(home, d)
    first_week = [a for a in home.of(AlertType.INACTIVITY) if a.time_ms < at(7, 12, 0)]
    assert [a.time_ms for a in first_week] == [at(d, 10, 45) for d in range(7)]
    base = home.engine.homes["h1"].baseline
    assert base.personal and base.n_days >= 7
    # 50 min (the robust quantile of the daily longest midday spell) × 1.15 margin
    assert base.inactivity_limit_min[2] == 57.5 and base.room_limit_min["living"][2] == 57.5
    learned = home.engine.learned("h1")
    assert learned["personal"] is True and learned["inactivity_min"]["midday"] == 57.5  # type: ignore[index]
    # What changed, for the resident page: the grace period ended at the boundary after the 7th archived care day.
    changes = {c["what"]: c for c in learned["changes"]}  # type: ignore[attr-defined]
    assert changes["personal"]["from"] == 0 and changes["personal"]["to"] == 1
    assert changes["personal"]["time_ms"] == at(6, 12, 0)
    assert (changes["inactivity:midday"]["from"], changes["inactivity:midday"]["to"]) == (45, 58)  # 57.5 shown
    assert "inactivity:night" not in changes  # in bed all night: nothing learned there, nothing moved
    # Once learned, the usual spell no longer pages, and a longer one pages with a personal explanation.
    assert [a for a in home.of(AlertType.INACTIVITY) if a.time_ms >= at(8, 0, 0)] == []
    home.send(rd("mat1", at(9, 7, 0), event="out_of_bed"), rd("pir1", at(9, 10, 0), event="motion", room="living"))
    home.advance(at(9, 11, 0))
    [late] = [a for a in home.of(AlertType.INACTIVITY) if a.time_ms >= at(9, 0, 0)]
    assert late.time_ms == at(9, 10, 57, 30)
    assert "population default" not in late.explanation and "longest quiet spell" in late.explanation


BEDROOM_HOME = (
    DeviceInfo(device="pirbed", kind=DeviceKind.MOTION, room="bedroom"),
    DeviceInfo(device="pirliv", kind=DeviceKind.MOTION, room="living"),
    DeviceInfo(device="door1", kind=DeviceKind.DOOR, room="entrance"),
)


def test_bedroom_motion_at_04_42_is_not_up() -> None:
    home = Home(engine=Engine(registry=registry(devices=BEDROOM_HOME), config=RULES))
    home.send(r("pirliv", DeviceKind.MOTION, at(0, 20, 0), event="motion", room="living"))
    home.send(r("pirbed", DeviceKind.MOTION, at(0, 22, 0), event="motion", room="bedroom"))
    home.send(r("pirbed", DeviceKind.MOTION, at(1, 4, 42), event="motion", room="bedroom"))
    home.advance(at(1, 10, 59))
    assert home.engine.homes["h1"].day.wake_min is None
    assert home.of(AlertType.NOT_UP) == []
    home.advance(at(1, 11, 0))
    [alert] = home.of(AlertType.NOT_UP)
    assert alert.time_ms == at(1, 11, 0) and "outside the bedroom" in alert.explanation

    # Leaving the bedroom is "up".
    other = Home(engine=Engine(registry=registry(devices=BEDROOM_HOME), config=RULES))
    other.send(r("pirliv", DeviceKind.MOTION, at(0, 20, 0), event="motion", room="living"))
    other.send(r("pirbed", DeviceKind.MOTION, at(1, 4, 42), event="motion", room="bedroom"))
    other.send(r("pirliv", DeviceKind.MOTION, at(1, 7, 10), event="motion", room="living"))
    other.advance(at(1, 11, 0))
    assert other.engine.homes["h1"].day.wake_min == 7 * 60 + 10
    assert other.of(AlertType.NOT_UP) == []


def test_a_door_only_home_whose_elder_stays_in_does_not_page_out_not_back() -> None:
    door_only = (DeviceInfo(device="door1", kind=DeviceKind.DOOR, room="entrance"),)
    home = Home(engine=Engine(registry=registry(devices=door_only), config=RULES))
    home.send(r("door1", DeviceKind.DOOR, at(0, 10, 0), event="open"))
    home.send(r("door1", DeviceKind.DOOR, at(0, 10, 0, 10), event="close"))  # fetched the post; stays in all day
    for h in (12, 18):
        home.send(r("door1", DeviceKind.DOOR, at(0, h, 0), status=True, battery=90))
    home.advance(at(0, 23, 30))
    assert home.of(AlertType.OUT_NOT_BACK) == []
    assert "door contact only" in home.engine.unsupported("h1")["out_not_back"]

    # With a contact inside (the fridge), the same door use followed by the fridge is "at home" ...
    fridge = (*door_only, DeviceInfo(device="fridge", kind=DeviceKind.DOOR, room="kitchen"))
    stays = Home(engine=Engine(registry=registry(devices=fridge), config=RULES))
    stays.send(
        r("door1", DeviceKind.DOOR, at(0, 10, 0), event="open"),
        r("door1", DeviceKind.DOOR, at(0, 10, 0, 10), event="close"),
    )
    stays.send(
        r("fridge", DeviceKind.DOOR, at(0, 10, 5), event="open"),
        r("fridge", DeviceKind.DOOR, at(0, 10, 5, 20), event="close"),
    )
    stays.advance(at(0, 23, 30))
    assert stays.of(AlertType.OUT_NOT_BACK) == [] and not stays.engine.homes["h1"].away
    # ... and a real outing (nothing inside after the door) still pages at the population limit of 4 h.
    out = Home(engine=Engine(registry=registry(devices=fridge), config=RULES))
    out.send(r("fridge", DeviceKind.DOOR, at(0, 9, 50), event="open"))
    out.send(
        r("door1", DeviceKind.DOOR, at(0, 10, 0), event="open"),
        r("door1", DeviceKind.DOOR, at(0, 10, 0, 10), event="close"),
    )
    out.advance(at(0, 14, 1))
    [alert] = out.of(AlertType.OUT_NOT_BACK)
    assert alert.time_ms == at(0, 14, 0, 10)


def test_a_pir_that_heartbeats_but_sees_nobody_is_online_and_evidence_of_no_movement() -> None:
    home = Home()
    home.send(rd("mat1", at(0, 8, 0), event="out_of_bed"), rd("pir1", at(0, 8, 5), event="motion", room="living"))
    for h in range(9, 14):
        home.send(rd("pir1", at(0, h, 0), status=True, battery=80))
    home.advance(at(0, 14, 0))
    assert [a for a in home.of(AlertType.DEVICE_OFFLINE) if a.device == "pir1"] == []
    [alert] = home.of(AlertType.INACTIVITY)
    assert alert.time_ms == at(0, 8, 50)  # 45 min (population default) after the last movement


def _quiet_morning(home: Home) -> None:
    home.send(rd("mat1", at(0, 8, 0), event="out_of_bed"), rd("pir1", at(0, 8, 5), event="motion", room="living"))
    home.send(rd("pir1", at(0, 8, 30), status=True, battery=80))


def test_an_unanswered_check_in_pages() -> None:
    home = Home(config=DetectConfig(inactivity_population_min=FORTY_FIVE))
    _quiet_morning(home)
    home.advance(at(0, 8, 54, 59))
    assert home.of(AlertType.INACTIVITY) == []
    assert [(c.what, c.time_ms) for c in home.engine.checkins] == [("prompt", at(0, 8, 50))]
    home.advance(at(0, 8, 55))
    [alert] = home.of(AlertType.INACTIVITY)
    assert alert.time_ms == at(0, 8, 55)
    assert "Check-in at 08:50: no answer within 5 min." in alert.explanation and "询问老人" in alert.explanation_zh
    assert alert.evidence["checkin_answer"] == "none"
    assert [c.what for c in home.engine.checkins] == ["prompt", "paged"]


def test_an_answered_check_in_does_not_page_and_is_learned_from() -> None:
    home = Home(config=DetectConfig(inactivity_population_min=FORTY_FIVE))
    _quiet_morning(home)
    home.advance(at(0, 8, 52))
    home.send(rd("pir1", at(0, 8, 52), event="motion", room="living"))  # the elder got up from the chair
    for k in range(1, 22):
        home.send(rd("pir1", at(0, 8, 52) + k * 10 * MIN, event="motion", room="living"))
    home.advance(at(0, 12, 30))
    assert home.of(AlertType.INACTIVITY) == [] and home.of(AlertType.INACTIVITY, clears=True) == []
    assert [c.what for c in home.engine.checkins] == ["prompt", "answered"]
    [day] = home.engine.homes["h1"].history
    assert day.fine_labels == 1 and not day.flagged
    assert day.max_gap_min[1] == 47.0  # the quiet spell that prompted is learned as normal
    assert home.engine.homes["h1"].baseline.fine_labels == 1
    learned = home.engine.learned("h1")
    assert learned["fine_labels"] == 1 and learned["personal"] is False and learned["days"] == 1


def test_a_worker_confirmed_incident_is_not_learned_and_a_false_alarm_is() -> None:
    engine = Engine(registry=registry(), config=RULES)
    home = Home(engine=engine)
    _quiet_morning(home)
    home.advance(at(0, 9, 0))
    [alert] = home.of(AlertType.INACTIVITY)
    assert engine.label_outcome("h1", alert.time_ms, real=True)
    home.advance(at(0, 12, 30))
    assert engine.homes["h1"].history[0].flagged
    assert engine.label_outcome("h1", alert.time_ms, real=False)  # the worker changed the outcome: elder fine
    assert not engine.homes["h1"].history[0].flagged and engine.homes["h1"].history[0].fine_labels == 1
    assert not engine.label_outcome("h1", alert.time_ms - 30 * DAY, real=True)


def test_detectors_the_devices_cannot_support_stay_off_with_a_reason() -> None:
    motion_only = (DeviceInfo(device="pir1", kind=DeviceKind.MOTION, room="living"),)
    engine = Engine(registry=registry(devices=motion_only), config=RULES)
    engine.ensure_homes(at(0, 0, 0))
    off = engine.unsupported("h1")
    assert set(off) == {"night_bed_exit", "night_door", "out_not_back"}
    assert "no bed sensor" in off["night_bed_exit"]
    full = Engine(registry=registry(devices=TYPICAL_DEVICES), config=RULES)
    full.ensure_homes(at(0, 0, 0))
    assert full.unsupported("h1") == {}


def test_a_help_answer_pages_at_once_and_life_safety_is_never_held_for_a_check_in() -> None:
    home = Home(config=DetectConfig(inactivity_population_min=FORTY_FIVE))
    _quiet_morning(home)
    home.advance(at(0, 8, 51))
    assert [c.what for c in home.engine.checkins] == ["prompt"]
    # The elder presses the call button: an SOS at once, and the held inactivity alert pages with "help".
    out = home.send(rd("btn1", at(0, 8, 51, 30), event="press"))
    assert [a.type for a in out if a.type is AlertType.CALL_BUTTON] == [AlertType.CALL_BUTTON]
    [held] = [a for a in out if a.type is AlertType.INACTIVITY and not a.clears]
    assert held.time_ms == at(0, 8, 51, 30) and held.evidence["checkin_answer"] == "help"
    assert "the elder asked for help" in held.explanation
    # A fall or smoke alarm while a prompt is open is returned by the same call, at its own time.
    _quiet_morning(other := Home(config=DetectConfig(inactivity_population_min=FORTY_FIVE)))
    other.advance(at(0, 8, 51))
    [fall] = [
        a for a in other.send(rd("band1", at(0, 8, 52), event="fall", confidence=0.9)) if a.type is AlertType.FALL
    ]
    [smoke] = [a for a in other.send(rd("smoke1", at(0, 8, 53), event="alarm")) if a.type is AlertType.SMOKE]
    assert fall.time_ms == at(0, 8, 52) and smoke.time_ms == at(0, 8, 53)


def _heartbeats(home: Home, start: int, end: int) -> None:
    """Hourly status from every device of BEDROOM_HOME: healthy sensors that see nobody."""
    t = start
    while t < end:
        for dev, kind in (("pirbed", DeviceKind.MOTION), ("pirliv", DeviceKind.MOTION), ("door1", DeviceKind.DOOR)):
            home.send(r(dev, kind, t, status=True, battery=90))
        t += 60 * MIN


def test_an_unbroken_silence_pages_once_not_again_every_morning() -> None:
    """A resident away for days without a labelled absence paged "not up" every morning on a real home."""
    home = Home(engine=Engine(registry=registry(devices=BEDROOM_HOME), config=RULES))
    home.send(r("pirliv", DeviceKind.MOTION, at(0, 18, 0), event="motion", room="living"))
    _heartbeats(home, at(0, 18, 30), at(3, 21, 0))
    home.send(r("pirliv", DeviceKind.MOTION, at(3, 21, 20), event="motion", room="living"))  # back
    home.send(r("pirbed", DeviceKind.MOTION, at(3, 21, 50), event="motion", room="bedroom"))  # to bed
    _heartbeats(home, at(3, 22, 0), at(4, 12, 0))
    home.advance(at(4, 12, 0))
    assert [a for a in home.alerts if a.type is AlertType.DEVICE_OFFLINE] == []
    [silence] = [a for a in home.of(AlertType.INACTIVITY) if not a.clears]
    assert silence.time_ms == at(0, 18, 45)
    # The mornings of days 1–3 belong to the silence already paged; day 4 (activity the evening before) pages.
    assert [a.time_ms for a in home.of(AlertType.NOT_UP)] == [at(4, 11, 0)]


def _days_with_midday_spells(spells: list[float], rooms: dict[str, list[float]] | None = None) -> list[DaySummary]:
    days = []
    for i, s in enumerate(spells):
        d = DaySummary(day=i)
        d.max_gap_min[2] = s
        for room, vals in (rooms or {}).items():
            d.room_gap_min[room] = [None, None, vals[i], None, None]
        days.append(d)
    return days


def _gumbel(vals: list[float], p: float) -> float:
    n = len(vals)
    mean = sum(vals) / n
    sd = (sum((v - mean) ** 2 for v in vals) / (n - 1)) ** 0.5
    beta = sd * 6**0.5 / math.pi
    return mean - 0.5772156649 * beta - beta * math.log(-math.log(1 - p))


def test_a_limit_extrapolates_the_homes_own_tail_within_its_page_budget() -> None:
    """Real homes: a 95th percentile × 1.15 of 28 days is exceeded every few weeks; the tail fit allows ~0.5 a month."""
    cfg = DetectConfig()
    varied = [20.0, 35.0, 50.0, 25.0, 90.0, 40.0, 30.0, 60.0, 45.0, 20.0, 75.0, 35.0, 55.0, 40.0]
    steady = [40.0] * 14
    fit = fit_baselines(
        {"varied": _days_with_midday_spells(varied), "steady": _days_with_midday_spells(steady)}, config=cfg
    )
    empirical = float(np.quantile(varied, cfg.inactivity_quantile)) * cfg.inactivity_margin
    cells = 1  # only the midday block has days here
    expected = _gumbel(varied, cfg.inactivity_pages_per_month / 30 / cells)
    assert expected > empirical
    assert fit["varied"].inactivity_limit_min[2] == round(expected, 1)
    assert fit["steady"].inactivity_limit_min[2] == 46.0  # no spread: the empirical rule (40 × 1.15) stands
    # Without a budget the empirical rule alone applies.
    off = fit_baselines({"varied": _days_with_midday_spells(varied)}, config=DetectConfig(inactivity_pages_per_month=0))
    assert off["varied"].inactivity_limit_min[2] == round(empirical, 1)


def test_a_room_limit_from_a_few_weeks_is_shrunk_toward_its_block() -> None:
    """A contact-only home: the bathroom door closes, then the resident sits an hour where no sensor sees him."""
    cfg = DetectConfig()
    block = [60.0, 150.0, 90.0, 120.0, 80.0, 140.0, 100.0, 70.0, 130.0, 110.0, 95.0, 85.0]
    bathroom = [20.0, 30.0, 25.0, 22.0, 28.0, 30.0, 18.0, 26.0, 24.0, 29.0, 21.0, 27.0]
    [base] = fit_baselines({"h": _days_with_midday_spells(block, {"bathroom": bathroom})}, config=cfg).values()
    room = base.room_limit_min["bathroom"][2]
    assert room is not None
    empirical = max(bathroom) * cfg.inactivity_margin
    assert empirical < room < base.inactivity_limit_min[2]
    w = len(bathroom) / (len(bathroom) + cfg.inactivity_room_prior_days)
    p = cfg.inactivity_pages_per_month / 30 / 2  # two cells: the midday block and the bathroom in it
    tail = _gumbel(bathroom, p)
    assert room == round(max(empirical, w * tail + (1 - w) * max(base.inactivity_limit_min[2], tail)), 1)


def test_a_learned_limit_past_the_ceiling_but_before_the_backstop_is_used_as_learned() -> None:
    """A home whose own quiet spells run 2 h 30 min pages then, not at the 4 h backstop (and not at the 2 h ceiling)."""
    home = Home()
    home.send(rd("mat1", at(0, 7, 0), event="out_of_bed"))
    state = home.engine.homes["h1"]
    state.baseline = msgspec.structs.replace(
        state.baseline, personal=True, n_days=20, inactivity_limit_min=(150.0,) * 5, room_limit_min={}
    )
    home.send(rd("pir1", at(0, 9, 0), event="motion", room="living"))
    home.motion_idle(at(0, 9, 0), at(0, 12, 0))
    home.advance(at(0, 12, 0))
    [alert] = home.of(AlertType.INACTIVITY)
    assert alert.time_ms == at(0, 11, 30) and alert.evidence["limit_min"] == 150.0


def test_a_smoke_detector_test_is_no_sign_of_the_elder_but_a_hush_press_is() -> None:
    """Like the gas detector's (docs/devices.md): a `test` may be a self-test or an installer; `silence` is a person."""
    home = Home()
    home.send(rd("mat1", at(0, 8, 0), event="out_of_bed"), rd("pir1", at(0, 9, 0), event="motion", room="living"))
    home.motion_idle(at(0, 9, 0), at(0, 9, 40))
    home.send(rd("smoke1", at(0, 9, 40), event="test"))
    home.motion_idle(at(0, 9, 40), at(0, 10, 0))
    home.advance(at(0, 10, 0))
    [alert] = home.of(AlertType.INACTIVITY)
    assert alert.time_ms == at(0, 9, 45)  # 45 min after the motion: the test press did not hide it
    hush = Home()
    hush.send(rd("mat1", at(0, 8, 0), event="out_of_bed"), rd("pir1", at(0, 9, 0), event="motion", room="living"))
    hush.motion_idle(at(0, 9, 0), at(0, 9, 40))
    hush.send(rd("smoke1", at(0, 9, 40), event="silence"))
    hush.motion_idle(at(0, 9, 40), at(0, 10, 30))
    hush.advance(at(0, 10, 30))
    [later] = hush.of(AlertType.INACTIVITY)
    assert later.time_ms == at(0, 10, 25)  # counted from the hush press


def test_a_block_seen_on_a_week_of_short_spells_is_shrunk_toward_the_homes_daytime_limits() -> None:
    """UCI ADL home B: up at 06:23, bedroom PIR at 06:25, back to bed unseen by its pad; 8 mornings of ≤ 10-min spells
    had set a 30-min morning limit, so the silence paged at 07:00. The home's other daytime blocks say an hour or
    two of quiet is ordinary for this resident; a block with few days leans on them, a block above them is kept."""
    cfg = DetectConfig()
    morning = [6.2, 10.4, 8.1, 6.1, 5.8, 7.3, 3.6, 5.8]
    midday = [17.6, 35.5, 11.0, 13.1, 16.7, 20.9, 14.6, 52.0]
    afternoon = [28.0, 25.3, 4.8, 19.9, 19.2, 21.1, 56.6, 19.6]
    evening = [79.2, 30.1, 30.7, 109.5, 24.4, 37.3, 28.2, 85.0]
    days = []
    for i in range(8):
        d = DaySummary(day=i)
        d.max_gap_min = [None, morning[i], midday[i], afternoon[i], evening[i]]
        days.append(d)
    off = DetectConfig(inactivity_block_prior_days=0)
    [alone] = fit_baselines({"h": days}, config=off).values()
    [shrunk] = fit_baselines({"h": days}, config=cfg).values()
    assert alone.inactivity_limit_min[1] == cfg.inactivity_floor_min  # the 07:00 page
    daytime = float(np.median(alone.inactivity_limit_min[1:]))
    w = 8 / (8 + cfg.inactivity_block_prior_days)
    assert shrunk.inactivity_limit_min[1] == round(w * cfg.inactivity_floor_min + (1 - w) * daytime, 1)
    assert shrunk.inactivity_limit_min[1] > 1.5 * cfg.inactivity_floor_min
    top = int(np.argmax(alone.inactivity_limit_min[1:])) + 1
    assert shrunk.inactivity_limit_min[top] == alone.inactivity_limit_min[top]  # never lowered
    assert shrunk.inactivity_limit_min[0] == alone.inactivity_limit_min[0]  # night is sleep: left alone


def _quiet_since_09_40_then_refit(refit: int, heartbeats_until: int) -> Alert:
    """Living-room motion at 09:40, then quiet with healthy heartbeats; at ``refit`` the home's own 30-min limits
    replace the population's. Returns the one inactivity alert by 10:30."""
    home = Home(engine=Engine(registry=registry(devices=BEDROOM_HOME), config=RULES))
    home.send(r("pirliv", DeviceKind.MOTION, at(0, 9, 40), event="motion", room="living"))
    _heartbeats(home, at(0, 9, 45), heartbeats_until)
    engine = home.engine
    short = msgspec.structs.replace(
        engine.homes["h1"].baseline, personal=True, n_days=7, inactivity_limit_min=(30.0, 30.0, 30.0, 30.0, 30.0)
    )
    home.advance(refit)
    engine.apply_baselines({"h1": short})
    _heartbeats(home, max(refit, heartbeats_until), at(0, 10, 30))
    home.advance(at(0, 10, 30))
    [alert] = home.of(AlertType.INACTIVITY)
    return alert


def test_a_refit_that_shortens_the_limit_of_a_running_silence_arms_the_new_deadline() -> None:
    """The simulator's timer check: a home left its grace period at the noon boundary while quiet since 11:40; its
    timer stayed at the population limit and the prompt came at 12:49, 39 min after the new 30-min limit."""
    alert = _quiet_since_09_40_then_refit(at(0, 9, 59), at(0, 9, 50))
    assert alert.time_ms == at(0, 10, 10) and alert.evidence["limit_min"] == 30.0
    assert alert.evidence["limit_from_quiet_min"] == 19.0 and inactivity_late_s(alert) == 0.0


def test_a_refit_that_shortens_the_limit_past_a_running_silence_pages_at_once_and_says_since_when() -> None:
    """The simulator's timer check, session 11: a fall at 09:01 on the last day of the grace period, the home's own
    30-min limit in force from the noon refit: paged at the refit, and the evaluation must not call that 151 min
    late. The alert says when its limit took effect."""
    alert = _quiet_since_09_40_then_refit(at(0, 10, 20), at(0, 10, 15))
    assert alert.time_ms == at(0, 10, 20) and alert.evidence["limit_min"] == 30.0
    assert alert.evidence["quiet_min"] == 40.0 and alert.evidence["limit_from_quiet_min"] == 40.0
    assert inactivity_late_s(alert) == 0.0
    # Without a limit change during the silence, lateness is the quiet time past the limit.
    no_refit = {**alert.evidence, "limit_from_quiet_min": 0.0}
    assert inactivity_late_s(msgspec.structs.replace(alert, evidence=no_refit)) == 600


def test_the_resident_page_says_how_late_a_long_lie_is_found_and_what_would_help() -> None:
    """Measured on real homes: with contacts only, or where hours of quiet are normal, a long lie reaches the grid
    worker after about 4 h. The resident page says so per block, with the sensor that would shorten it."""
    cfg = DetectConfig()  # shipped rules: population prior, 5-min check-in, ceilings 2 h (PIR) / 4 h (contacts)
    window = cfg.checkin_window_s / 60
    pop = cfg.inactivity_population_min
    # A new home with a living-room PIR: the population prior, clipped only by the 4 h backstop; no hint yet.
    pir = Engine(registry=registry(), config=cfg)
    pir.ensure_homes(at(0, 0))
    ll = pir.learned("h1")["long_lie"]
    assert ll == {
        "after_min": {
            "morning": round(min(pop[1], 240) + window),
            "midday": round(pop[2] + window),
            "afternoon": round(pop[3] + window),
            "evening": round(min(pop[4], 240) + window),
        },
        "hint": None,
    }
    # Once learned: a home whose own afternoons hold quiet spells past the 2 h ceiling waits for the backstop, and
    # the page says why; its quiet midday is found within the hour.
    state = pir.homes["h1"]
    state.baseline = msgspec.structs.replace(
        state.baseline, personal=True, n_days=20, inactivity_limit_min=(600.0, 50.0, 50.0, 400.0, 90.0)
    )
    ll = pir.learned("h1")["long_lie"]
    assert ll["after_min"] == {"morning": 55, "midday": 55, "afternoon": 245, "evening": 95}  # type: ignore[index]
    assert ll["hint"] == "long_spells"  # type: ignore[index]
    # Contacts only (front door, kitchen cupboard): a still elder fires nothing, whatever was learned.
    contacts = (
        DeviceInfo(device="door1", kind=DeviceKind.DOOR, room="entrance"),
        DeviceInfo(device="door2", kind=DeviceKind.DOOR, room="kitchen"),
        DeviceInfo(device="btn1", kind=DeviceKind.CALL_BUTTON, room="bedroom"),
    )
    sparse = Engine(registry=registry(devices=contacts), config=cfg)
    sparse.ensure_homes(at(0, 0))
    assert sparse.learned("h1")["long_lie"]["hint"] == "sparse"  # type: ignore[index]
    # No sensor inside at all: the rule is off (the ``off`` list says why), so there is no time to show.
    door_only = Engine(registry=registry(devices=contacts[:1]), config=cfg)
    door_only.ensure_homes(at(0, 0))
    learned = door_only.learned("h1")
    assert learned["long_lie"] is None and "inactivity" in learned["off"]  # type: ignore[operator]


def _quiet_afternoon(engine: Engine) -> list[Any]:
    """A home whose own afternoons hold 5-h quiet spells: motion at 14:30, then a healthy PIR sees nobody."""
    home = Home(engine=engine)
    home.send(rd("mat1", at(0, 7, 0), event="out_of_bed"), rd("pir1", at(0, 12, 15), event="motion", room="living"))
    state = engine.homes["h1"]  # after the noon refit, which would put the population prior back
    state.baseline = msgspec.structs.replace(
        state.baseline, personal=True, n_days=20, inactivity_limit_min=(600.0, 60.0, 60.0, 300.0, 90.0)
    )
    for hh, mm in ((13, 0), (13, 45), (14, 30)):
        home.send(rd("pir1", at(0, hh, mm), event="motion", room="living"))
    home.motion_idle(at(0, 14, 30), at(0, 19, 0))
    home.advance(at(0, 19, 0))
    return [a for a in home.of(AlertType.INACTIVITY) if not a.clears]


def test_a_resident_tagged_close_watch_is_paged_after_the_shorter_backstop() -> None:
    """重点关注: the community accepts more false pages to find a long lie sooner (2 h instead of 4 h)."""
    doc: dict[str, Any] = {
        "version": 1,
        "sites": [
            {
                "site": "h1",
                "devices": [{"device": d.device, "kind": d.kind.value, "room": d.room} for d in TYPICAL_DEVICES],
                "residents": [{"id": "R1", "categories": ["独居", "重点关注"]}],
            }
        ],
    }
    reg = HomeRegistry.from_mapping(doc)
    assert reg.sites["h1"].close_watch and reg.sites["h1"].solitary
    [standard] = _quiet_afternoon(Engine(registry=registry(), config=RULES))
    assert standard.time_ms == at(0, 18, 30)  # the 4-h backstop
    close = Engine(registry=reg, config=RULES)
    [alert] = _quiet_afternoon(close)
    assert alert.time_ms == at(0, 16, 30) and alert.evidence["limit_min"] == 120.0
    assert "close watch (重点关注): paged after at most 2 h" in alert.explanation
    assert "重点关注对象" in alert.explanation_zh
    long_lie = close.learned("h1")["long_lie"]
    assert long_lie["after_min"]["afternoon"] == 120  # type: ignore[index]  # RULES: check-in off


def test_a_page_at_the_backstop_says_the_homes_own_spells_outlast_its_ceiling() -> None:
    """kasteren-b's evening page read "limit 4 h 00 min: … at most 338 min, × 1.15 margin, clipped to 30–120 min":
    three numbers that contradict each other. A limit past the ceiling must say that the backstop decides, and why."""
    engine = Engine(registry=registry(), config=RULES)
    home = Home(engine=engine)
    home.send(rd("mat1", at(0, 7, 0), event="out_of_bed"), rd("pir1", at(0, 12, 15), event="motion", room="living"))
    state = engine.homes["h1"]
    state.baseline = msgspec.structs.replace(
        state.baseline,
        personal=True,
        n_days=21,
        inactivity_limit_min=(600.0, 60.0, 60.0, 706.0, 90.0),
        quiet_ref_min=(520.0, 40.0, 40.0, 338.0, 70.0),
    )
    for hh, mm in ((13, 0), (13, 45), (14, 30)):
        home.send(rd("pir1", at(0, hh, mm), event="motion", room="living"))
    home.motion_idle(at(0, 14, 30), at(0, 19, 0))
    home.advance(at(0, 19, 0))
    [alert] = [a for a in home.of(AlertType.INACTIVITY) if not a.clears]
    assert alert.time_ms == at(0, 18, 30) and alert.evidence["limit_min"] == 240.0
    assert "clipped to" not in alert.explanation
    assert "at most 338 min on 95% of 21 days (learned limit 11 h 46 min)" in alert.explanation
    assert "longer than its 2 h 00 min ceiling, so a silence here is paged at 4 h 00 min at the latest" in (
        alert.explanation
    )
    assert "超过本户" in alert.explanation_zh and "上限" in alert.explanation_zh


def test_a_close_watch_tag_added_later_counts_after_a_restart_from_the_snapshot() -> None:
    """The registry is read again on restore: a tag (or a device) added since the snapshot is not ignored."""
    engine = Engine(registry=registry(), config=RULES)
    engine.ensure_homes(at(0, 0))
    snap = engine.snapshot()
    doc: dict[str, Any] = {
        "version": 1,
        "sites": [
            {
                "site": "h1",
                "devices": [{"device": d.device, "kind": d.kind.value, "room": d.room} for d in TYPICAL_DEVICES]
                + [{"device": "pir9", "kind": "motion", "room": "kitchen"}],
                "residents": [{"id": "R1", "categories": ["独居", "重点关注"]}],
            }
        ],
    }
    restored, _ = Engine.restore(snap, registry=HomeRegistry.from_mapping(doc), config=RULES)
    home = restored.homes["h1"]
    assert home.close_watch and "pir9" in home.devices and home.devices["pir9"].inside
    [alert] = _quiet_afternoon(restored)
    assert alert.time_ms == at(0, 16, 30)


def test_a_night_opening_while_the_engine_believes_the_elder_out_still_starts_the_wandering_clock() -> None:
    """In a home of contacts only "out" is a guess (door, then 30 min without a contact: the elder may be in bed), so a
    night opening after it must not be taken for a harmless return. The price, measured on van Kasteren A (back from
    an evening out at 23:39, straight to bed): one false night-door page (docs/detection.md)."""
    contacts = (
        DeviceInfo(device="door1", kind=DeviceKind.DOOR, room="entrance"),
        DeviceInfo(device="wc", kind=DeviceKind.DOOR, room="bathroom"),
    )
    home = Home(engine=Engine(registry=registry(devices=contacts), config=RULES))
    home.send(
        r("wc", DeviceKind.DOOR, at(0, 21, 0), event="open"), r("wc", DeviceKind.DOOR, at(0, 21, 1), event="close")
    )
    home.send(
        r("door1", DeviceKind.DOOR, at(0, 21, 5), event="open"),
        r("door1", DeviceKind.DOOR, at(0, 21, 5, 5), event="close"),  # the bins out, back in, to bed
    )
    home.advance(at(0, 22, 0))
    assert home.engine.homes["h1"].away
    home.send(
        r("door1", DeviceKind.DOOR, at(1, 2, 10), event="open"),
        r("door1", DeviceKind.DOOR, at(1, 2, 10, 8), event="close"),
    )
    home.advance(at(1, 3, 0))
    [alert] = home.of(AlertType.NIGHT_DOOR)
    assert alert.time_ms == at(1, 2, 30)


KITCHEN_HOME = (*BEDROOM_HOME, DeviceInfo(device="pirkit", kind=DeviceKind.MOTION, room="kitchen"))


def _blind_living_room(*, living_dead: bool) -> Home:
    """Kitchen motion at 12:00, then the elder sits in the living room: its PIR is dead, or sees nobody.

    Personal limits: 30 min after kitchen motion at midday, 90 min for the midday block whatever the room.
    """
    home = Home(engine=Engine(registry=registry(devices=KITCHEN_HOME), config=RULES))
    home.send(r("pirbed", DeviceKind.MOTION, at(0, 7, 0), event="motion", room="bedroom"))
    t = at(0, 7, 20)
    while t <= at(0, 15, 0):
        if (t - at(0, 0, 0)) % (60 * MIN) == 0:
            home.send(r("pirbed", DeviceKind.MOTION, t, status=True, battery=90))
            home.send(r("pirkit", DeviceKind.MOTION, t, status=True, battery=90))
            if not living_dead or t < at(0, 8, 0):
                home.send(r("pirliv", DeviceKind.MOTION, t, status=True, battery=90))
        if t == at(0, 12, 0):  # after the noon refit
            state = home.engine.homes["h1"]
            state.baseline = msgspec.structs.replace(
                state.baseline,
                personal=True,
                n_days=28,
                inactivity_limit_min=(600.0, 90.0, 90.0, 90.0, 90.0),
                room_limit_min={"kitchen": (None, 30.0, 30.0, 30.0, 30.0)},
            )
        if t <= at(0, 12, 0):
            home.send(r("pirkit", DeviceKind.MOTION, t, event="motion", room="kitchen"))
        t += 20 * MIN
    home.advance(at(0, 15, 0))
    return home


def test_silence_after_a_room_whose_sensors_are_alive_pages_at_that_rooms_limit() -> None:
    home = _blind_living_room(living_dead=False)
    assert [a for a in home.alerts if a.type is AlertType.DEVICE_OFFLINE] == []
    [alert] = home.of(AlertType.INACTIVITY)
    assert alert.time_ms == at(0, 12, 30) and alert.evidence["limit_min"] == 30.0


def test_a_room_whose_only_sensor_is_offline_makes_silence_weak_evidence() -> None:
    """ordonez-a, 2011-12-04: the living room's only sensor (a seat pad) was failing; the elder went from the kitchen
    to the living room at 13:00 and was paged after the kitchen's 30-min limit, sitting where nothing could see her."""
    home = _blind_living_room(living_dead=True)
    [offline] = [a for a in home.alerts if a.type is AlertType.DEVICE_OFFLINE and not a.clears]
    assert offline.device == "pirliv" and offline.time_ms < at(0, 12, 0)
    [alert] = home.of(AlertType.INACTIVITY)
    assert alert.time_ms == at(0, 13, 30)  # the midday block's own 90 min, whatever the last room
    assert alert.evidence["limit_min"] == 90.0
    assert "living" in alert.explanation and "offline" in alert.explanation
