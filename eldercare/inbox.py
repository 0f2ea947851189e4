"""A local HTTP receiver for apprise ``json://`` notifications (demo phone inbox, benchmarks, tests)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OnPost = Callable[[str, dict[str, Any], float], int]
"""``(path, JSON body, monotonic arrival time) -> HTTP status`` for one notification."""


class JsonInbox:
    """A real HTTP server on loopback; every POST is decoded and handed to ``on_post`` (bad JSON → ``{}``)."""

    def __init__(self, on_post: OnPost, *, name: str = "json-inbox") -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                self.send_response(on_post(self.path, body if isinstance(body, dict) else {}, arrived))
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name=name, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """Apprise URL posting to ``/path`` on this server."""
        return f"json://127.0.0.1:{self.server.server_port}/{path}"

    def close(self) -> None:
        """Stop the server."""
        self.server.shutdown()
        self.server.server_close()
