"""Run the doctests of detection and composition-root modules (pytest collects only tests/; gateway's are in
tests/gateway/test_gw_doctests.py)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "detection.baseline",
    "detection.rhythm",
    "eldercare.settings",
    "eldercare.backup",
    "ingest.nats_bus",
    "dashboards.stats",
    "alerts.notices",
    "dashboards.web.urls",
    "dashboards.web.explain",
    "dashboards.web.render",
    "support.tamper",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
