"""Snapshots taken in slices: the same state as a blocking snapshot, whatever runs between the slices; crash-safe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from detect_helpers import BASE, DAY, MIN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import detection.snapshot
from detection.baseline import Baseline
from detection.engine import Engine, InMemoryHistory
from detection.errors import SnapshotError
from detection.evaluate import simulated
from detection.homes import HomeRegistry
from detection.snapshot import SnapshotCapture, _array_header, load_snapshot, snapshot_watermark
from detection.state import EngineSnapshot, HomeState
from eldercare.backend import snapshot_chunks, write_atomically
from gateway.contract import decode_message
from gateway.errors import DecodeError
from gateway.models import Reading


@dataclass(frozen=True)
class Scenario:
    """Decoded readings of a few simulated homes over a few days."""

    registry: HomeRegistry
    readings: list[Reading]
    end_ms: int


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    registry, messages, end_ms = simulated(homes=4, days=3, seed=11, mix="realistic")
    readings = []
    for t, topic, payload in messages:
        try:
            readings.append(decode_message(topic, payload, received_ms=t, directory=registry))
        except DecodeError:
            continue
    return Scenario(registry, readings, end_ms)


def _engine(sc: Scenario, upto: int) -> Engine:
    engine = Engine(registry=sc.registry)
    engine.ensure_homes(sc.readings[0].received_ms)
    engine.process_many(sc.readings[:upto])
    return engine


def _state(data: bytes) -> tuple[int, dict[str, HomeState], list[tuple[str, str, int]]]:
    """A snapshot as comparable values: the order of homes and timers is not part of the state."""
    snap = msgspec.msgpack.decode(data, type=EngineSnapshot)
    return snap.now_ms, {h.site: h for h in snap.homes}, sorted(snap.timers)


def _finish(capture: SnapshotCapture) -> bytes:
    while not capture.step(0.0):
        pass
    data = b"".join(capture.chunks())
    capture.close()
    return data


def test_array_header_is_msgspecs() -> None:
    for n in (0, 1, 15, 16, 65_535, 65_536):
        assert msgspec.msgpack.encode([0] * n)[: len(_array_header(n))] == _array_header(n)
        assert len(msgspec.msgpack.encode([0] * n)) == len(_array_header(n)) + n


def test_sliced_snapshot_is_the_blocking_snapshot(scenario: Scenario) -> None:
    engine = _engine(scenario, len(scenario.readings) // 2)
    blocking = engine.snapshot()
    sliced = _finish(engine.begin_snapshot())
    assert _state(sliced) == _state(blocking)
    names = {name.split(":")[0] for _, name, _ in _state(sliced)[2]}
    assert {"day", "off", "not_up"} <= names  # the scenario arms timers of several kinds
    assert snapshot_watermark(sliced) == engine.now_ms


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.floats(0.05, 0.9),
    between=st.lists(st.tuples(st.integers(0, 400), st.booleans()), min_size=1, max_size=12),
)
def test_what_runs_between_slices_does_not_change_the_snapshot(
    scenario: Scenario, start: float, between: list[tuple[int, bool]]
) -> None:
    """Readings, fired timers and refitted baselines between slices land in the engine, not in the snapshot."""
    readings = scenario.readings
    i = int(len(readings) * start)
    engine = _engine(scenario, i)
    reference = engine.snapshot()
    capture = engine.begin_snapshot()
    done = False
    k = 0
    while not done:
        done = capture.step(0.0)  # one home per step: the most interleaving
        n, jump = between[k % len(between)]
        k += 1
        engine.process_many(readings[i : i + n])
        i += n
        if jump:  # an idle stretch: timers fire, days end
            engine.advance(engine.now_ms + 45 * MIN)
        if k % 3 == 0:
            engine.apply_baselines({site: _refitted(h.baseline) for site, h in engine.homes.items()})
    sliced = b"".join(capture.chunks())
    capture.close()
    assert _state(sliced) == _state(reference)


def _refitted(baseline: Baseline) -> Baseline:
    return msgspec.structs.replace(baseline, n_days=baseline.n_days + 1)


def test_restore_from_a_sliced_snapshot_equals_restore_from_a_blocking_one(scenario: Scenario) -> None:
    readings = scenario.readings
    half = len(readings) // 2
    engine = _engine(scenario, half)
    blocking = engine.snapshot()
    capture = engine.begin_snapshot()
    j = half
    while not capture.step(0.0):
        engine.process_many(readings[j : j + 200])  # the live engine keeps going meanwhile
        j += 200
    sliced = b"".join(capture.chunks())
    capture.close()

    history = InMemoryHistory(readings)
    restored = []
    for data in (blocking, sliced):
        eng, caught_up = Engine.restore(data, history=history, now_ms=scenario.end_ms, registry=scenario.registry)
        restored.append((eng, [(a.site, a.type, a.time_ms, a.explanation) for a in caught_up]))
    (a, alerts_a), (b, alerts_b) = restored
    assert alerts_a == alerts_b and alerts_a
    assert _state(a.snapshot()) == _state(b.snapshot())
    later = scenario.end_ms + 2 * DAY
    assert [(x.site, x.type, x.time_ms) for x in a.advance(later)] == [
        (x.site, x.type, x.time_ms) for x in b.advance(later)
    ]


def test_a_home_created_during_the_snapshot_is_not_in_it(scenario: Scenario) -> None:
    engine = _engine(scenario, 1000)
    capture = engine.begin_snapshot()
    newcomer = msgspec.structs.replace(scenario.readings[1000], site="new-home")
    engine.process(newcomer)
    _, homes, timers = _state(_finish(capture))
    assert "new-home" in engine.homes and "new-home" not in homes
    assert all(site != "new-home" for site, _, _ in timers)
    assert set(homes) == set(scenario.registry.sites)


def test_a_timer_outside_the_declared_names_fails_the_sliced_snapshot_loudly(scenario: Scenario) -> None:
    engine = _engine(scenario, 1000)
    site = next(iter(engine.homes))
    engine.timers.schedule(site, "mystery", BASE + 10 * DAY)
    capture = engine.begin_snapshot()
    while not capture.step(1.0):
        pass
    with pytest.raises(SnapshotError, match="1 of .* armed timers"):
        capture.chunks()
    capture.close()
    assert "mystery" in {t[1] for t in _state(engine.snapshot())[2]}, "the blocking snapshot keeps it"


async def test_the_backend_falls_back_to_a_blocking_snapshot_when_slicing_fails(
    scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _engine(scenario, 1000)
    site = next(iter(engine.homes))
    engine.timers.schedule(site, "mystery", BASE + 10 * DAY)
    data = b"".join(await snapshot_chunks(engine, slice_ms=1.0))
    assert "sliced snapshot failed" in caplog.text
    assert _state(data) == _state(engine.snapshot())
    restored, _ = Engine.restore(data, registry=scenario.registry, now_ms=snapshot_watermark(data))
    assert _state(restored.snapshot()) == _state(data)
    engine.begin_snapshot().close()  # the failed capture let go of the engine: the next one may start


def test_one_capture_at_a_time_and_closing_detaches_it(scenario: Scenario) -> None:
    engine = _engine(scenario, 1000)
    capture = engine.begin_snapshot()
    with pytest.raises(RuntimeError):
        engine.begin_snapshot()
    capture.step(0.0)
    capture.close()  # abandoned half-way: the engine stops copying homes for it
    capture.close()
    assert engine._capture is None
    engine.process_many(scenario.readings[1000:1100])
    with pytest.raises(RuntimeError):
        capture.step(0.0)
    assert _state(_finish(engine.begin_snapshot())) == _state(engine.snapshot())


def test_a_torn_snapshot_is_a_typed_error(scenario: Scenario) -> None:
    data = _engine(scenario, 1000).snapshot()
    with pytest.raises(SnapshotError):
        Engine.restore(data[: len(data) // 2])
    with pytest.raises(SnapshotError):
        snapshot_watermark(b"\x93")


@pytest.mark.parametrize("drop_every", [1, 1 << 30])
def test_a_snapshot_file_decoded_home_by_home_is_the_same_state(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drop_every: int
) -> None:
    # drop_every=1 hands the mapped pages back after every home: a later home must still decode from the file.
    monkeypatch.setattr(detection.snapshot, "_DROP_EVERY", drop_every)
    engine = _engine(scenario, 3000)
    path = tmp_path / "engine.msgpack"
    write_atomically(path, [_finish(engine.begin_snapshot())])
    data = path.read_bytes()
    snap = load_snapshot(path)
    assert len(snap.homes) == len(engine.homes) > 1
    assert msgspec.msgpack.encode(snap) == msgspec.msgpack.encode(msgspec.msgpack.decode(data, type=EngineSnapshot))
    restored, _ = Engine.restore(snap, registry=scenario.registry)
    assert _state(restored.snapshot()) == _state(engine.snapshot())


def test_a_torn_or_empty_snapshot_file_is_a_typed_error(scenario: Scenario, tmp_path: Path) -> None:
    data = _engine(scenario, 1000).snapshot()
    path = tmp_path / "engine.msgpack"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SnapshotError):
        load_snapshot(path)
    path.write_bytes(b"")
    with pytest.raises(SnapshotError):
        load_snapshot(path)
    path.write_bytes(data)  # the failed decodes let go of their mappings
    assert load_snapshot(path).now_ms == snapshot_watermark(data)


_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from eldercare.backend import snapshot_chunks, write_atomically

def chunks():
    for _ in range(3):
        yield b"x" * 700_000  # more than one write call's worth each
    os.kill(os.getpid(), signal.SIGKILL)  # the process dies in the middle of the new snapshot
    yield b"never"

write_atomically(Path(sys.argv[1]), chunks())
"""


@pytest.mark.slow  # a fresh interpreter importing the backend
def test_a_write_killed_half_way_leaves_the_previous_snapshot_usable(scenario: Scenario, tmp_path: Path) -> None:
    path = tmp_path / "detect" / "engine.msgpack"
    engine = _engine(scenario, 2000)
    previous = _finish(engine.begin_snapshot())
    write_atomically(path, [previous])

    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(path)], check=False, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    partial = path.with_suffix(".msgpack.tmp")
    assert partial.exists() and 0 < partial.stat().st_size < 2_100_000, "the kill did not land mid-write"

    assert path.read_bytes() == previous
    restored, _ = Engine.restore(path.read_bytes(), registry=scenario.registry)
    assert _state(restored.snapshot()) == _state(previous)
    # The next snapshot simply overwrites the leftover temporary file.
    engine.process_many(scenario.readings[2000:2100])
    write_atomically(path, [engine.snapshot()])
    assert snapshot_watermark(path.read_bytes()) == engine.now_ms
    assert os.listdir(path.parent) == ["engine.msgpack"]
