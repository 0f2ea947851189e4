"""``eldercare bench join`` at toy scale: every setting creates every partition's consumer on a fresh real cluster."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bench.join import run_bench_join, table

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_each_setting_creates_every_consumer_on_its_own_fresh_cluster() -> None:
    rows = run_bench_join(at_once=(1, 4), rounds=1, partitions=6)
    assert [r.at_once for r in rows] == [1, 4]
    assert all(r.created == [6] and r.seconds[0] > 0 for r in rows)  # a fresh cluster each: none existed before
    out = table(rows)
    assert out.splitlines()[2].startswith("| 1 | 6 |") and "×1.0 |" in out.splitlines()[2]


def test_the_cli_prints_the_table() -> None:
    from eldercare.cli import app

    res = CliRunner().invoke(app, ["bench", "join", "--at-once", "1,2", "--rounds", "1", "--partitions", "2"])
    assert res.exit_code == 0, res.output
    assert "| 2 | 2 |" in res.output and "vs one by one" in res.output
