"""Fast-forward simulation: determinism, decodability, ground truth consistency, routine statistics."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import msgspec
import numpy as np
import pytest
from sim_helpers import Directory

from firmware_sim.models import DAY_MS, HOUR_MS, MINUTE_MS, TZ_OFFSET_MS
from firmware_sim.people import id_check_digit
from firmware_sim.recording import encode_line, encode_lines, read_recording, write_simulation
from firmware_sim.scenario import Simulation, generate
from gateway.contract import decode_message
from gateway.models import DeviceKind, Reading

Msg = tuple[int, str, bytes]


@pytest.fixture(scope="module")
def rich() -> tuple[Simulation, list[Msg]]:
    sim = generate(homes=12, days=10, seed=23, mix="incident-rich", mattress_cadence_s=30)
    return sim, list(sim.messages())


@pytest.fixture(scope="module")
def normal() -> tuple[Simulation, list[Msg]]:
    sim = generate(homes=8, days=8, seed=5, mix="normal", mattress_cadence_s=30)
    return sim, list(sim.messages())


def _decode(msgs: list[Msg]) -> list[Reading]:
    return [decode_message(t, p, received_ms=r) for r, t, p in msgs]


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    def blob(seed: int) -> bytes:
        sim = generate(homes=3, days=2, seed=seed, mix="normal:1,incident-rich:1,device-faulty:1")
        return b"".join(encode_lines(*batch) for batch in sim.batches())

    first = blob(9)
    assert first == blob(9)
    assert first != blob(10)


def test_written_files_are_reproducible_and_readable(tmp_path: Path) -> None:
    a = write_simulation(generate(homes=2, days=1, seed=4), tmp_path / "a")
    b = write_simulation(generate(homes=2, days=1, seed=4), tmp_path / "b")
    for x, y in ((a.recording, b.recording), (a.ground_truth, b.ground_truth), (a.registry, b.registry)):
        assert x.read_bytes() == y.read_bytes()
    lines = list(read_recording(a.recording))
    assert len(lines) == a.messages > 5000
    assert [encode_line(*m) for m in lines[:50]] == a.recording.read_bytes().splitlines(keepends=True)[:50]
    assert all(lines[i][0] <= lines[i + 1][0] for i in range(len(lines) - 1))


def test_every_message_decodes_against_the_registry(rich: tuple[Simulation, list[Msg]]) -> None:
    sim, msgs = rich
    directory = Directory(sim.registry)
    for r, t, p in msgs:
        decode_message(t, p, received_ms=r, directory=directory)
    assert all(msgs[i][0] <= msgs[i + 1][0] for i in range(len(msgs) - 1))


def test_faulty_delivery_duplicates_and_reorders() -> None:
    sim = generate(homes=2, days=2, seed=3, mix="device-faulty")
    readings = _decode(list(sim.messages()))
    by_device: dict[tuple[str, str], list[int]] = defaultdict(list)
    for rd in readings:
        if rd.seq is not None and rd.kind is not DeviceKind.GATEWAY:
            by_device[(rd.site, rd.device)].append(rd.seq)
    dups = sum(len(s) - len(set(s)) for s in by_device.values())
    reordered = sum(any(b < a for a, b in zip(s, s[1:], strict=False)) for s in by_device.values())
    gaps = sum(max(s) - len(set(s)) for s in by_device.values())
    assert dups > 0 and reordered > 0 and gaps > 0


def _site_readings(readings: list[Reading], site: str, a: int, b: int) -> list[Reading]:
    return [r for r in readings if r.site == site and a <= r.ts_ms < b and not r.clock_skewed]


def test_long_lie_has_no_activity(rich: tuple[Simulation, list[Msg]]) -> None:
    sim, msgs = rich
    readings = _decode(msgs)
    lies = [i for i in sim.ground_truth if i.type in ("long_lie", "night_bed_exit")]
    assert lies
    for inc in lies:
        a, b = inc.start_ms + 10_000, inc.end_ms - 10_000
        window = _site_readings(readings, inc.site, a, b)
        assert window, inc
        for r in window:
            assert r.kind is not DeviceKind.DOOR or r.type.value == "status", (inc, r)
            if r.kind is DeviceKind.MOTION and r.type.value == "telemetry" and r.ts_ms - 600_000 >= a:
                assert r.fields["count"] == 0, (inc, r)
            assert r.event != "motion", (inc, r)
            if r.kind is DeviceKind.MATTRESS and r.type.value == "telemetry":
                assert r.fields["occupied"] is False, (inc, r)
            assert r.event not in ("in_bed", "sos", "fall", "press"), (inc, r)
        steps = [r.fields["steps"] for r in window if r.kind is DeviceKind.WRISTBAND and "steps" in r.fields]
        if steps and inc.type == "long_lie":
            assert max(steps) == min(steps), inc


def test_incidents_show_up_in_the_messages(rich: tuple[Simulation, list[Msg]]) -> None:
    sim, msgs = rich
    readings = _decode(msgs)
    for inc in sim.ground_truth:
        near = [
            r
            for r in readings
            if r.site == inc.site and inc.start_ms - 60_000 <= r.received_ms <= inc.end_ms + 5 * MINUTE_MS
        ]
        events = {(r.kind.value, r.event) for r in near}
        if inc.type == "sos_press":
            assert ("wristband", "sos") in events, inc
        elif inc.type in ("call_button_press", "accidental_press"):
            assert ("call_button", "press") in events, inc
        elif inc.type == "fall_detected":
            assert ("wristband", "fall") in events, inc
        elif inc.type == "burnt_cooking":
            assert {("smoke", "alarm"), ("smoke", "silence"), ("smoke", "clear")} <= events, inc
        elif inc.type == "apnea":
            assert ("mattress", "apnea") in events, inc
        elif inc.type == "wandering":
            door = [r for r in near if r.kind is DeviceKind.DOOR and r.event == "open"]
            assert door and door[0].ts_ms <= inc.start_ms + 60_000, inc
        elif inc.type == "gateway_offline":
            wills = [r for r in near if r.kind is DeviceKind.GATEWAY and r.seq is None and not r.fields["online"]]
            assert wills and inc.start_ms < wills[0].received_ms < inc.start_ms + 2 * MINUTE_MS, inc
            inside = [r for r in near if inc.start_ms + 1000 <= r.received_ms < inc.end_ms and r.seq is not None]
            assert not inside, inc
        elif inc.type == "not_up":
            tel = [
                r
                for r in near
                if r.kind is DeviceKind.MATTRESS and r.type.value == "telemetry" and r.ts_ms < inc.end_ms - MINUTE_MS
            ]
            assert tel and all(r.fields["occupied"] for r in tel if r.ts_ms > inc.start_ms), inc
        assert inc.start_ms <= inc.end_ms
        assert set(inc.expect).isdisjoint(inc.forbid)


def _local_min(ms: int) -> float:
    return ((ms + TZ_OFFSET_MS) % DAY_MS) / MINUTE_MS


def test_wake_times_vary_within_plausible_bounds(normal: tuple[Simulation, list[Msg]]) -> None:
    sim, msgs = normal
    readings = [r for r in _decode(msgs) if r.kind is DeviceKind.MATTRESS and r.event in ("in_bed", "out_of_bed")]
    per_site: dict[str, list[Reading]] = defaultdict(list)
    for r in readings:
        per_site[r.site].append(r)
    for site, evs in per_site.items():
        evs.sort(key=lambda r: r.ts_ms)
        wakes: list[float] = []
        for i, r in enumerate(evs):
            nxt = evs[i + 1].ts_ms if i + 1 < len(evs) else r.ts_ms + DAY_MS
            m = _local_min(r.ts_ms)
            # Morning: leaving the bed for more than an hour between 04:00 and 11:00.
            if r.event == "out_of_bed" and 240 <= m <= 660 and nxt - r.ts_ms > HOUR_MS:
                wakes.append(m)
        assert len(wakes) >= 5, site
        assert 270 <= float(np.mean(wakes)) <= 600, (site, wakes)
        assert 3 <= float(np.std(wakes)) <= 90, (site, wakes)
    means = [np.mean([_local_min(r.ts_ms) for r in evs if r.event == "out_of_bed"]) for evs in per_site.values()]
    assert np.std(means) > 5  # elders differ from each other


def test_bed_occupied_at_night_and_heart_rate_lower_asleep(normal: tuple[Simulation, list[Msg]]) -> None:
    sim, msgs = normal
    readings = _decode(msgs)
    for spec in sim.homes:
        mat = [
            r for r in readings if r.site == spec.site and r.kind is DeviceKind.MATTRESS and r.type.value == "telemetry"
        ]
        incidents = [(i.start_ms - DAY_MS, i.end_ms + DAY_MS) for i in sim.ground_truth if i.site == spec.site]
        night = [r for r in mat if 60 <= _local_min(r.ts_ms) < 240 and not any(a <= r.ts_ms < b for a, b in incidents)]
        if len(night) < 200:
            continue
        occupied = sum(bool(r.fields["occupied"]) for r in night) / len(night)
        assert occupied > 0.85, (spec.site, occupied)
        asleep = [float(r.fields["hr"]) for r in night if "hr" in r.fields]
        band = [
            float(r.fields["hr"])
            for r in readings
            if r.site == spec.site
            and r.kind is DeviceKind.WRISTBAND
            and "hr" in r.fields
            and 8 * 60 <= _local_min(r.ts_ms) < 20 * 60
        ]
        assert band, spec.site
        assert np.mean(asleep) + 5 < np.mean(band), spec.site
        assert 40 < np.mean(asleep) < 80


def test_registry_is_well_formed() -> None:
    sim = generate(homes=100, days=1, seed=2)
    reg = json.loads(msgspec.json.encode(sim.registry))
    assert reg["version"] == 1 and len(reg["sites"]) == 100
    assert len(reg["streets"]) == 2
    per_grid: dict[str, int] = defaultdict(int)
    for site in reg["sites"]:
        per_grid[site["grid"]] += 1
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", site["site"]) and site["gateway"] == f"gw-{site['site']}"
        assert {d["kind"] for d in site["devices"]} == {
            "mattress",
            "wristband",
            "door",
            "smoke",
            "gas",
            "call_button",
            "motion",
        }
        for res in site["residents"]:
            idn = res["id_number"]
            assert len(idn) == 18 and idn[-1] == id_check_digit(idn[:17])
            assert re.fullmatch(r"1[3-9]\d{9}", res["phone"])
            assert res["categories"][0] in ("独居", "空巢") and 0 <= res["ability_level"] <= 4
    assert all(30 <= n <= 60 for n in per_grid.values()), per_grid
    roles = {w["role"] for w in reg["workers"]}
    assert roles == {"grid_worker", "community_duty"}
    grids = {g["id"] for g in reg["grids"]}
    assert {w["scope"] for w in reg["workers"] if w["role"] == "grid_worker"} == grids
