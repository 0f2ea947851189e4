"""Round trip: every message kind the simulator encodes is accepted by the gateway's decoders."""

from __future__ import annotations

import re

import numpy as np

from firmware_sim.demo import demo_home_messages
from firmware_sim.people import id_check_digit, id_number, phone_number
from firmware_sim.wire import (
    WILL_PAYLOAD,
    HomeWire,
    encode_door_event,
    encode_gateway_online,
    encode_mattress_batch,
    encode_mattress_telemetry,
    encode_wristband_telemetry,
    gateway_online_payload,
    gateway_will,
    wristband_telemetry_payload,
)
from gateway.contract import decode_message

T0 = 1_772_380_800_000


def test_every_demo_message_decodes_and_covers_the_contract() -> None:
    seen: set[tuple[str, str]] = set()
    for msg in demo_home_messages(ts=T0):
        reading = decode_message(msg.topic, msg.payload, received_ms=T0 + 60_000)
        assert reading.site == "h0001"
        seen.add((reading.kind.value, reading.event or reading.type.value))
    expected = {
        ("gateway", "status"),
        ("mattress", "telemetry"),
        ("mattress", "in_bed"),
        ("mattress", "out_of_bed"),
        ("mattress", "apnea"),
        ("mattress", "status"),
        ("wristband", "telemetry"),
        ("wristband", "fall"),
        ("wristband", "sos"),
        ("wristband", "removed"),
        ("wristband", "worn"),
        ("wristband", "status"),
        ("door", "open"),
        ("door", "close"),
        ("door", "status"),
        ("smoke", "alarm"),
        ("smoke", "test"),
        ("smoke", "silence"),
        ("smoke", "clear"),
        ("smoke", "fault"),
        ("smoke", "status"),
        ("call_button", "press"),
        ("call_button", "cancel"),
        ("call_button", "status"),
        ("motion", "telemetry"),
        ("motion", "motion"),
        ("motion", "status"),
    }
    assert expected <= seen


def test_life_safety_events_are_flagged_by_the_backend() -> None:
    kinds = {
        (r.kind.value, r.event)
        for m in demo_home_messages(ts=T0)
        if (r := decode_message(m.topic, m.payload, received_ms=T0)).is_life_safety
    }
    assert kinds == {("wristband", "sos"), ("wristband", "fall"), ("smoke", "alarm"), ("call_button", "press")}


def test_last_will_decodes_as_offline_without_seq() -> None:
    will = gateway_will(site="h0001", gateway="gw-h0001")
    assert will.payload == WILL_PAYLOAD and will.retain
    reading = decode_message(will.topic, will.payload, received_ms=T0)
    assert reading.fields["online"] is False and reading.seq is None


def test_seq_is_per_device_and_strictly_increasing() -> None:
    w = HomeWire(site="h1", gateway="gw-h1")
    seqs = [
        decode_message(m.topic, m.payload, received_ms=T0).seq
        for m in (encode_door_event(**w.stamp("d1"), ts=T0, event="open") for _ in range(5))
    ]
    assert seqs == [1, 2, 3, 4, 5]
    assert w.next_seq("other") == 1


def test_mattress_batch_is_byte_identical_to_single_encoder() -> None:
    rng = np.random.default_rng(0)
    n = 500
    hr = (np.rint(rng.uniform(30, 120, n) * 10) / 10).tolist()
    rr = (np.rint(rng.uniform(5, 30, n) * 10) / 10).tolist()
    occ = (rng.random(n) < 0.7).tolist()
    mv = rng.integers(0, 100, n).tolist()
    ts = (T0 + np.arange(n) * 20_000).tolist()
    seqs = list(range(1, n + 1))
    batch = encode_mattress_batch(site="h1", device="m", seqs=seqs, ts=ts, occupied=occ, hr=hr, rr=rr, movement=mv)
    w = HomeWire(site="h1", gateway="gw-h1")
    for i in range(n):
        single = encode_mattress_telemetry(
            **w.stamp("m"),
            ts=ts[i],
            occupied=occ[i],
            hr=hr[i] if occ[i] else None,
            rr=rr[i] if occ[i] else None,
            movement=mv[i] if occ[i] else None,
        )
        assert single.payload == batch[i]


def test_id_numbers_and_phones_are_well_formed() -> None:
    assert id_check_digit("11010519491231002") == "X"
    number = id_number(birth_year=1940, month=1, day=1, serial=12, female=True)
    assert len(number) == 18 and number[:17].isdigit() and number[-1] == id_check_digit(number[:17])
    assert int(number[16]) % 2 == 0  # women have an even sequence digit
    rng = np.random.Generator(np.random.PCG64(1))
    for _ in range(50):
        assert re.fullmatch(r"1[3-9]\d{9}", phone_number(rng))


def test_hot_path_payloads_are_byte_identical_to_the_encoders() -> None:
    rng = np.random.default_rng(1)
    for i in range(300):
        worn = bool(i % 3)
        hr, spo2, skin = (float(np.rint(rng.uniform(lo, hi) * 10) / 10) for lo, hi in ((30, 200), (88, 100), (28, 37)))
        kw = {"seq": i + 1, "ts": T0 + i * 60_000, "steps": int(rng.integers(0, 9000)), "battery": int(i % 101)}
        slow = encode_wristband_telemetry(
            site="h1",
            device="b",
            worn=worn,
            hr=hr if worn else None,
            spo2=spo2 if worn else None,
            skin_temp=skin if worn else None,
            **kw,
        )
        assert wristband_telemetry_payload(worn=worn, hr=hr, spo2=spo2, skin_temp=skin, **kw) == slow.payload
        uptime = int(rng.integers(0, 10**7))
        gw = encode_gateway_online(site="h1", gateway="gw-h1", seq=i, ts=T0 + i, fw="gw-2.4.1", uptime_s=uptime)
        assert gateway_online_payload(seq=i, ts=T0 + i, fw="gw-2.4.1", uptime_s=uptime) == gw.payload
