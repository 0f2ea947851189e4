"""Imports point one way (gateway ← ingest ← detection ← alerts ← dashboards); firmware_sim and bench stay apart."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["gateway", "ingest", "detection", "alerts", "dashboards"]
BACKEND = {*LAYERS, "eldercare"}
PRODUCTION = [*LAYERS, "eldercare", "firmware_sim"]


def _imports(package: str, root: Path = ROOT) -> list[tuple[Path, str]]:
    found = []
    for path in (root / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found += [(path, alias.name.split(".")[0]) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("package", LAYERS)
def test_layers_import_only_upstream(package: str) -> None:
    allowed = set(LAYERS[: LAYERS.index(package) + 1])
    forbidden = (BACKEND - allowed) | {"firmware_sim", "bench"}
    bad = [f"{p.relative_to(ROOT)} imports {m}" for p, m in _imports(package) if m in forbidden]
    # The detection evaluator generates scenarios with the simulator, as a test bench (documented).
    bad = [b for b in bad if not b.startswith("detection/evaluate.py imports firmware_sim")]
    assert bad == []


def test_firmware_sim_imports_nothing_from_the_backend() -> None:
    bad = [f"{p.relative_to(ROOT)} imports {m}" for p, m in _imports("firmware_sim") if m in BACKEND]
    assert bad == []


def test_checker_sees_violations(tmp_path: Path) -> None:
    # Guards the guard: the import walker must notice a real upward import.
    (tmp_path / "gateway").mkdir()
    probe = tmp_path / "gateway" / "probe.py"
    probe.write_text("import dashboards\nfrom detection.models import Alert\n")
    assert _imports("gateway", tmp_path) == [(probe, "dashboards"), (probe, "detection")]


def test_detection_has_no_database() -> None:
    # Readings in, Alert out: the detection core never touches the alert store or SQL.
    bad = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p, m in _imports("detection")
        if m in {"sqlalchemy", "alembic", "psycopg"}
    ]
    assert bad == []


@pytest.mark.parametrize("package", PRODUCTION)
def test_only_the_alert_store_speaks_sql(package: str) -> None:
    # One owner for the alert store: its aggregates, migrations, and the console's scoped reads beside it.
    allowed = ("alerts/store/", "alerts/migrations/", "alerts/queries.py", "alerts/scope.py")
    bad = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p, m in _imports(package)
        if m in {"sqlalchemy", "alembic"} and not str(p.relative_to(ROOT)).startswith(allowed)
    ]
    assert bad == []


@pytest.mark.parametrize("package", PRODUCTION)
def test_nothing_imports_bench_but_the_cli(package: str) -> None:
    bad = [
        f"{p.relative_to(ROOT)} imports bench"
        for p, m in _imports(package)
        if m == "bench" and p.relative_to(ROOT) != Path("eldercare/cli.py")
    ]
    assert bad == []


def test_no_bench_code_in_production_packages() -> None:
    names = [p.relative_to(ROOT) for pkg in PRODUCTION for p in (ROOT / pkg).rglob("*bench*.py")]
    assert names == []


@pytest.mark.parametrize("package", sorted(BACKEND))
def test_only_the_listener_imports_a_receive_client_library(package: str) -> None:
    # gateway/listener.py picks the receive client (paho, or our own gateway/mqtt_wire.py, which imports none);
    # gmqtt is a benchmark baseline only. (Commands go out through gateway/downlink.py on aiomqtt.)
    bad = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p, m in _imports(package)
        if m in {"paho", "gmqtt"} and p.relative_to(ROOT) != Path("gateway/listener.py")
    ]
    assert bad == []
