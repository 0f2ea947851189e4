"""The test watchdog (tests/support/tasks.py) names the await a hung async test is suspended in."""

from __future__ import annotations

import asyncio

import pytest
from support.tasks import watchdog


async def _waits_on_a_reply_that_never_comes(never: asyncio.Event) -> None:
    await never.wait()


async def test_a_body_past_its_bound_fails_with_the_await_it_hung_in() -> None:
    never = asyncio.Event()
    with pytest.raises(AssertionError) as caught:
        async with watchdog(0.2):
            await _waits_on_a_reply_that_never_comes(never)
    text = str(caught.value)
    assert "still running after 0.2 s" in text
    assert "in _waits_on_a_reply_that_never_comes" in text and "locks.py" in text  # Event.wait, the hung await


async def test_a_body_within_its_bound_is_left_alone() -> None:
    async with watchdog(30):
        await asyncio.sleep(0)
