"""A gateway's buffer flushed after an outage: timers wait until the home's backlog has arrived.

A home gateway that lost its internet link keeps its devices' messages and sends them when it is back, a device
queue at a time (the door's, then the PIR's: not in event-time order), 50 ms apart. Each buffered reading is hours
old. A timer armed by the first of them (the mattress's 06:07 exit arms a 45-min silence limit) is long due by the
backend's clock, and used to fire before the next buffered reading, the 06:13 motion, was processed: an inactivity
page for a silence the rest of the backlog disproves (simulator seed 2, h0005, 2026-12-06).
"""

from __future__ import annotations

import msgspec
from detect_helpers import MIN, Home, at, rd

from detection.models import AlertType
from gateway.models import Reading


def _late(r: Reading, received: int) -> Reading:
    """The same reading, received by the backend at ``received`` (buffered by the gateway)."""
    return msgspec.structs.replace(r, received_ms=received)


def _flush(home: Home, readings: list[Reading], start: int) -> None:
    for i, r in enumerate(readings):
        home.send(_late(r, start + 50 * i))


def _empty_bed(home: Home, start: int, end: int) -> None:
    """The mattress, live, reports an empty bed every minute (the home is online; nobody lies down)."""
    for t in range(start, end, MIN):
        home.send(rd("mat1", t, occupied=False))


def test_a_flushed_backlog_is_read_whole_before_its_timers_fire() -> None:
    home = Home()
    home.send(rd("gw-h1", at(0, 4, 50), online=True), rd("mat1", at(0, 4, 55), occupied=True))
    home.send(rd("gw-h1", at(0, 5, 1), online=False))  # Last Will: the gateway is offline until 10:38
    back = at(0, 10, 38, 24)
    home.send(rd("gw-h1", back, online=True))
    buffered = [rd("mat1", at(0, 6, 7), event="out_of_bed")]
    buffered += [rd("pir1", at(0, 6, 13) + k * 6 * MIN, event="motion") for k in range(43)]  # 06:13 … 10:25
    _flush(home, buffered, back + 2_000)
    home.send(rd("pir1", at(0, 10, 40), event="motion"))  # live again
    _empty_bed(home, at(0, 10, 41), at(0, 12, 0))
    # The one inactivity alert is the live silence after 10:40, not the 06:07 one the backlog disproves.
    [alert] = home.of(AlertType.INACTIVITY)
    assert alert.time_ms == at(0, 10, 40) + 45 * MIN, alert.explanation
    assert "10:40" in alert.explanation


def test_a_gateway_that_keeps_sending_old_readings_cannot_hold_its_home_s_timers_for_ever() -> None:
    """A faulty (or hostile) gateway replaying old readings without end: the home's timers wait 10 min at most."""
    home = Home()
    home.send(rd("gw-h1", at(0, 7, 50), online=True), rd("pir1", at(0, 8, 0), event="motion"))
    # From 08:40 on the gateway sends, every 5 s, a door heartbeat stamped two hours earlier, besides live data.
    t = at(0, 8, 40)
    raised_at = None
    while t < at(0, 9, 30):
        out = home.send(_late(rd("door1", t - 2 * 60 * MIN, status=True, battery=80), t))
        if t % MIN == 0:
            out += home.send(rd("mat1", t, occupied=False))
        if raised_at is None and any(a.type is AlertType.INACTIVITY for a in out):
            raised_at = t
        t += 5_000
    # Due at 08:45 (45 min after the last motion), held while the old readings arrive, for 10 min at most; the
    # alert keeps its deadline as its time.
    [alert] = home.of(AlertType.INACTIVITY)
    assert raised_at is not None and at(0, 8, 45) < raised_at <= at(0, 8, 50) + 5_000
    assert alert.time_ms == at(0, 8, 45), alert.explanation


def test_a_device_clock_that_is_always_behind_is_still_read_at_the_arrival_time() -> None:
    """A PIR whose clock runs 10 min slow: after two whole windows of lags ≥ 10 min its readings count at arrival
    (the floor no longer climbs per message, so this takes up to an hour instead of two messages)."""
    home = Home()
    home.send(rd("gw-h1", at(0, 8, 0), online=True))
    slow = 10 * MIN
    for k in range(0, 25):
        t = at(0, 8, 0) + k * 5 * MIN
        home.send(_late(rd("pir1", t - slow, event="motion"), t))
    state = home.engine.homes["h1"]
    last = at(0, 8, 0) + 24 * 5 * MIN
    assert state.last_activity_ms == last  # 10:00, not the device's 09:50
    assert state.devices["pir1"].lag_floor_ms == slow
