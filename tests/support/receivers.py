"""Real local receivers for notification tests (no mocks): an HTTP webhook server for apprise ``json://``."""

from __future__ import annotations

import threading
import time
from typing import Any

from eldercare.inbox import JsonInbox


class Webhook:
    """A real HTTP server that records JSON posts (apprise ``json://`` channel).

    A path in :attr:`hold_paths` keeps its requests unanswered (recorded in :attr:`held`, not in :attr:`messages`)
    until :meth:`release`: the sender is then in the middle of a delivery it has not been told about, the moment a
    chaos test kills it. Released requests are answered 503, so they never count as delivered.
    """

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.held: list[dict[str, Any]] = []
        self.fail_paths: set[str] = set()
        self.hold_paths: set[str] = set()
        self._cond = threading.Condition()
        self._released = threading.Event()
        self._inbox = JsonInbox(self._record, name="test-webhook")

    def _record(self, path: str, body: dict[str, Any], _arrived: float) -> int:
        if path in self.fail_paths:
            return 503
        with self._cond:
            if path in self.hold_paths:
                self.held.append({"path": path, **body})
                self._cond.notify_all()
                hold = True
            else:
                self.messages.append({"path": path, **body})
                self._cond.notify_all()
                hold = False
        if hold:
            self._released.wait(120)
            return 503
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

    def hold(self, *paths: str) -> None:
        """Leave requests to these paths (``W01``) unanswered until :meth:`release`."""
        with self._cond:
            self.hold_paths.update(f"/{p}" for p in paths)
            self._released.clear()

    def release(self) -> None:
        """Answer every held request (503) and stop holding."""
        with self._cond:
            self.hold_paths.clear()
        self._released.set()

    def wait_held(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Block until ``count`` requests are being held."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.held) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} held webhook requests, got {len(self.held)}")
                self._cond.wait(left)
            return list(self.held)

    def close(self) -> None:
        """Stop the server."""
        self._released.set()
        self._inbox.close()
