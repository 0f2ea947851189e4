"""One shared poll of the store feeds every live console."""

from __future__ import annotations

import asyncio

from dashboards.events import AlertFeed


async def test_feed_shares_one_poll_and_wakes_listeners() -> None:
    calls = 0
    version = 1

    def poll() -> int:
        nonlocal calls
        calls += 1
        return version

    feed = AlertFeed(poll, interval_s=0.01)
    async with feed.listen(), feed.listen():
        first = await asyncio.gather(feed.next_version(None, timeout_s=2), feed.next_version(None, timeout_s=2))
        assert first == [1, 1]
        waiting = asyncio.gather(feed.next_version(1, timeout_s=2), feed.next_version(1, timeout_s=2))
        await asyncio.sleep(0.05)
        version = 2
        assert await waiting == [2, 2]
        polls_with_two_listeners = calls
    await asyncio.sleep(0.05)
    assert calls <= polls_with_two_listeners + 1  # the poller stops when nobody listens
    assert await feed.next_version(2, timeout_s=0.05) == 2  # a timeout answers the unchanged version
