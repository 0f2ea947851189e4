"""One shared watcher of the alert store for every live console: a single cheap poll, fanned out to all clients.

However many consoles are open, the store is asked for its alert version once per interval (off the event loop);
each Server-Sent-Events stream just waits for the version to change. The watcher runs only while someone listens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable


class AlertFeed:
    """Polls ``version()`` every ``interval_s`` while at least one client listens; wakes them on change."""

    def __init__(self, version: Callable[[], int], *, interval_s: float = 0.2) -> None:
        self._version_fn = version
        self.interval_s = interval_s
        self.version: int | None = None
        self._listeners = 0
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _ensure_running(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._changed is None:
            self._loop, self._changed, self._task = loop, asyncio.Event(), None
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name="alert-feed")
        return self._changed

    async def _run(self) -> None:
        while self._listeners > 0:
            version = await asyncio.to_thread(self._version_fn)
            if version != self.version:
                self.version = version
                if self._changed is not None:
                    self._changed.set()
                    self._changed = asyncio.Event()
            await asyncio.sleep(self.interval_s)

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[None]:
        """Register a client for the duration of its stream."""
        self._listeners += 1
        try:
            self._ensure_running()
            yield
        finally:
            self._listeners -= 1

    async def next_version(self, seen: int | None, *, timeout_s: float) -> int | None:
        """The current version once it differs from ``seen`` (or after ``timeout_s``, for keep-alives)."""
        changed = self._ensure_running()
        if self.version is not None and self.version != seen:
            return self.version
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout_s)
        return self.version
