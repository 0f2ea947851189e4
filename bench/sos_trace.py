"""Stage-by-stage timestamps of each benchmark SOS inside the backend (``python -m bench.latency --stages``).

Where a loaded SOS waits between the socket and the stored row: the hooks below wrap methods of the native MQTT
client, the gateway service, the backend and the alert service/store for the duration of one benchmark run (this
process only; no production code changes) and record, per benchmark site, the ``time.monotonic()`` at which its SOS
reached each stage:

* ``read`` — the event loop started handling the socket read that held the SOS's PUBLISH (``data_received``);
* ``parsed`` — that read's packets were parsed into messages (the listener's inbox has them);
* ``batch`` — the gateway service started on the batch holding the SOS (decode, dedupe, fast path);
* ``fast`` — the SOS reading reached the backend's fast path (decoded; the messages before it in the batch done);
* ``detected`` — the engine handed the alert to the backend (``Backend._dispatch``);
* ``task`` — the alert's raise task started on the loop (``AlertService.raise_alert``);
* ``lane`` — the store work started (site context first): on the event loop when the write lock is free (SQLite),
  else (or with ``--sos-lane``) on a thread of the urgent lane;
* ``insert`` — the insert itself started (``AlertStore.raise_alert``: write gate, INSERT … RETURNING, COMMIT);
* ``stored`` — that call returned (the row is committed), as the benchmark's ``stored`` stage.

It also records the size of the read (bytes, messages) and of the batch (messages, the SOS's position in it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from alerts.service import AlertService
from alerts.store.repository import AlertStore
from detection.models import Alert, AlertType
from gateway import mqtt_wire
from gateway.models import RawMessage, Reading
from gateway.service import GatewayService

TRACE_STAGES: Final = ("read", "parsed", "batch", "fast", "detected", "task", "lane", "insert", "stored")
"""Stages in pipeline order (see the module docstring)."""
_SOS_SUFFIX: Final = "/wristband/band1/event"


@dataclass(slots=True)
class SosTrace:
    """One SOS's stage times (monotonic seconds) and the sizes of its read and batch."""

    times: dict[str, float] = field(default_factory=dict)
    read_bytes: int = 0
    read_messages: int = 0
    batch_messages: int = 0
    batch_index: int = 0
    lane_cpu_ms: float = 0.0
    """CPU time of the thread doing the store work, ``lane`` to ``stored`` (the rest of that step is waiting)."""


