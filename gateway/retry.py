"""The one retry policy of the backend: exponential backoff with a cap and optional jitter.

Used by the gateway service (a batch that cannot be made durable is retried, never dropped), the command
publisher (a few attempts, then :class:`~gateway.errors.PublishError`), the ingest writer's spool replay and the
pipeline's storage setup. It lives in ``gateway/`` because that is the lowest layer: ``ingest`` may import it.
A waiter can cut a pause short (the writer probes InfluxDB's ``/ping`` and retries as soon as it answers).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

Waiter = Callable[[float], Awaitable[None]]
"""Pause for at most the given seconds (may return earlier, e.g. as soon as the server is back)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays ``first_s × base^(n-1)``, capped at ``max_s``, plus up to ``jitter_s`` of random jitter.

    >>> [Backoff(first_s=0.5, max_s=3).delay(n) for n in range(1, 6)]
    [0.5, 1.0, 2.0, 3.0, 3.0]
    """

    first_s: float
    max_s: float
    base: float = 2.0
    jitter_s: float = 0.0

    def __post_init__(self) -> None:
        if self.first_s < 0 or self.max_s < 0 or self.jitter_s < 0 or self.base < 1:
            raise ValueError("delays must not be negative and base must be at least 1")

    def delay(self, attempt: int) -> float:
        """Pause after failed attempt number ``attempt`` (1-based), jitter included."""
        exponent = min(max(attempt - 1, 0), 64)  # beyond that the cap has long applied; avoids float overflow
        base = min(self.first_s * self.base**exponent, self.max_s)
        return base + (random.uniform(0, self.jitter_s) if self.jitter_s else 0.0)  # noqa: S311 - not crypto


async def retry(
    attempt: Callable[[], Awaitable[T]],
    *,
    backoff: Backoff,
    retry_on: type[Exception] | tuple[type[Exception], ...] = Exception,
    max_attempts: int | None = None,
    on_failure: Callable[[int, Exception, float], None] | None = None,
    wait: Waiter | None = None,
) -> T:
    """Call ``attempt`` until it returns; pause ``backoff.delay(n)`` after the n-th failure.

    ``on_failure(n, error, delay)`` is called after each failure (logging, metrics); after ``max_attempts``
    failures the last error is raised (None: retry forever). Exceptions other than ``retry_on`` propagate at once.
    """
    pause = wait if wait is not None else asyncio.sleep
    failures = 0
    while True:
        try:
            return await attempt()
        except retry_on as exc:
            failures += 1
            last = max_attempts is not None and failures >= max_attempts
            delay = 0.0 if last else backoff.delay(failures)
            if on_failure is not None:
                on_failure(failures, exc, delay)
            if last:
                raise
        await pause(delay)
