"""Run the doctests of the gateway modules (pytest collects only tests/)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["gateway.dedupe", "gateway.deadletter", "gateway.downlink", "gateway.contract"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
