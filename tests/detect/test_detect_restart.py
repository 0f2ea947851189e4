"""Restart: state rebuilt from a snapshot plus stored history; the pending alert is raised once, on time."""

from __future__ import annotations

import pytest
from detect_helpers import MIN, RULES, Home, at, rd, registry

from detection.engine import Engine, InMemoryHistory
from detection.errors import SnapshotError
from detection.models import AlertType
from gateway.models import Reading


def _night_exit_stream() -> list[Reading]:
    out = [rd("mat1", at(0, 22, 0), event="in_bed"), rd("mat1", at(1, 2, 0), event="out_of_bed")]
    out += [rd("pir1", at(1, 2, m), count=0, window_s=600) for m in (10, 20, 30)]
    return out


def test_restart_mid_bed_exit_alerts_once_on_time() -> None:
    stream = _night_exit_stream()
    before = [r for r in stream if r.received_ms <= at(1, 2, 10)]
    after = [r for r in stream if r.received_ms > at(1, 2, 10)]
    first = Home()
    first.send(*before)
    snap = first.engine.snapshot()  # the process dies right after this

    # Restart at 02:35: history (e.g. InfluxDB) holds everything, including readings before the snapshot.
    engine, caught_up = Engine.restore(
        snap, history=InMemoryHistory(stream), now_ms=at(1, 2, 35), registry=registry(), config=RULES
    )
    assert [a for a in caught_up if a.type is AlertType.NIGHT_BED_EXIT] == []
    restarted = Home(engine)
    restarted.advance(at(1, 2, 39, 59))
    assert restarted.of(AlertType.NIGHT_BED_EXIT) == []
    restarted.advance(at(1, 2, 40))
    [alert] = restarted.of(AlertType.NIGHT_BED_EXIT)
    assert alert.time_ms == at(1, 2, 40) and "since 02:00" in alert.explanation
    restarted.advance(at(1, 5, 0))
    assert len(restarted.of(AlertType.NIGHT_BED_EXIT)) == 1

    # The engine that never restarted raises exactly the same alert.
    reference = Home()
    reference.send(*before, *after)
    reference.advance(at(1, 5, 0))
    assert [(a.time_ms, a.explanation) for a in reference.of(AlertType.NIGHT_BED_EXIT)] == [
        (alert.time_ms, alert.explanation)
    ]


def test_restart_after_the_due_time_raises_it_during_catch_up_with_its_event_time() -> None:
    stream = _night_exit_stream()
    first = Home()
    first.send(*[r for r in stream if r.received_ms <= at(1, 2, 10)])
    snap = first.engine.snapshot()
    engine, caught_up = Engine.restore(
        snap, history=InMemoryHistory(stream), now_ms=at(1, 3, 0), registry=registry(), config=RULES
    )
    exits = [a for a in caught_up if a.type is AlertType.NIGHT_BED_EXIT]
    assert [a.time_ms for a in exits] == [at(1, 2, 40)]
    assert [a for a in engine.advance(at(1, 4, 0)) if a.type is AlertType.NIGHT_BED_EXIT] == []


def test_history_before_the_snapshot_is_not_processed_twice() -> None:
    sos = rd("band1", at(1, 1, 0), event="sos")
    first = Home()
    first.send(rd("mat1", at(0, 22, 0), event="in_bed"), sos)
    snap = first.engine.snapshot()
    _, caught_up = Engine.restore(
        snap, history=InMemoryHistory([sos]), now_ms=at(1, 1, 5), registry=registry(), lookback_ms=60 * MIN
    )
    assert [a for a in caught_up if a.type is AlertType.SOS] == []


def test_bad_snapshot_is_a_typed_error() -> None:
    with pytest.raises(SnapshotError):
        Engine.restore(b"not a snapshot")


def test_live_readings_buffered_while_catching_up_count_even_at_the_home_s_first_millisecond() -> None:
    """A home first heard while the backend catches up: its readings are replayed with ``catch_up``. The registry
    starts watching its devices at the first reading's time (``last_seen_ms``, for their offline timers); a motion
    in the same millisecond as the gateway's status was taken for one already processed and dropped, so the home
    had no activity and no inactivity timer (tests/test_e2e_checkin.py failed ~2 in 30 under load: no check-in)."""
    t = at(1, 10, 0)
    engine = Engine(registry=registry(), config=RULES)
    engine.catch_up([rd("gw1", t, status="online"), rd("pir1", t, event="motion")])
    home = engine.homes["h1"]
    assert home.last_activity_ms == t
    assert ("h1", "inact", t + 45 * MIN) in engine.timers_of(home)


def test_a_device_silent_before_the_snapshot_has_its_replayed_readings_counted() -> None:
    """The same rule after a restart: a registered device that had not spoken before the snapshot was watched from
    the home's first reading, which is no reading of its own; its stored readings are replayed, not skipped."""
    first = Home()
    first.send(rd("mat1", at(1, 9, 0), occupied=False))
    snap = first.engine.snapshot()
    motion = rd("pir1", at(1, 9, 0), event="motion")  # stored in the same millisecond the snapshot was taken
    engine, _ = Engine.restore(
        snap, history=InMemoryHistory([motion]), now_ms=at(1, 9, 1), registry=registry(), config=RULES
    )
    assert engine.homes["h1"].last_activity_src == "motion/pir1 motion"
