"""``eldercare privacy export|erase`` against the real InfluxDB: the resident's home series go, others stay."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.backend import registry_for

from alerts.store.repository import AlertStore
from eldercare.servers.influxd import Influxd
from eldercare.settings import Settings
from ingest.influx import InfluxClient

pytestmark = [pytest.mark.integration]


async def _points(influxd: Influxd, db: str, site: str) -> int:
    async with InfluxClient(url=influxd.url, db=db) as client:
        results = await client.query('SELECT count("value") FROM "hr" WHERE "site" = $s', params={"s": site}, db=db)
    rows = [row for r in results for series in r.series for row in series.rows()]
    return int(rows[0]["count"]) if rows else 0


async def _seed(influxd: Influxd, db: str, sites: list[str]) -> None:
    now = int(time.time() * 1000)
    body = "\n".join(f"hr,site={s},device=mat1 value={60 + i}i {now - i * 1000}" for s in sites for i in range(10))
    async with InfluxClient(url=influxd.url, db=db) as client:
        await client.execute(f'CREATE DATABASE "{db}"')
        await client.write(body.encode())


def test_export_then_erase_a_resident(influxd: Influxd, unique_site: str, unique_db: str, tmp_path: Path) -> None:
    neighbour = f"{unique_site}n"
    settings = Settings(data_dir=tmp_path, influx_url=influxd.url, influx_db=unique_db)
    store = AlertStore(url=settings.database_url)
    store.import_registry(registry_for(unique_site), now_ms=int(time.time() * 1000))
    store.close()
    asyncio.run(_seed(influxd, unique_db, [unique_site, neighbour]))
    env = {"ELDERCARE_DATA_DIR": str(tmp_path), "ELDERCARE_INFLUX_URL": influxd.url, "ELDERCARE_INFLUX_DB": unique_db,
           "PATH": "/usr/bin:/bin"}  # fmt: skip

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "eldercare.cli", "privacy", *args], env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip

    out = tmp_path / "R0001.json"
    done = cli("export", "R0001", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    doc = json.loads(out.read_text())
    assert doc["resident"]["name"] == "张桂英" and doc["telemetry"]["points"]["hr"]["count_value"] == 10

    assert cli("erase", "R0001").returncode == 2  # needs --yes
    done = cli("erase", "R0001", "--yes")
    assert done.returncode == 0, done.stderr
    assert asyncio.run(_points(influxd, unique_db, unique_site)) == 0
    assert asyncio.run(_points(influxd, unique_db, neighbour)) == 10
    store = AlertStore(url=settings.database_url)
    try:
        actions = [e.action for e in store.audit_entries()]
        assert {"privacy.exported", "privacy.erased", "privacy.telemetry_dropped"} <= set(actions)
    finally:
        store.close()
    assert cli("erase", "R9999", "--yes").returncode == 1
