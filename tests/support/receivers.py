"""Real local receivers for notification tests (no mocks): an HTTP webhook server for apprise ``json://``."""

from __future__ import annotations

import threading
import time
from typing import Any

from eldercare.inbox import JsonInbox


class Webhook:
    """A real HTTP server that records JSON posts (apprise ``json://`` channel)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.fail_paths: set[str] = set()
        self._cond = threading.Condition()
        self._inbox = JsonInbox(self._record, name="test-webhook")

    def _record(self, path: str, body: dict[str, Any], _arrived: float) -> int:
        if path in self.fail_paths:
            return 503
        with self._cond:
            self.messages.append({"path": path, **body})
            self._cond.notify_all()
        return 200

    def url(self, path: str) -> str:
        """An apprise URL posting to ``/path`` on this server."""
        return self._inbox.url(path)

    def to(self, path: str) -> list[dict[str, Any]]:
        """Messages received on ``/path``."""
        with self._cond:
            return [m for m in self.messages if m["path"] == f"/{path}"]

    def wait(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until ``count`` messages arrived in total."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} webhook messages, got {len(self.messages)}")
                self._cond.wait(left)
            return list(self.messages)

    def close(self) -> None:
        """Stop the server."""
        self._inbox.close()
