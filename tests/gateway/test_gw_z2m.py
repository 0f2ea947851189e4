"""Zigbee2MQTT adapter on recorded payload shapes: edges per key, both SOS shapes, availability, bridge Last Will."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import z2m_fixtures as fx

from detection.config import DetectConfig
from detection.engine import Engine
from detection.homes import DeviceInfo, HomeRegistry, SiteInfo
from detection.models import AlertType, Severity
from gateway.dedupe import stream_seq
from gateway.errors import DecodeError, Reason
from gateway.models import DeviceKind, MessageType, Reading
from gateway.provisioning import SiteDevices, StaticDirectory
from gateway.z2m.adapter import Z2mAdapter, parse_state
from gateway.z2m.mapping import MappingError, load_table, parse_table

SITE = "h1"
NOW = 1_767_261_000_000


def adapter() -> Z2mAdapter:
    directory = StaticDirectory([SiteDevices(site=SITE, gateway="gw-h1", devices=dict(fx.KINDS))])
    a = Z2mAdapter(directory=directory)
    assert a.decode(f"z2m/{SITE}/bridge/devices", fx.bridge_devices(), received_ms=NOW, retained=True) == []
    return a


def send(a: Z2mAdapter, ieee: str, payload: bytes, *, t: int = NOW, retained: bool = False) -> list[Reading]:
    out = a.decode(f"z2m/{SITE}/{fx.name_of(ieee)}", payload, received_ms=t, retained=retained)
    errors = [r for r in out if isinstance(r, DecodeError)]
    assert errors == [], [str(e) for e in errors]
    return [r for r in out if isinstance(r, Reading)]


def events(readings: list[Reading]) -> list[str | None]:
    return [r.event for r in readings if r.type is MessageType.EVENT]


def test_the_table_loads_and_maps_every_model_to_a_contract_kind() -> None:
    table = load_table()
    assert {m.kind for m in table.models.values()} >= {
        DeviceKind.DOOR,
        DeviceKind.MOTION,
        DeviceKind.SMOKE,
        DeviceKind.GAS,
        DeviceKind.CALL_BUTTON,
    }
    with pytest.raises(MappingError):
        parse_table({"models": {"X": {"kind": "toaster"}}})


def test_contact_true_is_a_closed_door() -> None:
    # Regression for the classic inversion: Z2M's `contact: true` means the magnet is near, the door CLOSED.
    a = adapter()
    assert events(send(a, fx.TUYA_DOOR, fx.TUYA_DOOR_OPEN)) == []  # first snapshot: a baseline, not an edge
    closed = send(a, fx.TUYA_DOOR, fx.TUYA_DOOR_CLOSED)
    assert events(closed) == ["close"]
    assert closed[0].device == fx.TUYA_DOOR and closed[0].kind is DeviceKind.DOOR and closed[0].seq == 2
    assert events(send(a, fx.TUYA_DOOR, fx.TUYA_DOOR_OPEN)) == ["open"]


def test_a_snapshot_repeating_a_value_is_no_new_event_and_every_message_is_a_status() -> None:
    a = adapter()
    send(a, fx.TUYA_DOOR, fx.TUYA_DOOR_OPEN)
    out = send(a, fx.TUYA_DOOR, fx.TUYA_DOOR_OPEN)  # e.g. a battery report: the cached contact comes along
    assert events(out) == []
    [status] = [r for r in out if r.type is MessageType.STATUS]
    assert status.fields == {"battery": 100, "battery_v": 3.0, "tamper": False, "battery_low": False}
    assert status.time_ms == NOW


def test_smoke_test_press_is_no_alarm_and_smoke_true_is() -> None:
    a = adapter()
    send(a, fx.SMOKE, fx.SMOKE_QUIET)
    out = send(a, fx.SMOKE, fx.SMOKE_TEST)
    assert events(out) == ["test"] and not any(r.is_life_safety for r in out)
    assert events(send(a, fx.SMOKE, fx.SMOKE_QUIET)) == []
    alarm = send(a, fx.SMOKE, fx.SMOKE_ALARM)
    assert events(alarm) == ["alarm"] and alarm[0].is_life_safety
    assert events(send(a, fx.SMOKE, fx.SMOKE_QUIET)) == ["clear"]


def test_a_live_alarm_seen_first_is_never_held_back_but_a_retained_replay_is_not_news() -> None:
    a = adapter()
    assert events(send(a, fx.GAS, fx.GAS_ALARM, retained=True)) == []
    b = adapter()
    out = send(b, fx.GAS, fx.GAS_ALARM)
    assert events(out) == ["alarm"] and out[0].kind is DeviceKind.GAS and out[0].is_life_safety
    assert events(send(b, fx.GAS, fx.GAS_ALARM)) == []  # the cached level repeats: same alarm
    assert events(send(b, fx.GAS, fx.GAS_QUIET)) == ["clear"]


def test_pir_occupancy_rise_is_motion_and_the_synthesised_false_is_nothing() -> None:
    a = adapter()
    send(a, fx.PIR, fx.PIR_IDLE)
    assert events(send(a, fx.PIR, fx.PIR_MOTION)) == ["motion"]
    assert events(send(a, fx.PIR, fx.PIR_IDLE)) == []


def test_both_tuya_sos_shapes_press_and_empty_or_null_actions_are_ignored() -> None:
    a = adapter()
    out = send(a, fx.SOS, fx.SOS_EMERGENCY)
    assert events(out) == ["press"] and out[0].is_life_safety and out[0].kind is DeviceKind.CALL_BUTTON
    assert events(send(a, fx.SOS, fx.SOS_EMPTY)) == []
    assert events(send(a, fx.SOS2, fx.SOS2_NULL)) == []
    assert events(send(a, fx.SOS2, fx.SOS2_EMERGENCY)) == ["press"]
    assert events(send(a, fx.SOS2, fx.SOS2_EMERGENCY)) == ["press"]  # a transient: every press counts


def test_heiman_single_double_hold_press_and_off_is_quiet() -> None:
    a = adapter()
    for action in ("single", "double", "hold"):
        assert events(send(a, fx.HEIMAN, b'{"action":"%s","battery":90}' % action.encode())) == ["press"]
    assert events(send(a, fx.HEIMAN, b'{"action":"off","battery":90}')) == []
    out = a.decode(f"z2m/{SITE}/bedroom button", b'{"action":"triple"}', received_ms=NOW)
    assert [r.reason for r in out if isinstance(r, DecodeError)] == [Reason.OUT_OF_RANGE]


def test_latched_sos_presses_on_the_rise_only() -> None:
    a = adapter()
    assert events(send(a, fx.LATCHED, b'{"sos":true,"battery_low":false,"tamper":false}')) == ["press"]
    assert events(send(a, fx.LATCHED, b'{"sos":true,"battery_low":false,"tamper":false}')) == []
    assert events(send(a, fx.LATCHED, b'{"sos":false,"battery_low":false,"tamper":false}')) == []  # no cancel
    assert events(send(a, fx.LATCHED, b'{"sos":true,"battery_low":false,"tamper":false}')) == ["press"]


def test_a_rename_keeps_the_device_and_its_edges() -> None:
    a = adapter()
    send(a, fx.DOOR, b'{"contact":true,"battery":90}')
    renamed = fx.bridge_devices({fx.DOOR: "front door"})
    assert a.decode(f"z2m/{SITE}/bridge/devices", renamed, received_ms=NOW) == []
    out = a.decode(f"z2m/{SITE}/front door", b'{"contact":true,"battery":90}', received_ms=NOW)
    assert [(r.device, r.type) for r in out if isinstance(r, Reading)] == [(fx.DOOR, MessageType.STATUS)]
    old = a.decode(f"z2m/{SITE}/porte", b'{"contact":false}', received_ms=NOW)
    assert [r.reason for r in old if isinstance(r, DecodeError)] == [Reason.UNKNOWN_DEVICE]


def test_unknown_models_fields_devices_and_sites_are_dead_lettered_with_a_reason() -> None:
    a = adapter()
    out = a.decode(f"z2m/{SITE}/hue", b'{"state":"ON"}', received_ms=NOW)
    assert [(type(r), getattr(r, "reason", None)) for r in out] == [(DecodeError, Reason.UNKNOWN_MODEL)]
    first = a.decode(f"z2m/{SITE}/porte", b'{"contact":true,"vibration":true}', received_ms=NOW)
    assert [r.reason for r in first if isinstance(r, DecodeError)] == [Reason.UNKNOWN_FIELD]
    assert any(isinstance(r, Reading) for r in first)  # the known keys still count
    again = a.decode(f"z2m/{SITE}/porte", b'{"contact":true,"vibration":true}', received_ms=NOW)
    assert not any(isinstance(r, DecodeError) for r in again)  # recorded once per device and key
    stranger = a.decode("z2m/nobody/porte", b'{"contact":true}', received_ms=NOW)
    assert [r.reason for r in stranger if isinstance(r, DecodeError)] == [Reason.UNKNOWN_SITE]
    for payload, reason in ((b"[1,2]", Reason.BAD_SCHEMA), (b"{", Reason.BAD_JSON)):
        out = a.decode(f"z2m/{SITE}/porte", payload, received_ms=NOW)
        assert [r.reason for r in out if isinstance(r, DecodeError)] == [reason]
    bad_list = a.decode(f"z2m/{SITE}/bridge/devices", b'{"not":"a list"}', received_ms=NOW)
    assert [r.reason for r in bad_list if isinstance(r, DecodeError)] == [Reason.BAD_SCHEMA]


def test_a_device_registered_as_another_kind_is_refused() -> None:
    kinds = {**fx.KINDS, fx.SMOKE: DeviceKind.GAS}
    a = Z2mAdapter(directory=StaticDirectory([SiteDevices(site=SITE, gateway="gw", devices=kinds)]))
    a.decode(f"z2m/{SITE}/bridge/devices", fx.bridge_devices(), received_ms=NOW)
    out = a.decode(f"z2m/{SITE}/sens_smoke1", fx.SMOKE_ALARM, received_ms=NOW)
    assert [r.reason for r in out if isinstance(r, DecodeError)] == [Reason.KIND_MISMATCH]


@pytest.mark.parametrize("payload", [b'{"state":"offline"}', b"offline"])
def test_bridge_state_in_both_forms_is_the_home_gateways_status(payload: bytes) -> None:
    a = adapter()
    [r] = a.decode(f"z2m/{SITE}/bridge/state", payload, received_ms=NOW, retained=True)
    assert isinstance(r, Reading)
    assert (r.kind, r.type, r.fields) == (DeviceKind.GATEWAY, MessageType.STATUS, {"online": False})
    [on] = a.decode(f"z2m/{SITE}/bridge/state", payload.replace(b"offline", b"online"), received_ms=NOW)
    assert isinstance(on, Reading) and on.fields == {"online": True}


def test_availability_in_both_forms() -> None:
    a = adapter()
    assert a.decode(f"z2m/{SITE}/porte/availability", b'{"state":"offline"}', received_ms=NOW) == []
    assert a.availability(SITE, fx.DOOR) == "offline"
    assert a.decode(f"z2m/{SITE}/porte/availability", b"online", received_ms=NOW) == []
    assert a.availability(SITE, fx.DOOR) == "online"
    [bad] = a.decode(f"z2m/{SITE}/porte/availability", b'{"state":"maybe"}', received_ms=NOW)
    assert isinstance(bad, DecodeError) and bad.reason is Reason.BAD_SCHEMA
    assert parse_state("t", b' {"state": "online"} ') == "online"


def test_informational_bridge_topics_and_commands_give_nothing() -> None:
    a = adapter()
    for rest in ("bridge/info", "bridge/logging", "bridge/event", "porte/set", "0x847127fffe0542eb/action"):
        assert a.decode(f"z2m/{SITE}/{rest}", b'{"x":1}', received_ms=NOW) == [], rest
    [bad] = a.decode(f"z2m/{SITE}/bridge/whatever", b"{}", received_ms=NOW)
    assert isinstance(bad, DecodeError) and bad.reason is Reason.BAD_TOPIC


def engine_home() -> Engine:
    devices = tuple(DeviceInfo(device=ieee, kind=kind, room="kitchen") for ieee, kind in fx.KINDS.items())
    registry = HomeRegistry({SITE: SiteInfo(site=SITE, gateway="z2m", devices=devices, solitary=True)})
    return Engine(registry=registry, config=DetectConfig(checkin_window_s=0))


def test_smoke_test_press_raises_nothing_and_refreshes_liveness_in_the_engine() -> None:
    a, engine = adapter(), engine_home()
    t0 = NOW
    for r in send(a, fx.SMOKE, fx.SMOKE_QUIET, t=t0):
        engine.process(r)
    t_test = t0 + 10 * 3600_000
    alerts = [x for r in send(a, fx.SMOKE, fx.SMOKE_TEST, t=t_test) for x in engine.process(r)]
    assert [x for x in alerts if x.device == fx.SMOKE] == []
    limit = (12 * 60 + 5) * 60_000  # event-driven smoke detector: two 6 h heartbeats + 5 min
    early = engine.advance(t0 + limit + 3600_000)
    assert [x for x in early if x.device == fx.SMOKE] == []  # counted from the test press, not the first message
    late = engine.advance(t_test + limit)
    assert [(x.type, x.device) for x in late if x.device == fx.SMOKE] == [(AlertType.DEVICE_OFFLINE, fx.SMOKE)]


def test_bridge_last_will_raises_one_site_offline_incident() -> None:
    a, engine = adapter(), engine_home()
    for r in send(a, fx.DOOR, b'{"contact":true,"battery":90}'):
        engine.process(r)
    alerts = []
    for r in a.decode(f"z2m/{SITE}/bridge/state", b'{"state":"offline"}', received_ms=NOW + 60_000):
        assert isinstance(r, Reading)
        alerts += engine.process(r)
    alerts += engine.advance(NOW + 6 * 3600_000)
    site_off = [x for x in alerts if x.type is AlertType.SITE_OFFLINE and not x.clears]
    # One incident: paged after the reboot grace (WARNING), escalated later for a solitary elder (same incident).
    assert [x.severity for x in site_off] == [Severity.WARNING, Severity.CRITICAL]
    assert "last will" in site_off[0].explanation and site_off[1].evidence.get("escalated") is True
    assert [x for x in alerts if x.type is AlertType.DEVICE_OFFLINE] == []  # muted by the incident
    back = [
        x
        for r in a.decode(f"z2m/{SITE}/bridge/state", b"online", received_ms=NOW + 7 * 3600_000)
        if isinstance(r, Reading)
        for x in engine.process(r)
    ]
    assert [(x.type, x.clears) for x in back] == [(AlertType.SITE_OFFLINE, True)]


z2m_topics = st.sampled_from(
    [f"z2m/{SITE}/{n}" for n in ("porte", "sens_smoke1", "kitchen/gas", "pendant", "hue", "nobody")]
    + [f"z2m/{SITE}/bridge/{b}" for b in ("state", "devices", "event", "x")]
    + [f"z2m/{SITE}/porte/availability", "z2m/", "z2m//x", f"z2m/{SITE}"]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
keys = st.sampled_from(["contact", "smoke", "gas", "test", "sos", "action", "battery", "voltage", "tamper", "x"])


@given(
    topic=z2m_topics,
    payload=st.binary(max_size=64)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.dictionaries(keys, json_values, max_size=6).map(lambda v: json.dumps(v).encode()),
)
def test_whatever_arrives_the_adapter_returns_readings_or_reasons(topic: str, payload: bytes) -> None:
    a = adapter()
    for r in a.decode(topic, payload, received_ms=NOW):
        assert isinstance(r, Reading | DecodeError)
        if isinstance(r, DecodeError):
            assert r.reason in Reason and r.detail


def engine_alerts(a: Z2mAdapter, engine: Engine, ieee: str, payload: bytes, t: int) -> list[tuple[AlertType, bool]]:
    return [(x.type, x.clears) for r in send(a, ieee, payload, t=t) for x in engine.process(r) if x.device == ieee]


def test_a_device_that_only_reports_battery_low_raises_low_battery_and_clears_it() -> None:
    # Feibit SEB01ZB (IAS zone: `sos`, `battery_low`, `tamper`) reports no percentage at all.
    a, engine = adapter(), engine_home()
    assert engine_alerts(a, engine, fx.LATCHED, fx.LATCHED_OK, NOW) == []
    low = engine_alerts(a, engine, fx.LATCHED, fx.LATCHED_BATTERY_LOW, NOW + 60_000)
    assert low == [(AlertType.LOW_BATTERY, False)]
    again = engine_alerts(a, engine, fx.LATCHED, fx.LATCHED_BATTERY_LOW, NOW + 120_000)
    assert again == []  # the cached flag repeats: the same condition
    back = engine_alerts(a, engine, fx.LATCHED, fx.LATCHED_OK, NOW + 180_000)
    assert back == [(AlertType.LOW_BATTERY, True)]


def test_a_gas_detector_test_press_is_no_alarm_and_no_sign_of_the_elder() -> None:
    # Decision (docs/devices.md): the research note calls `test: true` a non-alarm proving the device works and says
    # nothing of the elder; testers, installers and self-tests press it too, so it must not hide an inactivity.
    a, engine = adapter(), engine_home()
    for r in send(a, fx.DOOR, b'{"contact":true,"battery":90}', t=NOW) + send(a, fx.GAS, fx.GAS_QUIET, t=NOW):
        engine.process(r)
    closed = send(a, fx.DOOR, b'{"contact":false,"battery":90}', t=NOW + 60_000)
    for r in closed:
        engine.process(r)
    home = engine.homes[SITE]
    assert home.last_activity_ms == NOW + 60_000
    later = NOW + 4 * 3600_000 + 5 * 60_000
    out = send(a, fx.GAS, fx.GAS_TEST, t=later)
    assert events(out) == ["test"] and not any(r.is_life_safety for r in out)
    raised = [x for r in out for x in engine.process(r)]
    assert [x for x in raised if x.device == fx.GAS] == []
    # Four quiet hours after the door (a new home: the 4 h backstop): the inactivity rule fires; the test press did
    # not hide it.
    assert AlertType.INACTIVITY in {x.type for x in raised}, raised
    assert home.last_activity_ms == NOW + 60_000 and home.last_activity_src.startswith("door/")
    assert home.devices[fx.GAS].last_seen_ms == later  # but it keeps the detector alive


def test_tuya_smoke_without_a_percentage_alarms_and_its_battery_low_pages() -> None:
    a, engine = adapter(), engine_home()
    assert engine_alerts(a, engine, fx.TUYA_SMOKE, fx.TUYA_SMOKE_QUIET, NOW) == []
    assert engine_alerts(a, engine, fx.TUYA_SMOKE, fx.TUYA_SMOKE_BATTERY_LOW, NOW + 60_000) == [
        (AlertType.LOW_BATTERY, False)
    ]
    alarm = send(a, fx.TUYA_SMOKE, fx.TUYA_SMOKE_ALARM, t=NOW + 120_000)
    assert events(alarm) == ["alarm"] and alarm[0].is_life_safety and alarm[0].kind is DeviceKind.SMOKE
    assert events(send(a, fx.TUYA_SMOKE, fx.TUYA_SMOKE_QUIET, t=NOW + 180_000)) == ["clear"]


def test_heiman_gas_sensor_alarms_and_clears() -> None:
    a = adapter()
    assert events(send(a, fx.HEIMAN_GAS, fx.HEIMAN_GAS_QUIET)) == []
    alarm = send(a, fx.HEIMAN_GAS, fx.HEIMAN_GAS_ALARM)
    assert events(alarm) == ["alarm"] and alarm[0].kind is DeviceKind.GAS and alarm[0].is_life_safety
    assert events(send(a, fx.HEIMAN_GAS, fx.HEIMAN_GAS_ALARM)) == []
    assert events(send(a, fx.HEIMAN_GAS, fx.HEIMAN_GAS_QUIET)) == ["clear"]


def test_heiman_remote_sos_key_is_a_call_and_its_arming_keys_are_nothing() -> None:
    a = adapter()
    out = send(a, fx.HEIMAN_REMOTE, fx.HEIMAN_REMOTE_SOS)
    assert events(out) == ["press"] and out[0].kind is DeviceKind.CALL_BUTTON and out[0].is_life_safety
    assert events(send(a, fx.HEIMAN_REMOTE, fx.HEIMAN_REMOTE_ARM)) == []  # no dead letter either (send checks)


@pytest.mark.parametrize(
    ("ieee", "idle", "active"),
    [
        (fx.XIAOMI_PIR, fx.XIAOMI_PIR_IDLE, fx.XIAOMI_PIR_MOTION),
        (fx.HEIMAN_PIR, fx.HEIMAN_PIR_IDLE, fx.HEIMAN_PIR_MOTION),
        (fx.MMWAVE, fx.MMWAVE_EMPTY, fx.MMWAVE_PRESENT),
        (fx.FP1, fx.FP1_LEFT, fx.FP1_APPROACH),
    ],
)
def test_pir_and_mmwave_presence_rises_are_motion_and_repeats_or_falls_are_nothing(
    ieee: str, idle: bytes, active: bytes
) -> None:
    a = adapter()
    assert events(send(a, ieee, idle)) == []
    moved = send(a, ieee, active)
    assert events(moved) == ["motion"] and moved[0].kind is DeviceKind.MOTION
    assert events(send(a, ieee, active)) == []  # a snapshot repeating presence (e.g. target distance changed)
    assert events(send(a, ieee, idle)) == []


def test_fp1_presence_events_repeat_presence_and_raise_nothing_more() -> None:
    a = adapter()
    send(a, fx.FP1, fx.FP1_LEFT)
    assert events(send(a, fx.FP1, fx.FP1_APPROACH)) == ["motion"]
    assert events(send(a, fx.FP1, fx.FP1_AWAY)) == []  # presence_event changed, presence did not


def test_heiman_button_under_its_current_converter_model_name() -> None:
    table = load_table()
    assert table.models["HS1EB/HS1EB-E"].actions == table.models["HS1EB"].actions


def test_a_run_of_door_events_is_the_persons_rhythm_not_heartbeats() -> None:
    # Each Z2M state message that carries an event (a door opened) was caused by the person. Counting it as a
    # heartbeat taught the offline rule a 2-minute "healthy gap" and paged a healthy door 15 minutes after the
    # last opening (the storm that once raised 991 alerts a month on a real home, docs/detection.md).
    a, engine = adapter(), engine_home()
    t = NOW
    for r in send(a, fx.TUYA_DOOR, fx.TUYA_DOOR_CLOSED, t=t):
        engine.process(r)
    for k in range(1, 13):
        t = NOW + k * 120_000
        payload = fx.TUYA_DOOR_OPEN if k % 2 else fx.TUYA_DOOR_CLOSED
        out = send(a, fx.TUYA_DOOR, payload, t=t)
        assert events(out) == ["open" if k % 2 else "close"]
        assert [r.type for r in out] == [MessageType.EVENT]  # no status: battery, tamper... did not change
        for r in out:
            engine.process(r)
    later = engine.advance(t + 3 * 3600_000)
    assert [x for x in later if x.type is AlertType.DEVICE_OFFLINE and x.device == fx.TUYA_DOOR] == []
    # A report without an event (battery, link quality) is still a heartbeat with its status.
    report = send(a, fx.TUYA_DOOR, fx.TUYA_DOOR_CLOSED.replace(b'"battery":100', b'"battery":99'), t=t + 3600_000)
    assert [(r.type, r.fields.get("battery")) for r in report] == [(MessageType.STATUS, 99)]
    # A status change arriving with an event is not lost.
    both = send(a, fx.TUYA_DOOR, fx.TUYA_DOOR_OPEN.replace(b'"tamper":false', b'"tamper":true'), t=t + 7200_000)
    assert [(r.type, r.fields.get("tamper")) for r in both] == [(MessageType.EVENT, None), (MessageType.STATUS, True)]


# --- bed strap and fall radars (issue 16, step 4) -------------------------------------------------------------------


def test_bed_strap_occupancy_is_in_and_out_of_bed_and_its_periodic_reports_are_heartbeats() -> None:
    a = adapter()
    assert events(send(a, fx.BED_STRAP, fx.BED_EMPTY)) == []  # first snapshot: the baseline
    lay = send(a, fx.BED_STRAP, fx.BED_IN)
    assert events(lay) == ["in_bed"] and lay[0].kind is DeviceKind.MATTRESS  # polarity: true = someone on it
    later = send(a, fx.BED_STRAP, fx.BED_IN_5MIN)  # work_state / pressure changed, occupancy did not
    assert events(later) == [] and [r.type for r in later] == [MessageType.STATUS]
    assert events(send(a, fx.BED_STRAP, fx.BED_EMPTY)) == ["out_of_bed"]


@pytest.mark.parametrize(
    ("ieee", "quiet", "pre", "fall"),
    [
        (fx.FALL_RADAR, fx.FALL_RADAR_NORMAL, fx.FALL_RADAR_WARNING, fx.FALL_RADAR_ALARM),
        (fx.TUYA_FALL_RADAR, fx.TUYA_RADAR_QUIET, fx.TUYA_RADAR_MAYBE, fx.TUYA_RADAR_FALL),
    ],
)
def test_radar_fall_state_is_one_fall_event_and_its_pre_alarm_is_none(
    ieee: str, quiet: bytes, pre: bytes, fall: bytes
) -> None:
    a = adapter()
    assert events(send(a, ieee, quiet)) == []
    assert events(send(a, ieee, pre)) == []  # the radar's own "maybe": it confirms or drops it itself
    fell = send(a, ieee, fall)
    assert events(fell) == ["fall"] and fell[0].kind is DeviceKind.MOTION and fell[0].is_life_safety
    assert events(send(a, ieee, fall)) == []  # the snapshot repeating the fall state is not a second fall
    assert events(send(a, ieee, quiet)) == []


def test_a_live_radar_fall_seen_first_is_never_held_back() -> None:
    a = adapter()
    assert events(send(a, fx.FALL_RADAR, fx.FALL_RADAR_ALARM)) == ["fall"]  # e.g. right after a backend restart


def test_a_radar_fall_raises_one_critical_fall_alert_in_the_engine() -> None:
    a, engine = adapter(), engine_home()
    for r in send(a, fx.FALL_RADAR, fx.FALL_RADAR_NORMAL):
        engine.process(r)
    alerts = [x for r in send(a, fx.FALL_RADAR, fx.FALL_RADAR_ALARM, t=NOW + 5000) for x in engine.process(r)]
    falls = [x for x in alerts if x.type is AlertType.FALL]
    assert [(x.severity, x.device) for x in falls] == [(Severity.CRITICAL, fx.FALL_RADAR)]
    assert "radar" in falls[0].explanation.lower() and "雷达" in falls[0].explanation_zh


def test_a_name_the_transport_cannot_carry_is_dead_lettered_with_its_reason_once() -> None:
    """The clustered mode passes a check of friendly names: a name whose topic nats-server refuses (a space) or does
    not route (a ``/``) is refused when ``bridge/devices`` names it, so its silence is never unexplained."""

    def problem(name: str) -> str | None:
        return "has a space" if " " in name else None

    directory = StaticDirectory([SiteDevices(site=SITE, gateway="gw-h1", devices=dict(fx.KINDS))])
    a = Z2mAdapter(directory=directory, name_problem=problem)
    out = a.decode(f"z2m/{SITE}/bridge/devices", fx.bridge_devices(), received_ms=NOW, retained=True)
    refused = [r for r in out if isinstance(r, DecodeError)]
    spaced = sorted(name for name, _, _ in fx._NAMES.values() if " " in name)
    assert sorted(r.detail.split("'")[1] for r in refused) == spaced
    assert {r.reason for r in refused} == {Reason.BAD_TOPIC}
    assert all("has a space" in r.detail and "rename" in r.detail for r in refused)
    assert all(r.topic == f"z2m/{SITE}/bridge/devices" for r in refused)
    # Z2M republishes the list on every change: the same names are not reported again, a new one is.
    again = a.decode(f"z2m/{SITE}/bridge/devices", fx.bridge_devices(), received_ms=NOW, retained=False)
    assert again == []
    renamed = a.decode(f"z2m/{SITE}/bridge/devices", fx.bridge_devices({fx.TUYA_DOOR: "front door"}), received_ms=NOW)
    assert [r.detail.split("'")[1] for r in renamed if isinstance(r, DecodeError)] == ["front door"]
    assert send(a, fx.SOS, fx.SOS_EMERGENCY)  # the other devices work as before


def test_a_homes_names_restored_elsewhere_decode_its_states_as_after_a_restart() -> None:
    """The clustered mode's next owner starts from the names the last one kept (``device_names``): the first state
    is a baseline, as after an embedded restart; a list decoded since is reported once by ``take_changed``."""
    a = adapter()
    assert a.take_changed() == {SITE} and a.take_changed() == set()
    b = Z2mAdapter(directory=StaticDirectory([SiteDevices(site=SITE, gateway="gw-h1", devices=dict(fx.KINDS))]))
    b.restore_names(SITE, a.device_names(SITE))
    assert b.device_names(SITE) == a.device_names(SITE)
    assert events(send(b, fx.TUYA_DOOR, fx.TUYA_DOOR_CLOSED)) == []  # a baseline (a status reading only)
    assert events(send(b, fx.TUYA_DOOR, fx.TUYA_DOOR_OPEN)) == ["open"]
    b.restore_names(SITE, b"not json")  # a damaged entry changes nothing
    assert events(send(b, fx.TUYA_DOOR, fx.TUYA_DOOR_CLOSED)) == ["close"]


def test_stream_numbered_readings_take_their_seq_from_the_message_so_a_copy_decoded_elsewhere_matches() -> None:
    """The clustered mode's adapter numbers a device's readings by the message's stream sequence and their place
    in it: a copy decoded by another owner gets the same ``seq`` (the same InfluxDB point, a dedupe hit)."""
    directory = StaticDirectory([SiteDevices(site=SITE, gateway="gw-h1", devices=dict(fx.KINDS))])
    a = Z2mAdapter(directory=directory, stream_numbered=True)
    a.decode(f"z2m/{SITE}/bridge/devices", fx.bridge_devices(), received_ms=NOW, mid=3)
    topic = f"z2m/{SITE}/{fx.name_of(fx.SOS)}"
    first = [r for r in a.decode(topic, fx.SOS_EMERGENCY, received_ms=NOW, mid=40) if isinstance(r, Reading)]
    assert [(r.event, r.seq) for r in first] == [("press", stream_seq(40, 0)), (None, stream_seq(40, 1))]
    b = Z2mAdapter(directory=directory, stream_numbered=True)
    b.restore_names(SITE, a.device_names(SITE))
    copy = [r for r in b.decode(topic, fx.SOS_EMERGENCY, received_ms=NOW, mid=40) if isinstance(r, Reading)]
    assert copy == first
    later = [r for r in b.decode(topic, fx.SOS_EMERGENCY, received_ms=NOW, mid=41) if isinstance(r, Reading)]
    assert [r.seq for r in later] == [stream_seq(41, 0)]
    # Without the message's stream sequence it cannot number: a refusal, never a guess.
    assert [type(r) for r in b.decode(topic, fx.SOS_EMERGENCY, received_ms=NOW)] == [DecodeError]


def test_the_embedded_adapter_still_counts_each_devices_readings_from_one() -> None:
    a = adapter()
    assert [r.seq for r in send(a, fx.SOS, fx.SOS_EMERGENCY)] == [1, 2]
    assert [r.seq for r in send(a, fx.SOS, fx.SOS_EMERGENCY)] == [3]
