"""Imports point one way (gateway ← ingest ← alerts ← dashboards) and firmware_sim stays independent."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["gateway", "ingest", "alerts", "dashboards"]
BACKEND = {*LAYERS, "eldercare"}


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
    forbidden = (BACKEND - allowed) | {"firmware_sim"}
    bad = [f"{p.relative_to(ROOT)} imports {m}" for p, m in _imports(package) if m in forbidden]
    # The detection evaluator generates scenarios with the simulator, as a test bench (documented).
    bad = [b for b in bad if not b.startswith("alerts/evaluate.py imports firmware_sim")]
    assert bad == []


def test_firmware_sim_imports_nothing_from_the_backend() -> None:
    bad = [f"{p.relative_to(ROOT)} imports {m}" for p, m in _imports("firmware_sim") if m in BACKEND]
    assert bad == []


def test_checker_sees_violations(tmp_path: Path) -> None:
    # Guards the guard: the import walker must notice a real upward import.
    (tmp_path / "gateway").mkdir()
    probe = tmp_path / "gateway" / "probe.py"
    probe.write_text("import dashboards\nfrom alerts.models import Alert\n")
    assert _imports("gateway", tmp_path) == [(probe, "dashboards"), (probe, "alerts")]
