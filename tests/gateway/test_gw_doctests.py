"""Run the doctests of the gateway modules (pytest collects only tests/)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "gateway.dedupe",
    "gateway.deadletter",
    "gateway.downlink",
    "gateway.confirm",
    "gateway.retained",
    "gateway.budget",
    "gateway.z2m.adapter",
    "gateway.contract",
    "gateway.retry",
    "gateway.mqtt_wire",
    "gateway.provisioning",
    "gateway.rooms",
    "gateway.sessions",
    "gateway.listener",
    "ingest.schema",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0


async def test_retry_gives_up_after_max_attempts_and_passes_other_errors() -> None:
    from gateway.retry import Backoff, retry

    calls: list[int] = []
    seen: list[tuple[int, float]] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OSError("down")
        return "ok"

    async def no_wait(_s: float) -> None:
        return None

    backoff = Backoff(first_s=0.5, max_s=1.0)
    out = await retry(flaky, backoff=backoff, on_failure=lambda n, _e, d: seen.append((n, d)), wait=no_wait)
    assert out == "ok" and seen == [(1, 0.5), (2, 1.0)]

    async def always() -> None:
        raise OSError("still down")

    with pytest.raises(OSError):
        await retry(always, backoff=backoff, max_attempts=2, wait=no_wait)

    async def bug() -> None:
        raise KeyError("not retried")

    with pytest.raises(KeyError):
        await retry(bug, backoff=backoff, retry_on=OSError, wait=no_wait)
