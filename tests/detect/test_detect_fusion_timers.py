"""Fusion of alerts into incidents, and the event-time timer heap."""

from __future__ import annotations

from detect_helpers import MIN, at

from detection.fusion import Fusion
from detection.models import Alert, AlertType, Severity
from detection.timers import TimerQueue


def _a(t: int, type_: AlertType, sev: Severity = Severity.WARNING, **kw: object) -> Alert:
    return Alert(site="h1", type=type_, severity=sev, time_ms=t, explanation="x", explanation_zh="x", **kw)  # type: ignore[arg-type]


def test_duplicates_merge_and_two_conditions_escalate() -> None:
    f = Fusion()
    t = at(1, 2, 40)
    first = f.add(_a(t, AlertType.NIGHT_BED_EXIT))
    assert first.action == "opened" and first.notify
    dup = f.add(_a(t + MIN, AlertType.NIGHT_BED_EXIT))
    assert dup.action == "duplicate" and not dup.notify and dup.incident == first.incident
    esc = f.add(_a(t + 60 * MIN, AlertType.NOT_UP))
    assert esc.action == "escalated" and esc.severity is Severity.CRITICAL and esc.notify
    device = f.add(_a(t, AlertType.LOW_BATTERY, Severity.INFO, device="smoke1"))
    assert device.incident != first.incident


def test_repeated_smoke_alarm_pages_once_but_a_later_one_pages_again() -> None:
    f = Fusion()
    t = at(0, 12, 0)
    notified = [f.add(_a(t + k * MIN, AlertType.SMOKE, Severity.CRITICAL, device="smoke1")).notify for k in range(20)]
    assert notified == [True] + [False] * 19
    assert f.add(_a(t + 5 * 60 * MIN, AlertType.SMOKE, Severity.CRITICAL, device="smoke1")).action == "opened"


def test_timer_queue_replaces_cancels_and_pops_in_order() -> None:
    q = TimerQueue()
    q.schedule("a", "x", 300)
    q.schedule("b", "x", 100)
    q.schedule("a", "x", 200)  # replaces 300
    q.schedule("c", "y", 150)
    q.cancel("c", "y")
    assert len(q) == 2 and q.next_due() == 100
    assert q.pop_due(250) == [(100, "b", "x"), (200, "a", "x")]
    assert q.pop_due(10_000) == [] and len(q) == 0


def test_timer_queue_compacts_stale_entries() -> None:
    q = TimerQueue()
    for k in range(5000):
        q.schedule("a", "x", k)
    assert len(q) == 1 and len(q._heap) < 5000
    assert q.pop_due(10**9) == [(4999, "a", "x")]


def test_a_flapping_device_notifies_once_a_day_and_life_safety_is_untouched() -> None:
    fusion = Fusion()

    def offline(t: int, *, clears: bool = False) -> bool:
        a = Alert(
            site="h1",
            type=AlertType.DEVICE_OFFLINE,
            severity=Severity.INFO if clears else Severity.WARNING,
            time_ms=t,
            explanation="x",
            explanation_zh="x",
            device="door1",
            clears=clears,
        )
        return fusion.add(a).notify

    # down, back, down again three hours later, ... : one notification a day
    assert offline(at(0, 1, 0)) is True
    assert offline(at(0, 2, 0), clears=True) is False
    assert offline(at(0, 5, 0)) is False
    assert offline(at(0, 6, 0), clears=True) is False
    assert offline(at(1, 1, 0)) is True  # a day after the last notification
    sos = [
        Alert(
            site="h1",
            type=AlertType.SOS,
            severity=Severity.CRITICAL,
            time_ms=at(1, 1, k),
            explanation="s",
            explanation_zh="s",
        )
        for k in (1, 40)
    ]
    assert [fusion.add(a).notify for a in sos] == [True, True]
