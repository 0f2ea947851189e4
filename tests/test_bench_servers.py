"""The server-measuring benches at toy size (recovery, broker autosave, scale-out): every row is counted on real
servers, and each reads the servers' CPU through ``bench.procstat``."""

from __future__ import annotations

import asyncio

import pytest

from bench.broker_autosave import measure
from bench.recovery import run_bench_recovery
from bench.recovery import table as recovery_table
from bench.scale import run_bench_scale
from bench.scale import table as scale_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_recovery_at_toy_size_rebuilds_every_reading_both_ways() -> None:
    results = run_bench_recovery(homes=50)
    assert [r.method for r in results] == ["new", "old"]
    assert len({r.replayed for r in results}) == 1 and results[0].replayed > 0
    new = results[0]
    assert new.sos_raised is not None and new.sos_raised > 0 and new.influxd_cpu_s > 0
    assert "| new |" in recovery_table(results, 50)


def test_broker_autosave_counts_what_a_kill_loses() -> None:
    row = asyncio.run(measure(1000, 300, cap_s=30))
    assert row.acknowledged == 300 and row.broker_cpu_s >= 0
    assert row.lost == 300  # fewer changes than the autosave interval: nothing was saved before the kill


@pytest.mark.scale
def test_scale_at_toy_size_stores_everything_in_order() -> None:
    rows = run_bench_scale(count=200, homes=10, workers=(1, 2))
    assert [r.workers for r in rows] == [1, 2]
    assert all(r.stored == r.count == 200 and r.order_violations == 0 and r.server_cpu_s > 0 for r in rows)
    assert "| 2 |" in scale_table(rows)


@pytest.mark.scale
def test_scale_at_toy_size_with_accounts_stores_everything_and_compares_with_the_open_cluster() -> None:
    """Gateways on their own users (one connection per home) and the workers on theirs lose nothing."""
    rows = run_bench_scale(count=200, homes=10, workers=(1,), secured=True)
    assert [(r.workers, r.secured) for r in rows] == [(1, False), (1, True)]
    assert all(r.stored == r.count == 200 and r.order_violations == 0 and r.server_cpu_s > 0 for r in rows)
    assert "| yes |" in scale_table(rows)


@pytest.mark.scale
def test_scale_at_toy_size_compares_the_bridged_ingress_with_direct_mqtt() -> None:
    # 1,000 readings: mosquitto spends ~50 µs on each, enough for /proc's 10 ms CPU ticks (200 sometimes read 0).
    rows = run_bench_scale(count=1000, homes=10, workers=(1,), ingress=("mqtt", "bridge"))
    assert [(r.ingress, r.workers) for r in rows] == [("mqtt", 1), ("bridge", 1)]
    assert all(r.stored == r.count == 1000 and r.order_violations == 0 and r.server_cpu_s > 0 for r in rows)
    assert rows[1].edge_cpu_s > 0 and rows[0].edge_cpu_s == 0  # mosquitto's share, on the bridged path only
    bridged = next(line for line in scale_table(rows).splitlines() if line.startswith("| bridge | 1 |"))
    assert bridged.split("|")[7].strip().endswith("×")  # the ratio to direct MQTT in the same run
