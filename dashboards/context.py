"""Everything a request needs, built once by :func:`dashboards.app.create_app` and kept on ``app.state``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from dashboards.ports import ConsoleBackend
from dashboards.security import LoginLimiter, SessionSigner


class Telemetry(Protocol):
    """Chart series for the resident page (ingest/reader.py in production)."""

    def series(self, *, site: str, field_name: str, since_ms: int, until_ms: int) -> list[tuple[int, float]]:
        """``(time_ms, value)`` points of one field of one home."""
        ...


def now_ms() -> int:
    """Wall-clock time in UTC epoch ms (the default clock)."""
    return int(time.time() * 1000)


@dataclass
class AppContext:
    """Shared services of the web application."""

    backend: ConsoleBackend
    sessions: SessionSigner
    limiter: LoginLimiter
    ip_limiter: LoginLimiter
    clock: Callable[[], int] = now_ms
    secure_cookies: bool = False
    telemetry: Telemetry | None = None
    poll_interval_s: float = 0.2
    """How often the live feed checks the store for changed alerts (well within the 1 s target)."""
    extra: dict[str, object] = field(default_factory=dict)
