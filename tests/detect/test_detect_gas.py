"""Gas detector (燃气报警器): a life-safety alarm like smoke; a test press is no alarm but keeps the device alive."""

from __future__ import annotations

from detect_helpers import DEVICES, MIN, Home, at, rd

from detection.homes import DeviceInfo
from detection.models import LIFE_SAFETY_TYPES, AlertType, Severity
from gateway.models import DeviceKind, MessageType, Reading

WITH_GAS = (*DEVICES, DeviceInfo(device="gas1", kind=DeviceKind.GAS, room="kitchen"))


def gas(t: int, event: str | None = None, **fields: object) -> Reading:
    mtype = MessageType.EVENT if event else MessageType.STATUS
    return Reading(
        site="h1",
        kind=DeviceKind.GAS,
        device="gas1",
        type=mtype,
        seq=t // 1000 % 100_000,
        ts_ms=t,
        received_ms=t,
        fields=dict(fields),
        event=event,  # type: ignore[arg-type]
    )


def test_gas_alarm_is_life_safety_on_the_first_message_and_clear_ends_it() -> None:
    home = Home(devices=WITH_GAS)
    home.send(rd("mat1", at(0, 23, 0), event="in_bed"))
    out = home.send(gas(at(0, 23, 30), "alarm", lel=22, valve_closed=True))
    [alert] = [a for a in out if a.type is AlertType.GAS]
    assert AlertType.GAS in LIFE_SAFETY_TYPES and alert.is_life_safety and alert.severity is Severity.CRITICAL
    assert (
        "22 %LEL" in alert.explanation and "closed the gas valve" in alert.explanation and "in bed" in alert.explanation
    )
    assert "燃气" in alert.explanation_zh
    assert alert.evidence == {"event": "alarm", "in_bed": True, "lel": 22, "valve_closed": True}
    home.send(gas(at(0, 23, 45), "clear"))
    assert len(home.of(AlertType.GAS, clears=True)) == 1


def test_a_fault_is_a_device_fault_and_not_a_gas_alarm() -> None:
    home = Home(devices=WITH_GAS)
    home.send(gas(at(0, 10, 0), "fault", code="F02"))
    assert home.of(AlertType.GAS) == []
    [fault] = home.of(AlertType.DEVICE_FAULT)
    assert fault.device == "gas1" and "F02" in fault.explanation


def test_a_test_press_raises_nothing_and_refreshes_liveness() -> None:
    # Event-driven like smoke: offline after two missed 6 h heartbeats + 5 min (12 h 05 min) of silence.
    home = Home(devices=WITH_GAS)
    t0 = at(0, 8, 0)
    limit = (12 * 60 + 5) * MIN
    home.send(gas(t0, battery=90))
    t_test = t0 + 10 * 60 * MIN
    out = home.send(gas(t_test, "test"))
    assert [a for a in out if a.device == "gas1"] == []
    home.advance(t0 + limit + 60 * MIN)  # past the limit counted from the heartbeat: still online
    assert [a for a in home.of(AlertType.DEVICE_OFFLINE) if a.device == "gas1"] == []
    home.advance(t_test + limit)  # the limit counted from the test press: offline
    [off] = [a for a in home.of(AlertType.DEVICE_OFFLINE) if a.device == "gas1"]
    assert off.time_ms == t_test + limit
    assert home.of(AlertType.GAS) == []


def test_repeated_alarms_are_never_lost() -> None:
    home = Home(devices=WITH_GAS)
    t = at(0, 12, 0)
    home.send(gas(t, "alarm", lel=10))
    home.send(gas(t + MIN, "alarm", lel=30))
    assert len(home.of(AlertType.GAS)) == 2  # each sounding reaches the alert layer (fusion counts, never drops)
