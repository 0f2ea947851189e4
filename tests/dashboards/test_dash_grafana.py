"""The Grafana dashboard JSON is valid and only queries measurements and tags of ingest.schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ingest.schema import MEASUREMENTS, TAG_KEYS

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "grafana" / "eldercare-telemetry.json"


def test_grafana_dashboard_queries_the_schema() -> None:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert data["uid"] == "eldercare-telemetry" and data["templating"]["list"][0]["name"] == "site"
    kinds = set(MEASUREMENTS.values())
    panels: list[dict[str, Any]] = data["panels"]
    assert len(panels) >= 6 and len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        for target in panel["targets"]:
            q = target["query"]
            assert "$timeFilter" in q and "$site" in q, q
            named = set(re.findall(r'FROM "(\w+)"', q)) | {
                k for alt in re.findall(r"FROM /\^\(([\w|]+)\)\$/", q) for k in alt.split("|")
            }
            assert named and named <= kinds, q
            for tag in re.findall(r'"(\w+)" =', q):
                assert tag in TAG_KEYS, q


@pytest.mark.integration
async def test_grafana_queries_run_on_influxd(influxd: Any, unique_db: str) -> None:
    """Every panel's InfluxQL parses and runs on a real influxd (variables substituted as Grafana would)."""
    from ingest.influx import InfluxClient

    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    async with InfluxClient(url=influxd.url, db=unique_db) as client:
        await client.execute(f'CREATE DATABASE "{unique_db}"')
        await client.write(
            b"mattress,site=h1,device=mat1,type=telemetry hr=60.0,rr=14.0,occupied=true 1700000000000", precision="ms"
        )
        for panel in data["panels"]:
            for target in panel["targets"]:
                q = (
                    target["query"]
                    .replace("$timeFilter", "time > now() - 7000d")
                    .replace("$__interval", "1h")
                    .replace("$site", "h1")
                )
                await client.query(q)


def test_bed_occupancy_panel_can_show_a_boolean() -> None:
    """``occupied`` is a boolean field: a time-series panel plots nothing; a state timeline with mappings does."""
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    (bed,) = [p for p in data["panels"] if '"occupied"' in p["targets"][0]["query"]]
    assert bed["type"] == "state-timeline"
    options = bed["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert {"true", "false"} <= set(options)
