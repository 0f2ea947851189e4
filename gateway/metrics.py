"""Gateway counters in Prometheus format, and rate-limited warnings for bad messages.

Counters are updated once per batch with aggregated counts (not once per message), so the hot path
pays a few lock acquisitions per batch, whatever its size.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.errors import Reason
from gateway.models import DeviceKind

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
"""HTTP ``Content-Type`` of :meth:`GatewayMetrics.render`."""

_BATCH_BUCKETS: Final = (1, 10, 100, 500, 1000, 2000, 5000, 10_000, 20_000)
_DURABLE_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0)


class GatewayMetrics:
    """All gateway metrics, in a registry of their own (several services can live in one process)."""

    def __init__(self, *, registry: CollectorRegistry | None = None, namespace: str = "eldercare_gateway") -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        kw: dict[str, Any] = {"namespace": namespace, "registry": self.registry}
        self.received = Counter("messages_received", "MQTT messages handed to the service.", **kw)
        self.decoded = Counter("readings_decoded", "Messages decoded into readings, by device kind.", ["kind"], **kw)
        self.dead_lettered = Counter("dead_letters", "Messages refused into the dead-letter record.", ["reason"], **kw)
        self.duplicates = Counter("duplicates", "Redelivered messages dropped by (device, seq).", **kw)
        self.clock_skewed = Counter("clock_skewed", "Readings whose device clock was off too far.", **kw)
        self.life_safety = Counter("life_safety", "Life-safety readings handed to the fast path.", **kw)
        self.fast_path_errors = Counter("fast_path_errors", "Exceptions raised by the life-safety fast path.", **kw)
        self.sink_retries = Counter("sink_retries", "Failed attempts to make a batch durable (retried).", **kw)
        self.acked = Counter("messages_acked", "Messages acknowledged to the broker.", **kw)
        self.batch_size = Histogram("batch_size", "Messages per handled batch.", buckets=_BATCH_BUCKETS, **kw)
        self.durable_seconds = Histogram(
            "durable_seconds",
            "Time from handing a batch's readings to storage until they are durable (InfluxDB or the spool).",
            buckets=_DURABLE_BUCKETS,
            **kw,
        )
        self.queue_depth = Gauge("queue_depth", "Messages received but not yet handed out.", **kw)
        self.connected = Gauge("connected", "1 while the listener is connected to the broker.", **kw)
        self.watch_connections = Gauge("watch_connections", "Open 4G watch connections (gateway/watch).", **kw)
        self.watch_logins = Counter("watch_logins", "4G watch logins: a registered IMEI's first frame.", **kw)
        self.watch_refused = Counter(
            "watch_connections_refused", "4G watch connections refused: limit reached or IMEI not registered.", **kw
        )
        self.retained_clears = Counter(
            "retained_clears",
            "Refused topics whose retained message the backend cleared at the broker (gateway/retained.py): `sent`,"
            " or `dropped` (too many waiting; cleared when refused again).",
            ["result"],
            **kw,
        )
        # Pre-create labelled children so every series is exported from the start (at 0).
        for result in ("sent", "dropped"):
            self.retained_clears.labels(result=result)
        for kind in DeviceKind:
            self.decoded.labels(kind=kind.value)
        for reason in Reason:
            self.dead_lettered.labels(reason=reason.value)

    def count_batch(
        self,
        *,
        received: int,
        decoded: Mapping[DeviceKind, int],
        dead: Mapping[Reason, int],
        duplicates: int,
        clock_skewed: int,
        life_safety: int,
    ) -> None:
        """Add one batch's aggregated counts."""
        self.received.inc(received)
        self.batch_size.observe(received)
        for kind, n in decoded.items():
            self.decoded.labels(kind=kind.value).inc(n)
        for reason, n in dead.items():
            self.dead_lettered.labels(reason=reason.value).inc(n)
        if duplicates:
            self.duplicates.inc(duplicates)
        if clock_skewed:
            self.clock_skewed.inc(clock_skewed)
        if life_safety:
            self.life_safety.inc(life_safety)

    def render(self) -> bytes:
        """Prometheus text exposition of every gateway metric (serve with :data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """Current value of one sample, e.g. ``value("dead_letters_total", reason="bad_json")`` (0 if absent)."""
        full = name if name.startswith("eldercare_") else f"eldercare_gateway_{name}"
        found = self.registry.get_sample_value(full, labels or None)
        return 0.0 if found is None else found


def render_metrics(metrics: GatewayMetrics) -> str:
    """Text exposition as ``str`` for the CLI (``eldercare gateway metrics``)."""
    return metrics.render().decode()


class RateLimitedWarnings:
    """Log at most ``burst`` warnings per ``period_s`` per reason; report how many were suppressed.

    Only the topic and reason are logged, never payload contents, which may hold personal data.
    """

    def __init__(
        self,
        *,
        logger: logging.Logger,
        burst: int = 5,
        period_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.burst = burst
        self.period_s = period_s
        self.clock = clock
        self._window_start: dict[Reason, float] = {}
        self._logged: Tally[Reason] = Tally()
        self._suppressed: Tally[Reason] = Tally()

    def warn(self, *, topic: str, reason: Reason, detail: str) -> bool:
        """Log one refused message unless over the limit; True if it was logged."""
        now = self.clock()
        start = self._window_start.get(reason)
        if start is None or now - start >= self.period_s:
            suppressed = self._suppressed.pop(reason, 0)
            if suppressed and start is not None:
                self.logger.warning(
                    "%d more messages refused as %s in the last %.0f s", suppressed, reason.value, now - start
                )
            self._window_start[reason] = now
            self._logged[reason] = 0
        if self._logged[reason] >= self.burst:
            self._suppressed[reason] += 1
            return False
        self._logged[reason] += 1
        self.logger.warning("Refused message on %r: %s (%s)", topic, reason.value, detail[:200])
        return True
