"""Ground truth against delivery: malformed messages are refused for the stated reason, and no incident expects an
alert whose evidence never reaches the backend (band on the charger, device offline)."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sim_helpers import Directory

from firmware_sim.malformed import REASONS
from firmware_sim.models import DAY_MS, MINUTE_MS, Incident
from firmware_sim.recording import encode_line, encode_lines, read_recording, write_simulation
from firmware_sim.scenario import Simulation, generate
from gateway.contract import decode_message
from gateway.errors import DecodeError, Reason
from gateway.models import DeviceKind, Reading

Msg = tuple[int, str, bytes]
BEFORE_MS = 2 * 60_000
AFTER_MS = 5 * 60_000  # the evaluation's window around an incident (detection.evaluate)


@pytest.fixture(scope="module")
def mixed() -> tuple[Simulation, list[Msg]]:
    # Seed 12 has every malformed fault and a smoke fault the system cannot see (detector offline); seeds are
    # re-chosen when the planner draws change (issue 19 realism moved seed 29's, the calibrated afternoons seed 2's).
    sim = generate(homes=16, days=12, seed=12, mix="incident-rich:1,device-faulty:1", mattress_cadence_s=60)
    return sim, list(sim.messages())


def test_malformed_messages_are_refused_with_the_reason_in_the_ground_truth(
    mixed: tuple[Simulation, list[Msg]],
) -> None:
    sim, msgs = mixed
    assert {m.fault for m in sim.malformed} == set(REASONS)
    expected = {(m.topic, m.payload): m for m in sim.malformed}
    assert len(expected) == len(sim.malformed)
    directory = Directory(sim.registry)
    refused: Counter[str] = Counter()
    for received, topic, payload in msgs:
        bad = expected.get((topic, payload))
        if bad is None:
            decode_message(topic, payload, received_ms=received, directory=directory)  # every other message is fine
            continue
        with pytest.raises(DecodeError) as err:
            decode_message(topic, payload, received_ms=received, directory=directory)
        assert err.value.reason is Reason(bad.reason), (bad, err.value)
        assert bad.sent_ms <= received < bad.sent_ms + 10_000
        refused[bad.id] += 1
    assert refused == Counter({m.id: 1 for m in sim.malformed})  # each delivered exactly once
    assert all(m.site in directory.sites for m in sim.malformed)
    homes = {h.site: h.mix.value for h in sim.homes}
    assert {homes[m.site] for m in sim.malformed} == {"device-faulty"}


def test_non_utf8_payloads_survive_the_recording_and_the_ground_truth_file(tmp_path: Path) -> None:
    sim = generate(homes=4, days=8, seed=29, mix="device-faulty", mattress_cadence_s=60)
    odd = [m for m in sim.malformed if m.fault == "non_utf8"]
    assert odd
    written = write_simulation(sim, tmp_path)
    lines = written.recording.read_bytes().splitlines()
    assert all(json.loads(line) for line in lines)  # every line is valid JSON
    assert sum(b'"payload_b64"' in line for line in lines) == len(odd)
    assert list(read_recording(written.recording)) == list(sim.messages())
    truth = json.loads(written.ground_truth.read_text(encoding="utf-8"))
    assert truth["version"] == 2 and len(truth["malformed"]) == len(sim.malformed)
    by_id = {m["id"]: m for m in truth["malformed"]}
    for m in odd:
        assert base64.b64decode(by_id[m.id]["payload_b64"]) == m.payload
        with pytest.raises(UnicodeDecodeError):
            m.payload.decode()


def test_invalid_utf8_inside_a_string_is_dead_lettered() -> None:
    with pytest.raises(DecodeError) as err:
        decode_message("ec/v1/h0001/door/door1/event", b'{"event":"op\xffen","seq":1,"ts":1000}', received_ms=1000)
    assert err.value.reason is Reason.BAD_JSON
    with pytest.raises(DecodeError) as err:  # even in a field the decoder ignores: JSON on the wire is UTF-8
        decode_message("ec/v1/h0001/door/door1/event", b'{"event":"open","x":"\xff","seq":1,"ts":1000}', received_ms=1)
    assert err.value.reason is Reason.BAD_JSON and "UTF-8" in err.value.detail


def _is(kind: DeviceKind, event: str) -> Callable[[Reading], bool]:
    return lambda r: r.kind is kind and r.event == event


def _abnormal_hr(r: Reading) -> bool:
    hr = r.fields.get("hr")
    worn = r.fields.get("worn", r.fields.get("occupied"))
    return bool(worn) and isinstance(hr, int | float) and not 40 <= hr <= 130


TRIGGERS: dict[str, Callable[[Reading], bool]] = {
    "sos": _is(DeviceKind.WRISTBAND, "sos"),
    "fall": _is(DeviceKind.WRISTBAND, "fall"),
    "call_button": _is(DeviceKind.CALL_BUTTON, "press"),
    "smoke": _is(DeviceKind.SMOKE, "alarm"),
    "gas": _is(DeviceKind.GAS, "alarm"),
    "apnea": _is(DeviceKind.MATTRESS, "apnea"),
    "night_bed_exit": _is(DeviceKind.MATTRESS, "out_of_bed"),
    "night_door": _is(DeviceKind.DOOR, "open"),
    "out_not_back": _is(DeviceKind.DOOR, "open"),
    "device_fault": lambda r: r.kind in (DeviceKind.SMOKE, DeviceKind.GAS) and r.event == "fault",
    "tamper": lambda r: r.fields.get("tamper") is True,
    "vitals_critical": _abnormal_hr,
}
"""Alert type → the message without which the backend cannot raise it."""
EXACT = {"sos", "fall", "call_button", "smoke", "gas", "apnea", "night_door", "device_fault"}
"""Alert types whose evidence is one kind of event: undeliverable means not one of them arrives."""


def _check(incidents: list[Incident], readings: list[Reading]) -> tuple[int, int]:
    by_site: dict[str, list[Reading]] = {}
    for r in readings:
        by_site.setdefault(r.site, []).append(r)
    checked = undeliverable = 0
    for inc in incidents:
        near = [
            r for r in by_site.get(inc.site, []) if inc.start_ms - BEFORE_MS <= r.received_ms <= inc.end_ms + AFTER_MS
        ]
        for alert in inc.expect:
            if alert in TRIGGERS:
                assert any(TRIGGERS[alert](r) for r in near), (inc, alert)
                checked += 1
        for alert, why in inc.undeliverable:
            assert why and alert not in inc.expect
            undeliverable += 1
            if alert in EXACT:
                assert not any(TRIGGERS[alert](r) for r in near), (inc, alert, why)
    return checked, undeliverable


def test_every_expected_alert_has_its_evidence_in_the_recording(mixed: tuple[Simulation, list[Msg]]) -> None:
    sim, msgs = mixed
    readings = []
    for received, topic, payload in msgs:
        try:
            readings.append(decode_message(topic, payload, received_ms=received))
        except DecodeError:
            continue  # the malformed ones
    checked, undeliverable = _check(sim.ground_truth, readings)
    assert checked >= 10 and undeliverable >= 1
    assert any(a == "device_fault" for inc in sim.ground_truth for a, _ in inc.undeliverable)


@pytest.mark.parametrize(
    ("seed", "site", "kind", "alert"),
    [
        (29, "h0035", "sos_press", "sos"),  # the band is on the charger: nobody can press its SOS key
        (58, "h0017", "fire", "smoke"),  # a kitchen fire while the smoke detector is offline
    ],
)
def test_incidents_the_system_cannot_see_are_marked_undeliverable(seed: int, site: str, kind: str, alert: str) -> None:
    sim = generate(homes=40, days=28, seed=seed, mix="incident-rich", mattress_cadence_s=60)
    marked = [i for i in sim.ground_truth if i.site == site and i.type == kind and i.undeliverable]
    assert marked and marked[0].undeliverable[0][0] == alert and alert not in marked[0].expect
    readings = [decode_message(t, p, received_ms=r) for r, t, p in sim.messages(sites={site})]
    incidents = [i for i in sim.ground_truth if i.site == site]
    checked, undeliverable = _check(incidents, readings)
    assert undeliverable >= 1


def test_not_up_lasts_hours_past_the_usual_wake_time() -> None:
    # Counted from an early day's wake time, a not-up stay in bed could end 100 min after the usual time, before the
    # rule's margin (seed 2 had such an incident when the hours were counted from the day's wake time).
    sim = generate(homes=40, days=28, seed=2, mix="incident-rich", mattress_cadence_s=60)
    homes = {h.site: h.profile for h in sim.homes}
    stays = [i for i in sim.ground_truth if i.type == "not_up"]
    assert len(stays) >= 10
    for i in stays:
        day0 = sim.start_ms + (i.start_ms - sim.start_ms) // DAY_MS * DAY_MS
        past_usual = (i.end_ms - day0) / MINUTE_MS - homes[i.site].wake_min
        assert past_usual >= 150, (i, past_usual)


def test_batch_line_encoder_matches_the_single_one_on_odd_payloads() -> None:
    payloads = [b"\xffa", b'{"a":1}', b'\xf8\xfe{"seq"', b'{"q":"a\\\\b"}', b"ab\x01c", b'{"z":"\xc3\xa9"}', b"\xfe"]
    recv = list(range(len(payloads)))
    topics = ["ec/v1/h1/door/door1/event"] * len(payloads)
    assert encode_lines(recv, topics, payloads) == b"".join(map(encode_line, recv, topics, payloads))
