"""Real local receivers for notification tests (no mocks): an HTTP webhook server for apprise ``json://``."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Webhook:
    """A real HTTP server that records JSON posts (apprise ``json://`` channel)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.fail_paths: set[str] = set()
        self._cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path in outer.fail_paths:
                    self.send_response(503)
                    self.end_headers()
                    return
                with outer._cond:
                    outer.messages.append({"path": self.path, **body})
                    outer._cond.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """An apprise URL posting to ``/path`` on this server."""
        return f"json://127.0.0.1:{self.server.server_port}/{path}"

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
        self.server.shutdown()
        self.server.server_close()