class StageTracer:
    """Installs the hooks (class attributes for the listener and gateway service) until :meth:`close`."""

    def __init__(self, sites: set[str]) -> None:
        self.sites = sites
        self.traces: dict[str, SosTrace] = {}
        self._lock = threading.Lock()
        self._undo: list[tuple[Any, str, Any]] = []
        tracer = self

        conn_cls = mqtt_wire._Connection
        data_received = conn_cls.data_received

        def traced_data_received(conn: Any, data: bytes) -> None:
            conn._trace_read = (time.monotonic(), len(data))
            data_received(conn, data)

        listener_cls = mqtt_wire.NativeListener
        deliver = listener_cls._deliver

        def traced_deliver(owner: Any, conn: Any, messages: list[RawMessage]) -> None:
            now = time.monotonic()
            read_t, read_bytes = getattr(conn, "_trace_read", (now, 0))
            for m in messages:
                site = tracer._site_of(m.topic)
                if site is not None:
                    trace = tracer._trace(site)
                    trace.times.setdefault("read", read_t)
                    trace.times.setdefault("parsed", now)
                    trace.read_bytes, trace.read_messages = read_bytes, len(messages)
            deliver(owner, conn, messages)

        decoded = GatewayService._decoded

        def traced_decoded(service: GatewayService, raw: Sequence[RawMessage]) -> Iterator[Any]:
            now = time.monotonic()
            for k, m in enumerate(raw):
                site = tracer._site_of(m.topic)
                if site is not None:
                    trace = tracer._trace(site)
                    if "batch" not in trace.times:
                        trace.times["batch"] = now
                        trace.batch_messages, trace.batch_index = len(raw), k
            return decoded(service, raw)

        self._patch(conn_cls, "data_received", traced_data_received)
        self._patch(listener_cls, "_deliver", traced_deliver)
        self._patch(GatewayService, "_decoded", traced_decoded)

        raise_alert = AlertService.raise_alert

        async def traced_raise(service: AlertService, alert: Alert, **kwargs: Any) -> Any:
            tracer._mark(alert, "task")
            return await raise_alert(service, alert, **kwargs)  # on_stored: the backend's commit signal

        store_raise = AlertService._store_raise

        def traced_store_raise(service: AlertService, alert: Alert, now: int, *args: Any, **kwargs: Any) -> Any:
            tracer._mark(alert, "lane")
            cpu = time.thread_time()
            try:
                return store_raise(service, alert, now, *args, **kwargs)
            finally:
                if alert.type == AlertType.SOS and alert.site in tracer.sites:
                    tracer._trace(alert.site).lane_cpu_ms = (time.thread_time() - cpu) * 1000

        insert = AlertStore.raise_alert

        def traced_insert(store: AlertStore, alert: Alert, **kwargs: Any) -> Any:
            tracer._mark(alert, "insert")
            result = insert(store, alert, **kwargs)
            tracer._mark(alert, "stored")
            return result

        self._patch(AlertService, "raise_alert", traced_raise)
        self._patch(AlertService, "_store_raise", traced_store_raise)
        self._patch(AlertStore, "raise_alert", traced_insert)

    def _patch(self, owner: Any, name: str, new: Any) -> None:
        self._undo.append((owner, name, owner.__dict__.get(name)))  # None: inherited, removed again on close
        setattr(owner, name, new)

    def _site_of(self, topic: str) -> str | None:
        if not topic.endswith(_SOS_SUFFIX):
            return None
        site = topic.split("/", 3)[2]
        return site if site in self.sites else None

    def _trace(self, site: str) -> SosTrace:
        with self._lock:
            trace = self.traces.get(site)
            if trace is None:
                trace = self.traces[site] = SosTrace()
            return trace

    def _mark(self, alert: Alert, stage: str) -> None:
        if alert.type == AlertType.SOS and alert.site in self.sites:
            self._trace(alert.site).times.setdefault(stage, time.monotonic())

    def wrap_fast_path(self, fast_path: Callable[[Reading], None]) -> Callable[[Reading], None]:
        """The backend's fast path, marking ``fast`` for a benchmark SOS (installed on the instance)."""

        def traced(reading: Reading) -> None:
            if reading.site in self.sites and reading.device == "band1":
                self._trace(reading.site).times.setdefault("fast", time.monotonic())
            fast_path(reading)

        return traced

    def mark_detected(self, site: str, t: float) -> None:
        """The benchmark's own ``detected`` time (its dispatch hook)."""
        self._trace(site).times.setdefault("detected", t)

    def close(self) -> None:
        """Remove the hooks."""
        for owner, name, old in reversed(self._undo):
            if old is None:
                delattr(owner, name)
            else:
                setattr(owner, name, old)
        self._undo.clear()

    def breakdown(self, sites: Sequence[str], published: dict[str, float]) -> list[str]:
        """Markdown table: per stage step, p50 / p99 / max ms over ``sites``, and how the slowest presses split.

        Each step is the time from the previous stage to this one; ``published`` gives each site's publish time.
        """
        steps = ("published", *TRACE_STAGES)
        rows: dict[str, list[float]] = {s: [] for s in TRACE_STAGES}
        totals: list[tuple[float, str]] = []
        for site in sites:
            trace = self.traces.get(site)
            if trace is None or site not in published:
                continue
            times = {"published": published[site], **trace.times}
            if not all(s in times for s in steps):
                continue
            for prev, cur in zip(steps, steps[1:], strict=False):
                rows[cur].append((times[cur] - times[prev]) * 1000)
            totals.append(((times["stored"] - times["published"]) * 1000, site))
        if not totals:
            return ["(no complete stage trace)"]
        lines = [
            f"stage steps over {len(totals)} presses (ms from the previous stage):",
            "| step | p50 | p99 | max | mean |",
            "|---|---:|---:|---:|---:|",
        ]
        prev = "published"
        for stage in TRACE_STAGES:
            arr = np.asarray(rows[stage])
            lines.append(
                f"| {prev} → {stage} | {np.percentile(arr, 50):.2f} | {np.percentile(arr, 99):.2f} "
                f"| {arr.max():.2f} | {arr.mean():.2f} |"
            )
            prev = stage
        totals.sort(reverse=True)
        worst = max(1, len(totals) // 50)
        lines.append(f"the slowest {worst} presses (≥ p98), step by step (ms):")
        for total, site in totals[:worst]:
            trace = self.traces[site]
            times = {"published": published[site], **trace.times}
            parts = ", ".join(
                f"{cur} {(times[cur] - times[prev]) * 1000:.1f}" for prev, cur in zip(steps, steps[1:], strict=False)
            )
            lines.append(
                f"  {total:.1f} ms: {parts}; read {trace.read_bytes} B / {trace.read_messages} msgs, "
                f"batch {trace.batch_messages} msgs (SOS at {trace.batch_index})"
            )
        cpu = np.asarray([self.traces[s].lane_cpu_ms for _, s in totals])
        wall = np.asarray([(self.traces[s].times["stored"] - self.traces[s].times["lane"]) * 1000 for _, s in totals])
        lines.append(
            f"lane → stored: wall p50 {np.percentile(wall, 50):.2f} / p99 {np.percentile(wall, 99):.2f} ms, of which "
            f"the storing thread's CPU p50 {np.percentile(cpu, 50):.2f} / p99 {np.percentile(cpu, 99):.2f} ms"
        )
        reads = np.asarray([self.traces[s].read_messages for _, s in totals])
        batches = np.asarray([self.traces[s].batch_messages for _, s in totals])
        lines.append(
            f"messages in the SOS's read: p50 {np.percentile(reads, 50):.0f}, max {reads.max()}; "
            f"in its batch: p50 {np.percentile(batches, 50):.0f}, max {batches.max()}"
        )
        return lines
