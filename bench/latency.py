"""``eldercare bench latency``: SOS press → alert stored → notification received, under a 10,000-home load.

One run, on real components (mosquitto, influxd, the whole :class:`~eldercare.backend.Backend`, apprise
``json://`` to a local HTTP receiver), measures for every SOS press (wristband SOS key, a life-safety event;
each press on a distinct home so nothing is deduplicated away) the time from the publish call to:

* **broker** — a plain paho subscriber (backend account, same QoS 1) receives the same message: the floor;
* **detected** — the detection engine hands the alert to the backend (``Backend._dispatch``);
* **stored** — the alert row is committed (``AlertStore.raise_alert`` returned);
* **notified** — the local receiver got the first HTTP notification of that alert.

Three phases give the baselines the ratios are taken against, all in the same run:

1. ``idle``: single presses, spaced, with no background traffic (the same path with nothing else to do);
2. ``loaded``: the same single presses while ``homes`` simulated homes publish their normal day in real time
   (firmware_sim, one MQTT connection per home, run in a child process like real gateways would be);
3. ``burst``: ``burst`` presses at once on distinct homes (a 10× burst), repeated, under the same load.

The timing hooks wrap two methods of the running backend's instances (no production code changes): the
engine's alert sink and the store's ``raise_alert``. All timestamps are ``time.monotonic()`` in this process.
The floor subscriber uses paho directly (as ``bench/ingest.py`` does): a baseline, not part of the pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import logging
import multiprocessing as mp
import os
import pstats
import re
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any, Final

import numpy as np
from pydantic import SecretStr

from alerts.store.records import RaiseResult
from bench.sos_trace import StageTracer
from detection.models import Alert, AlertType
from eldercare.backend import Backend
from eldercare.inbox import JsonInbox
from eldercare.settings import Settings
from eldercare.stack import Broker, local_stack
from firmware_sim.live import Fleet
from firmware_sim.models import DAY_MS, TZ_OFFSET_MS
from firmware_sim.renderers import HomeRenderer
from firmware_sim.scenario import Simulation, generate
from firmware_sim.wire import WILL_PAYLOAD, encode_wristband_event
from gateway.mqtt_wire import NativeListener
from gateway.provisioning import gateway_password

_LOG: Final = logging.getLogger("bench.latency")
STAGES: Final = ("broker", "detected", "stored", "notified")
"""Stages timed from the publish call, in pipeline order."""
PHASES: Final = ("idle", "loaded", "burst")
TARGET_STORED_P99_MS: Final = 100.0
"""Issue 7: p99 publish → alert stored, single presses under load."""
TARGET_BURST_P99_MS: Final = 1000.0
"""Issue 7: p99 publish → alert stored under a 10× burst."""
TARGET17_STORED_P99_MS: Final = 20.0
"""Issue 17: p99 publish → alert stored at 10,000 homes (single presses under load)."""
TARGET17_BURST_P99_MS: Final = 200.0
"""Issue 17: p99 publish → alert stored under a 10× burst."""
SOS_DEVICE: Final = "band1"
_ALERT_ID_RE: Final = re.compile(r"编号 (\d+)")
_RENDER_CHUNK_MS: Final = 10_000
_SEED: Final = 7
STALL_MS: Final = 50.0
"""On-loop calls at least this long are listed one by one."""
WARMUP_PRESSES: Final = 5
"""Presses on extra homes before the idle phase, not reported: first imports, first SQL, first HTTP connection."""


def _local_midnight(now_ms: int) -> int:
    return (now_ms + TZ_OFFSET_MS) // DAY_MS * DAY_MS - TZ_OFFSET_MS


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


# ------------------------------------------------------------------------------------------------- results


@dataclass(slots=True)
class Press:
    """One SOS press and the monotonic time each stage saw it (None: never seen)."""

    site: str
    phase: str
    published: float
    broker: float | None = None
    detected: float | None = None
    stored: float | None = None
    notified: float | None = None
    alert_id: int | None = None

    def ms(self, stage: str) -> float | None:
        """Milliseconds from the publish call to ``stage``."""
        t: float | None = getattr(self, stage)
        return None if t is None else (t - self.published) * 1000

    @property
    def complete(self) -> bool:
        """True once every stage has seen this press."""
        return all(getattr(self, s) is not None for s in STAGES)


@dataclass(slots=True)
class StageStats:
    """Latency distribution of one stage in one phase (milliseconds)."""

    phase: str
    stage: str
    count: int
    missing: int
    p50: float
    p99: float
    max: float


@dataclass(slots=True)
class LatencyReport:
    """Everything one run measured, plus the conditions it ran in."""

    homes: int
    presses: int
    burst: int
    burst_rounds: int
    samples: list[Press] = field(default_factory=list)
    background_published: int = 0
    background_connected: int = 0
    background_connect_s: float = 0.0
    background_lag_ms_max: float = 0.0
    background_alerts: int = 0
    load_avg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    loaded_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    diagnostics: dict[str, list[str]] = field(default_factory=dict)
    """Per phase: event-loop lag and the backend's on-loop work (calls, p99, max; stalls listed)."""
    profile: str = ""
    """cProfile of the on-loop work, when asked for."""
    stages: dict[str, list[str]] = field(default_factory=dict)
    """Per phase: where each SOS spent its time inside the backend (``--stages``, :mod:`bench.sos_trace`)."""

    @property
    def background_rate(self) -> float:
        """Background messages per second actually published while loaded."""
        return self.background_published / self.loaded_seconds if self.loaded_seconds > 0 else 0.0

    def stats(self, phase: str, stage: str) -> StageStats:
        """p50/p99/max of one stage in one phase (NaN when nothing was measured)."""
        rows = [p for p in self.samples if p.phase == phase]
        values = [v for p in rows if (v := p.ms(stage)) is not None]
        if not values:
            nan = float("nan")
            return StageStats(phase, stage, 0, len(rows), nan, nan, nan)
        arr = np.asarray(values)
        return StageStats(
            phase=phase,
            stage=stage,
            count=len(values),
            missing=len(rows) - len(values),
            p50=float(np.percentile(arr, 50)),
            p99=float(np.percentile(arr, 99)),
            max=float(arr.max()),
        )

    def table(self) -> str:
        """Markdown table: p50/p99 per phase and stage, with ratios to the idle run and to the broker floor."""
        lines = [
            "| phase | stage | n | lost | p50 ms | p99 ms | max ms | p50 vs idle | p99 vs idle | p50 vs broker |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for phase in PHASES:
            floor = self.stats(phase, "broker")
            for stage in STAGES:
                s = self.stats(phase, stage)
                if s.count == 0 and s.missing == 0:
                    continue
                idle = self.stats("idle", stage)
                lines.append(
                    f"| {phase} | {stage} | {s.count} | {s.missing} | {s.p50:.1f} | {s.p99:.1f} | {s.max:.1f} "
                    f"| {_ratio(s.p50, idle.p50)} | {_ratio(s.p99, idle.p99)} | {_ratio(s.p50, floor.p50)} |"
                )
        return "\n".join(lines)

    def verdict(self) -> list[str]:
        """Issue 7's two targets and issue 17's stricter ones, met or not, with the measured value."""
        loaded = self.stats("loaded", "stored").p99
        burst = self.stats("burst", "stored").p99

        def line(what: str, value: float, target: float, issue: int) -> str:
            met = "met" if value <= target else "MISSED"
            return f"p99 publish → stored{what}: {value:.1f} ms (issue {issue}: ≤ {target:.0f} ms): {met}"

        return [
            line(" under load", loaded, TARGET_STORED_P99_MS, 7),
            line(f", {self.burst}× burst", burst, TARGET_BURST_P99_MS, 7),
            line(" under load", loaded, TARGET17_STORED_P99_MS, 17),
            line(f", {self.burst}× burst", burst, TARGET17_BURST_P99_MS, 17),
        ]

    def summary(self) -> str:
        """Conditions of the run, the table and the verdict, ready to print."""
        la = self.load_avg
        head = [
            f"homes: {self.homes:,} background (simulated, one MQTT connection each: {self.background_connected:,} "
            f"connected in {self.background_connect_s:.1f} s); {self.background_published:,} background messages "
            f"in {self.loaded_seconds:.1f} s = {self.background_rate:,.0f}/s (worst publish lag "
            f"{self.background_lag_ms_max:,.0f} ms); {self.background_alerts} background alerts raised",
            f"presses: {self.presses} idle + {self.presses} loaded (spaced), {self.burst_rounds} bursts of "
            f"{self.burst}; {os.cpu_count()} cores, load average at the end {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}",
        ]
        diag = [f"{phase}: {line}" for phase, lines in self.diagnostics.items() for line in lines]
        stages = [line for phase, lines in self.stages.items() for line in (f"{phase}:", *lines)]
        return "\n".join([*head, "", self.table(), "", *self.verdict(), *self.notes, "", *diag, "", *stages])


def _ratio(value: float, base: float) -> str:
    if not (base > 0) or value != value:  # NaN-safe
        return ""
    return f"{value / base:.2f}×"


# ------------------------------------------------------------------------------------------------- probes


class _Receiver:
    """A real HTTP server for apprise ``json://``: records when each alert's notification arrived."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[int, float]] = []
        self.lock = threading.Lock()
        self._inbox = JsonInbox(self._record, name="bench-receiver")

    def _record(self, _path: str, body: dict[str, Any], arrived: float) -> int:
        match = _ALERT_ID_RE.search(str(body.get("message", "")))
        if match:
            with self.lock:
                self.arrivals.append((int(match.group(1)), arrived))
        return 200

    def url(self, path: str) -> str:
        """Apprise URL posting to ``/path`` on this server."""
        return self._inbox.url(path)

    def first_arrivals(self) -> dict[int, float]:
        """Alert id → when its first notification arrived."""
        out: dict[int, float] = {}
        with self.lock:
            for alert_id, t in self.arrivals:
                out[alert_id] = min(t, out.get(alert_id, t))
        return out

    def close(self) -> None:
        """Stop the server."""
        self._inbox.close()


class _BrokerFloor:
    """A bare paho subscriber (backend account, QoS 1) timing when the broker delivers each SOS."""

    def __init__(self, broker: Broker, sites: set[str]) -> None:
        import paho.mqtt.client as mqtt  # deliberate: a baseline measurement, see the module docstring
        from paho.mqtt.enums import CallbackAPIVersion

        self.seen: dict[str, float] = {}
        self.sites = sites
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-floor-{uuid.uuid4().hex[:6]}")
        self.client.username_pw_set(broker.backend_user, broker.backend_password)
        self.client.on_connect = lambda c, *_: c.subscribe(f"ec/v1/+/wristband/{SOS_DEVICE}/event", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.backend_port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("broker floor subscriber did not subscribe within 10 s")

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        now = time.monotonic()
        site = msg.topic.split("/", 3)[2]
        if site in self.sites and b'"sos"' in msg.payload:
            self.seen.setdefault(site, now)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


class _Presser:
    """The benchmark homes' gateways (one connection each) and the presses they make.

    A keeper thread pumps the connections all along (reads PUBACKs, sends keep-alives, even while the
    background load connects for a minute); a press takes the same lock, so it is published at once.
    """

    def __init__(self, broker: Broker, sim: Simulation, sites: list[str]) -> None:
        wanted = set(sites)
        gateways = [(h.site, h.gateway) for h in sim.homes if h.site in wanted]
        self.fleet = Fleet(
            sites=gateways, host=broker.host, port=broker.port, password_for=broker.gateway_password, keepalive=60
        )
        self.fleet.connect_all(timeout=60)
        self.presses: list[Press] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._keeper = threading.Thread(target=self._keep, name="bench-presser", daemon=True)
        self._keeper.start()

    def _keep(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                self.fleet.pump(0.01)
            time.sleep(0.001)  # let a press take the lock

    def _press(self, site: str, phase: str) -> None:
        gw = self.fleet.gateways[site]
        msg = encode_wristband_event(**gw.wire.stamp(SOS_DEVICE), ts=_wall_ms(), event="sos")
        self.presses.append(Press(site=site, phase=phase, published=time.monotonic()))
        # Without a network thread paho writes the packet to the socket inside publish().
        self.fleet.publish(site, msg.topic, msg.payload, retain=False)

    def singles(self, sites: list[str], phase: str, *, spacing_s: float) -> None:
        """One press at a time, ``spacing_s`` apart."""
        for site in sites:
            with self._lock:
                self._press(site, phase)
            time.sleep(spacing_s)

    def bursts(self, sites: list[str], *, size: int, every_s: float) -> None:
        """``size`` presses published back to back (distinct homes), every ``every_s`` seconds."""
        for k in range(0, len(sites), size):
            with self._lock:
                for site in sites[k : k + size]:
                    self._press(site, "burst")
            time.sleep(every_s)

    def close(self) -> None:
        """Stop the keeper, flush and disconnect."""
        self._closed.set()
        self._keeper.join(5)
        self.fleet.drain(timeout=5)
        self.fleet.close()


# ------------------------------------------------------------------------------------------------- background


def _render(sim: Simulation, indices: range, start_ms: int, end_ms: int) -> list[tuple[int, str, bytes]]:
    """The homes' messages received in ``[start_ms, end_ms)``, in received order.

    Rendering costs about half a millisecond per home and call whatever the window, so the whole run is
    rendered once, ahead of time, rather than in slices while publishing.
    """
    out: list[tuple[int, str, bytes]] = []
    for i in indices:
        renderer = HomeRenderer(
            plan=sim.plans[i],
            rng=np.random.Generator(np.random.PCG64([_SEED, i, 2])),
            mattress_cadence_s=sim.config.mattress_cadence_s,
        )
        recv, topics, payloads = renderer.render(start_ms, end_ms)
        out.extend(m for m in zip(recv, topics, payloads, strict=True) if start_ms <= m[0] < end_ms)
    out.sort(key=lambda m: m[0])
    return out


def _background(
    *,
    host: str,
    port: int,
    secret: str,
    homes_total: int,
    homes: int,
    start_ms: int,
    seconds: float,
    connected: MpEvent,
    stop: MpEvent,
    result: Connection,
) -> None:
    """Child process: ``homes`` gateways publish their simulated day in real (wall-clock) time until ``stop``.

    :class:`~firmware_sim.live.Fleet` holds the connections; the loop here reads only the sockets that are
    readable and runs keep-alives every few seconds, because ``Fleet.pump`` visits every gateway on each call
    (O(homes) per message: at 10,000 homes the publisher fell 20 s behind with it).
    """
    sim = generate(homes=homes_total, days=1, seed=_SEED, start_ms=start_ms)
    sites = [(h.site, h.gateway) for h in sim.homes[:homes]]
    t0 = time.monotonic()
    fleet = Fleet(sites=sites, host=host, port=port, password_for=lambda s: gateway_password(secret, s), keepalive=60)
    fleet.connect_all(timeout=600)
    connect_s = time.monotonic() - t0
    # Start far enough ahead that rendering finishes before the first message is due.
    t1 = time.monotonic()
    first_ms = _wall_ms() + int(max(5.0, homes * 0.001) * 1000)
    messages = _render(sim, range(homes), first_ms, first_ms + int(seconds * 1000))
    _LOG.info("background: %d messages rendered in %.1f s", len(messages), time.monotonic() - t1)
    gateways, selector = fleet.gateways, fleet.selector
    published, lag_max, last_misc = 0, 0.0, time.monotonic()

    def read(timeout: float) -> None:
        nonlocal last_misc
        for key, _ in selector.select(timeout=timeout):
            gateways[key.data].client.loop_read()
        now = time.monotonic()
        if now - last_misc >= 5.0:
            last_misc = now
            for gw in gateways.values():
                gw.client.loop_misc()
                if gw.client.want_write():
                    gw.client.loop_write()

    # Due times follow the wall clock, so device timestamps are (simulated) real time.
    def due_of(received_ms: int) -> float:
        return time.monotonic() + (received_ms - _wall_ms()) / 1000

    while messages and due_of(messages[0][0]) > time.monotonic() + 1.0:
        read(0.05)
    connected.set()
    loaded_t0 = time.monotonic()
    try:
        for received_ms, topic, payload in messages:
            if stop.is_set():
                break
            due = due_of(received_ms)
            while (wait := due - time.monotonic()) > 0 and not stop.is_set():
                read(min(wait, 0.05))
            lag_max = max(lag_max, (time.monotonic() - due) * 1000)
            if payload == WILL_PAYLOAD:
                continue  # a simulated gateway outage: not played here, the connection stays up
            site = topic.split("/", 3)[2]
            # Without a network thread paho writes the packet at once; the PUBACK is read by read().
            fleet.publish(site, topic, payload, retain=topic.endswith("/status") and "/gateway/" in topic)
            published += 1
            read(0)
        loaded_s = time.monotonic() - loaded_t0
        fleet.drain(timeout=5)
    finally:
        fleet.close()
    result.send(
        {
            "published": published,
            "connected": len(sites),
            "connect_s": connect_s,
            "lag_ms_max": lag_max,
            "seconds": loaded_s,
            "rendered": len(messages),
        }
    )


# ------------------------------------------------------------------------------------------------- the run


class _Hooks:
    """Timing hooks on the running backend: engine sink and store commit, keyed by benchmark site."""

    def __init__(self, backend: Backend, sites: set[str], *, profile: bool = False) -> None:
        self.detected: dict[str, float] = {}
        self.stored: dict[str, tuple[float, int]] = {}
        self.background_alerts = 0
        self.sites = sites
        dispatch = backend._dispatch
        raise_alert = backend.store.raise_alert

        def timed_dispatch(alert: Alert) -> None:
            if alert.site in self.sites and alert.type == AlertType.SOS:
                self.detected.setdefault(alert.site, time.monotonic())
            elif alert.site not in self.sites:
                self.background_alerts += 1
            dispatch(alert)

        def timed_raise(alert: Alert, **kwargs: Any) -> RaiseResult:
            result = raise_alert(alert, **kwargs)
            if alert.site in self.sites and alert.type == AlertType.SOS:
                self.stored.setdefault(alert.site, (time.monotonic(), result.record.id))
            return result

        backend._dispatch = timed_dispatch  # type: ignore[method-assign]
        backend.store.raise_alert = timed_raise  # type: ignore[method-assign]
        # Work the backend does on its event loop, timed call by call: where a stalled press waited.
        self.costs: dict[str, list[float]] = {}
        self.stalls: list[tuple[float, str, float, int]] = []
        self.phase_t0 = time.monotonic()
        self.profile = cProfile.Profile() if profile else None
        for name in ("_fast_path", "_detect_durable", "_engine_tick", "save_snapshot"):
            setattr(backend, name, self._timed(name, getattr(backend, name)))
        self.loop_lag: list[float] = []
        # The periodic snapshot (encoded on the loop in slices, or in one call): when, and how long to durable.
        self.snapshots: list[tuple[float, float]] = []
        save_async = backend.save_snapshot_async

        async def timed_save() -> None:
            t = time.perf_counter()
            try:
                await save_async()
            finally:
                self.snapshots.append((time.monotonic() - self.phase_t0, (time.perf_counter() - t) * 1000))

        backend.save_snapshot_async = timed_save  # type: ignore[method-assign]

    def _timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        costs = self.costs.setdefault(name, [])

        def timed(*args: Any) -> Any:
            t = time.perf_counter()
            if self.profile is not None:
                self.profile.enable()
            try:
                return fn(*args)
            finally:
                if self.profile is not None:
                    self.profile.disable()
                ms = (time.perf_counter() - t) * 1000
                costs.append(ms)
                if ms >= STALL_MS:
                    size = len(args[0]) if args and isinstance(args[0], list | tuple) else 1
                    self.stalls.append((time.monotonic() - self.phase_t0, name.strip("_"), ms, size))

        return timed

    def reset(self) -> None:
        """Start a new phase: forget the costs measured so far."""
        for values in self.costs.values():
            values.clear()
        self.loop_lag.clear()
        self.stalls.clear()
        self.snapshots.clear()
        self.phase_t0 = time.monotonic()

    async def watch_loop(self, stop: asyncio.Event, *, every_s: float = 0.005) -> None:
        """Record how late a short sleep wakes up: the event loop's responsiveness, in ms."""
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(every_s)
            self.loop_lag.append((time.perf_counter() - t - every_s) * 1000)

    def describe(self) -> list[str]:
        """One line per timed activity: calls, p99, max and total milliseconds."""
        out = []
        if self.loop_lag:
            lag = np.asarray(self.loop_lag)
            out.append(
                f"event-loop wake-up lag: p50 {np.percentile(lag, 50):.1f} ms, p99 {np.percentile(lag, 99):.1f} ms, "
                f"max {lag.max():.1f} ms"
            )
        for name, values in self.costs.items():
            if values:
                arr = np.asarray(values)
                out.append(
                    f"on-loop {name.strip('_')}: {arr.size} calls, p99 {np.percentile(arr, 99):.2f} ms, "
                    f"max {arr.max():.1f} ms, total {arr.sum():,.0f} ms"
                )
        for at, name, ms, size in self.stalls:
            out.append(f"stall: {name} took {ms:.0f} ms ({size} readings) at +{at:.1f} s")
        if self.snapshots:
            saves = ", ".join(f"+{at:.1f} s ({ms:.0f} ms)" for at, ms in self.snapshots)
            out.append(f"snapshots saved (start, time to durable): {saves}")
        return out


def _fill(presses: list[Press], hooks: _Hooks, floor: _BrokerFloor, receiver: _Receiver) -> None:
    arrivals = receiver.first_arrivals()
    for p in presses:
        p.broker = floor.seen.get(p.site)
        p.detected = hooks.detected.get(p.site)
        if (stored := hooks.stored.get(p.site)) is not None:
            p.stored, p.alert_id = stored
            p.notified = arrivals.get(p.alert_id)


async def _settle(
    presses: list[Press], hooks: _Hooks, floor: _BrokerFloor, receiver: _Receiver, timeout: float
) -> None:
    """Wait until every press went through every stage (or the timeout: the rest count as lost)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _fill(presses, hooks, floor, receiver)
        if all(p.complete for p in presses):
            return
        await asyncio.sleep(0.1)


async def _measure(
    *,
    broker: Broker,
    influx_url: str,
    work: Path,
    homes: int,
    presses: int,
    burst: int,
    burst_rounds: int,
    spacing_s: float,
    warmup_s: float,
    profile: bool,
    snapshot_every_s: float,
    snapshot_slice_ms: float,
    stages: bool = False,
    sos_lane: bool = False,
) -> LatencyReport:
    report = LatencyReport(homes=homes, presses=presses, burst=burst, burst_rounds=burst_rounds)
    bench_n = WARMUP_PRESSES + 2 * presses + burst * burst_rounds
    start_ms = _local_midnight(_wall_ms())
    t = time.monotonic()
    sim = generate(homes=homes + bench_n, days=1, seed=_SEED, start_ms=start_ms)
    bench_sites = [h.site for h in sim.homes[homes:]]
    warm_sites, rest = bench_sites[:WARMUP_PRESSES], bench_sites[WARMUP_PRESSES:]
    idle_sites, loaded_sites, burst_sites = rest[:presses], rest[presses : 2 * presses], rest[2 * presses :]
    _LOG.info("simulation planned for %d homes in %.1f s", len(sim.homes), time.monotonic() - t)

    receiver = _Receiver()
    doc: dict[str, Any] = dict(sim.registry)
    for worker in doc["workers"]:
        worker["channels"] = [receiver.url(str(worker["id"]))]
    t = time.monotonic()
    broker.provision([h.site for h in sim.homes], timeout=120)
    _LOG.info("provisioned %d gateway accounts in %.1f s", len(sim.homes), time.monotonic() - t)

    settings = Settings(
        data_dir=work / "backend",
        mqtt_host=broker.host,
        mqtt_port=broker.backend_port,
        mqtt_username=broker.backend_user,
        mqtt_password=SecretStr(broker.backend_password),
        mqtt_client_id=f"bench-{uuid.uuid4().hex[:6]}",
        influx_url=influx_url,
        influx_db="bench_latency",
        link_secret=SecretStr(secrets.token_urlsafe(24)),
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    backend = Backend(settings, registry=doc, snapshot_every_s=snapshot_every_s, snapshot_slice_ms=snapshot_slice_ms)
    _LOG.info("backend built (registry imported) in %.1f s", time.monotonic() - t)
    tracer = StageTracer(set(bench_sites)) if stages else None  # before the hooks: they keep bound methods
    backend.service.life_safety_on_loop = not sos_lane
    NativeListener.linger_ends_on_event = not sos_lane
    hooks = _Hooks(backend, set(bench_sites), profile=profile)
    if tracer is not None:
        backend._fast_path = tracer.wrap_fast_path(backend._fast_path)  # type: ignore[method-assign,assignment]

    def trace(phase: str, sites: list[str]) -> None:
        if tracer is not None:
            for site, t in hooks.detected.items():
                tracer.mark_detected(site, t)
            published = {p.site: p.published for p in presser.presses} if presser is not None else {}
            report.stages[phase] = tracer.breakdown(sites, published)

    stop = asyncio.Event()
    run = asyncio.create_task(backend.run(stop=stop), name="backend")
    watch = asyncio.create_task(hooks.watch_loop(stop), name="loop-watch")
    child: mp.process.BaseProcess | None = None
    ctx = mp.get_context("spawn")
    bg_stop = ctx.Event()
    floor: _BrokerFloor | None = None
    presser: _Presser | None = None
    try:
        await asyncio.wait_for(backend.ready.wait(), 120)
        floor = _BrokerFloor(broker, set(bench_sites))
        presser = await asyncio.to_thread(_Presser, broker, sim, bench_sites)

        await asyncio.to_thread(presser.singles, warm_sites, "warmup", spacing_s=spacing_s)
        await _settle(presser.presses, hooks, floor, receiver, 30)
        hooks.reset()
        _LOG.info("phase idle: %d presses", presses)
        await asyncio.to_thread(presser.singles, idle_sites, "idle", spacing_s=spacing_s)
        await _settle(presser.presses, hooks, floor, receiver, 30)
        report.diagnostics["idle"] = hooks.describe()
        trace("idle", idle_sites)

        bg_connected = ctx.Event()
        parent_end, child_end = ctx.Pipe(duplex=False)
        duration_s = warmup_s + presses * spacing_s + burst_rounds * 1.0 + 120
        child = ctx.Process(
            target=_background,
            name="bench-background",
            kwargs={
                "host": broker.host,
                "port": broker.port,
                "secret": broker.secret,
                "homes_total": homes + bench_n,
                "homes": homes,
                "start_ms": start_ms,
                "seconds": duration_s,
                "connected": bg_connected,
                "stop": bg_stop,
                "result": child_end,
            },
        )
        child.start()
        _LOG.info("background: connecting %d homes", homes)
        while not bg_connected.is_set():
            if not child.is_alive():
                raise RuntimeError("the background load process died before connecting")
            await asyncio.sleep(0.5)
        _LOG.info("background publishing; warm-up %.0f s", warmup_s)
        await asyncio.sleep(warmup_s)
        hooks.reset()

        _LOG.info("phase loaded: %d presses", presses)
        await asyncio.to_thread(presser.singles, loaded_sites, "loaded", spacing_s=spacing_s)
        await _settle(presser.presses, hooks, floor, receiver, 30)
        report.diagnostics["loaded"] = hooks.describe()
        trace("loaded", loaded_sites)
        hooks.reset()
        _LOG.info("phase burst: %d × %d presses", burst_rounds, burst)
        await asyncio.to_thread(presser.bursts, burst_sites, size=burst, every_s=1.0)
        await _settle(presser.presses, hooks, floor, receiver, 30)
        report.diagnostics["burst"] = hooks.describe()
        trace("burst", burst_sites)

        bg_stop.set()
        if await asyncio.to_thread(parent_end.poll, 60):
            bg = parent_end.recv()
            report.background_published = bg["published"]
            report.background_connected = bg["connected"]
            report.background_connect_s = bg["connect_s"]
            report.background_lag_ms_max = bg["lag_ms_max"]
            report.loaded_seconds = bg["seconds"]
        report.background_alerts = hooks.background_alerts
        if hooks.profile is not None:
            text = io.StringIO()
            pstats.Stats(hooks.profile, stream=text).sort_stats("cumulative").print_stats(25)
            report.profile = text.getvalue()
        with contextlib.suppress(OSError):
            report.load_avg = _loadavg()
    finally:
        bg_stop.set()
        if child is not None:
            await asyncio.to_thread(child.join, 30)
            if child.is_alive():
                child.kill()
        if presser is not None:
            if floor is not None:
                _fill(presser.presses, hooks, floor, receiver)
            report.samples = list(presser.presses)
            await asyncio.to_thread(presser.close)
        if floor is not None:
            floor.close()
        stop.set()
        await asyncio.wait_for(run, 60)
        await watch
        receiver.close()
        if tracer is not None:
            tracer.close()
        NativeListener.linger_ends_on_event = True
    return report


def _loadavg() -> tuple[float, float, float]:
    parts = Path("/proc/loadavg").read_text().split()
    return float(parts[0]), float(parts[1]), float(parts[2])


def run_bench_latency(
    *,
    homes: int = 10_000,
    presses: int = 200,
    burst: int = 10,
    data_dir: Path | None = None,
    burst_rounds: int = 10,
    spacing_s: float = 0.1,
    warmup_s: float = 25.0,
    profile: bool = False,
    snapshot_every_s: float = 30.0,
    snapshot_slice_ms: float = 1.0,
    stages: bool = False,
    broker_nagle: bool = False,
    sos_lane: bool = False,
) -> LatencyReport:
    """Run the whole benchmark on a fresh local stack (in ``data_dir`` or a temporary directory).

    Args:
        homes: simulated homes publishing in the background during the loaded and burst phases.
        presses: single presses in the idle phase, and again in the loaded phase (distinct homes).
        burst: presses published back to back in one burst (distinct homes).
        data_dir: where the servers and the SQLite store live; a temporary directory by default.
        burst_rounds: how many bursts, one second apart.
        spacing_s: time between single presses.
        warmup_s: background traffic before the loaded phase starts; 25 s lets every home send its first
            mattress sample (20 s cadence), so the engine's one-off per-home set-up is not counted.
        profile: cProfile the backend's on-loop work (slows it down a little) into ``report.profile``.
        snapshot_every_s: the backend's engine-snapshot period (production: 30 s); shorter makes presses
            coincide with a snapshot more often.
        snapshot_slice_ms: the backend's snapshot slice; 0 takes it in one blocking call (the old method).
        stages: time each SOS stage by stage inside the backend (:mod:`bench.sos_trace`) into ``report.stages``.
        broker_nagle: start the broker with Nagle's algorithm on (mosquitto's default; before 2026-12-03 the
            stack's too), for a before/after comparison.
        sos_lane: the SOS path before 2026-12-03: life-safety alerts stored on the urgent lane's threads only, not
            on the loop, and a lingering telemetry batch not cut short by an event.

    Returns:
        Every press with its stage times, the background's conditions and per-phase diagnostics.
    """
    if homes < 0 or presses < 1 or burst < 1 or burst_rounds < 1:
        raise ValueError("need homes ≥ 0, presses ≥ 1, burst ≥ 1, burst_rounds ≥ 1")
    with contextlib.ExitStack() as stack:
        work = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-latency-")))
        broker, influxd = stack.enter_context(local_stack(data_dir=work, tcp_nodelay=not broker_nagle))
        return asyncio.run(
            _measure(
                broker=broker,
                influx_url=influxd.url,
                work=work,
                homes=homes,
                presses=presses,
                burst=burst,
                burst_rounds=burst_rounds,
                spacing_s=spacing_s,
                warmup_s=warmup_s,
                profile=profile,
                snapshot_every_s=snapshot_every_s,
                snapshot_slice_ms=snapshot_slice_ms,
                stages=stages,
                sos_lane=sos_lane,
            )
        )
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow exceptions


def main(argv: list[str] | None = None, *, out: Callable[[str], None] = print) -> None:
    """``python -m bench.latency --homes N``: run and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--homes", type=int, default=10_000)
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--burst-rounds", type=int, default=10)
    parser.add_argument("--spacing-ms", type=float, default=100.0)
    parser.add_argument("--warmup-s", type=float, default=25.0)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--profile", action="store_true", help="cProfile the backend's on-loop work and print it")
    parser.add_argument("--snapshot-every-s", type=float, default=30.0, help="engine snapshot period")
    parser.add_argument("--snapshot-slice-ms", type=float, default=1.0, help="0: one blocking call (old method)")
    parser.add_argument("--stages", action="store_true", help="time each SOS stage by stage inside the backend")
    parser.add_argument("--broker-nagle", action="store_true", help="broker with Nagle on (mosquitto's default)")
    parser.add_argument("--sos-lane", action="store_true", help="the old SOS path: urgent lane only, full linger")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("eldercare", "gateway", "ingest", "alerts", "firmware_sim", "apprise", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    _LOG.setLevel(logging.INFO)
    report = run_bench_latency(
        homes=args.homes,
        presses=args.presses,
        burst=args.burst,
        data_dir=args.data_dir,
        burst_rounds=args.burst_rounds,
        spacing_s=args.spacing_ms / 1000,
        warmup_s=args.warmup_s,
        profile=args.profile,
        snapshot_every_s=args.snapshot_every_s,
        snapshot_slice_ms=args.snapshot_slice_ms,
        stages=args.stages,
        broker_nagle=args.broker_nagle,
        sos_lane=args.sos_lane,
    )
    out(report.summary())
    if report.profile:
        out(report.profile)


if __name__ == "__main__":
    main()
