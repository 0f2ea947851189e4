"""Pooled live mode at 10,000 homes against a real mosquitto, and ``eldercare simulate`` live from the CLI."""

from __future__ import annotations

import resource
import secrets
import statistics
import time
import uuid
from collections.abc import Iterator

import pytest
from sim_helpers import Watcher
from typer.testing import CliRunner

from eldercare.cli import app
from eldercare.stack import Broker
from firmware_sim.live import FD_MARGIN, raise_fd_limit, run_live
from firmware_sim.models import MINUTE_MS
from firmware_sim.scenario import generate
from gateway.contract import decode_message
from gateway.models import MessageType

pytestmark = pytest.mark.integration

HOMES = 10_000


@pytest.fixture(scope="module")
def big_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker of its own: started after raising the open-file limit, which mosquitto inherits."""
    need = HOMES + 4 * FD_MARGIN
    if raise_fd_limit(need) < need:
        pytest.skip(f"open-file hard limit {resource.getrlimit(resource.RLIMIT_NOFILE)[1]} < {need}")
    b = Broker(data_dir=tmp_path_factory.mktemp("mosquitto-10k"), secret=secrets.token_urlsafe(32))
    b.start()
    yield b
    b.stop()


@pytest.mark.slow
@pytest.mark.scale  # 30 s on 2 cores; the pooled path at small scale stays in the default run (tests below)
def test_pooled_live_mode_connects_10000_homes_and_delivers(big_broker: Broker) -> None:
    prefix = f"p{uuid.uuid4().hex[:6]}x"
    t0 = time.perf_counter()
    sim = generate(homes=HOMES, days=1, seed=7, site_prefix=prefix, mattress_cadence_s=60)
    sites = [h.site for h in sim.homes]
    big_broker.provision(sites, timeout=30)
    # The first simulated minutes of every home (its gateway's retained status comes first), rendered before
    # connecting so publishing is not paced by rendering; a few messages per home keeps the test short.
    first = next(sim.batches(chunk_ms=10 * MINUTE_MS))
    messages = [m for m in zip(*first, strict=True) if m[0] < sim.start_ms + 2 * MINUTE_MS]
    prepared = time.perf_counter() - t0
    watcher = Watcher(big_broker, keep=False)
    try:
        stats = run_live(
            messages,
            sites=[(h.site, h.gateway) for h in sim.homes],
            host=big_broker.host,
            port=big_broker.port,
            password_for=big_broker.gateway_password,
            speed=200,  # 2 simulated minutes in 0.6 s: as fast as one thread publishes
        )
        got = watcher.wait_count(stats.published, timeout=60)
        with watcher.lock:
            seen = set(watcher.sites)
    finally:
        watcher.close()
    assert stats.connected == HOMES
    assert stats.published == len(messages) > 2 * HOMES
    assert got >= stats.published  # QoS 1: at least once
    assert seen == set(sites)  # every home's gateway reached the broker
    print(
        f"\n{HOMES} homes: prepared (plan, provision, render {len(messages):,} messages) in {prepared:.1f} s;"
        f" connected in {stats.connect_s:.1f} s ({HOMES / stats.connect_s:,.0f}/s);"
        f" published {stats.published:,} in {stats.publish_s:.1f} s ({stats.published / stats.publish_s:,.0f} msg/s,"
        f" worst lag {stats.lag_ms_max / 1000:.1f} s); subscriber got {got:,}"
    )


def _cli(broker: Broker, monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    monkeypatch.setenv("ELDERCARE_GATEWAY_SECRET", broker.secret)
    result = CliRunner().invoke(
        app, ["simulate", "--broker", broker.host, "--port", str(broker.port), *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output


def test_cli_live_mode_with_a_time_scale_publishes_to_the_broker(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"c{uuid.uuid4().hex[:6]}x"
    sim = generate(homes=3, days=1, seed=4, site_prefix=prefix)
    broker.provision([h.site for h in sim.homes])
    watcher = Watcher(broker)
    try:
        # 3000 simulated seconds per second for 4 s: the first few hours of the day.
        _cli(
            broker,
            monkeypatch,
            *["--homes", "3", "--days", "1", "--seed", "4", "--speed", "3000", "--duration", "4", "--site-prefix"],
            prefix,
        )
        got = watcher.wait_for(prefix, 500)
    finally:
        watcher.close()
    assert len(got) >= 500
    assert {t.split("/")[2] for t, _ in got} == {h.site for h in sim.homes}
    expected = {(t, p) for _, t, p in sim.messages(chunk_ms=10 * MINUTE_MS)}
    assert set(got) <= expected  # exactly the simulation's messages, nothing else
    for topic, payload in got:
        decode_message(topic, payload, received_ms=sim.start_ms)


def test_cli_realtime_publishes_wall_clock_timestamps(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"r{uuid.uuid4().hex[:6]}x"
    homes = 40
    broker.provision([f"{prefix}{i:04d}" for i in range(1, homes + 1)])
    watcher = Watcher(broker)
    try:
        _cli(broker, monkeypatch, *f"--homes {homes} --days 1 --realtime --duration 12 --site-prefix".split(), prefix)
        got = watcher.wait_for(prefix, 1, timeout=5)
    finally:
        watcher.close()
    now = time.time_ns() // 1_000_000
    # Forty homes send a mattress sample every 20 s each: about two dozen in 12 s, so a slow start on a loaded
    # machine (the simulator connecting while other suites run) still leaves samples to check.
    assert got
    readings = [decode_message(t, p, received_ms=now) for t, p in got]
    assert all(r.site.startswith(prefix) for r in readings)
    # Device time is wall-clock time (a band may upload older samples after an outing: hence the median). Only the
    # samples: the start first reports each device's last status from before "now" (test_sim_live.py).
    samples = [r for r in readings if r.type is MessageType.TELEMETRY]
    assert samples
    lag_s = statistics.median((now - r.ts_ms) / 1000 for r in samples)
    assert -30 <= lag_s <= 120, lag_s
