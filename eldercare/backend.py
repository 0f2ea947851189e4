"""The whole backend in one process: ingest pipeline → detection core → alert service (and its timers).

Order of work for each MQTT batch (see ``eldercare.pipeline``): life-safety readings go through the
detection core synchronously on arrival (fast path) and their alerts are raised at once; every batch,
once durable, feeds the behavioural and device-health detectors, in slices of :data:`DETECT_SLICE` readings with
the event loop free between them (a life-safety reading arriving meanwhile goes first). Three periodic loops run
beside it: the detection timers (inactivity, not back in bed, offline…), the alert service's escalation timers,
and the engine snapshot that, together with the readings stored in InfluxDB, rebuilds the detection
state after a restart so no timer is lost. The snapshot is encoded on the loop in slices of about a
millisecond with pauses between them (the engine is not thread-safe; see
:class:`detection.snapshot.SnapshotCapture`) and written, fsynced and renamed into place in a thread, so a
life-safety reading never waits behind it.

Recovery never delays live work (issue 13, R7): the pipeline connects and processes at once. While the
detection state is rebuilt in the background (snapshot decoded home by home, then InfluxDB streamed in one
chunked query per device kind and replayed in windows of event time, so memory stays bounded whatever the
outage), a life-safety reading goes through a separate, empty engine and its alert is raised at once; every other
durable batch is kept in a bounded buffer and fed to the rebuilt engine afterwards.
:attr:`Backend.recovery` says whether the backend is still catching up (for ``/readyz`` and the console).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

from alerts.arc.channel import ArcChannel
from alerts.arc.dc09 import parse_key
from alerts.arc.events import DEFAULT_CODES, ArcConfig
from alerts.checkins import CheckInRelay
from alerts.escalation import PolicyBook
from alerts.guardians import GuardianLinks, GuardianNotifier
from alerts.learned import LearnedPublisher
from alerts.links import LinkSigner
from alerts.notices import NoticeSync
from alerts.notify import AppriseNotifier, Notifier
from alerts.raising import (
    SHUTDOWN_WAITS_FOR_RAISES_S,
    SNAPSHOT_WAITS_FOR_RAISES_S,
    Raiser,
    already_stored,
    resume_owed,
)
from alerts.service import AlertService
from alerts.store.away import AwayStore
from alerts.store.guardians import GuardianStore
from alerts.store.learned import LearnedStore
from alerts.store.repository import AlertStore
from detection.baseline import Baseline, DaySummary, fit_baselines
from detection.config import DetectConfig
from detection.day_profile import routine_score
from detection.engine import Engine
from detection.errors import SnapshotError
from detection.homes import HomeRegistry
from detection.models import Alert
from detection.snapshot import load_snapshot
from eldercare.pipeline import directory_from_settings, run_pipeline
from eldercare.settings import Settings, influx_client, mqtt_login, policies_in_force
from gateway.downlink import CommandPublisher
from gateway.listener import Listener
from gateway.metrics import GatewayMetrics
from gateway.models import Reading
from gateway.provisioning import StaticDirectory, sites_from_registry
from gateway.retry import Backoff
from gateway.watch.commands import WatchCommandRouter
from gateway.watch.registry import watches_from_registry
from gateway.watch.server import WatchServer
from ingest.errors import IngestError, QueryError
from ingest.history import stored_windows
from ingest.reader import InfluxReader

_LOG: Final = logging.getLogger("eldercare.backend")
NO_SNAPSHOT_LOOKBACK_MS: Final = 6 * 3600 * 1000
"""How much of InfluxDB a start without a detection snapshot replays (a night's bed exit); a partition worker's
take-over without one too (eldercare/partition_worker.py)."""
SNAPSHOT_LOOKBACK_MS: Final = 10 * 60_000
"""Readings this much older than the snapshot are replayed too (late arrivals; duplicates skip); also on a
partition worker's take-over."""
REPLAY_WINDOW_MS: Final = 60_000
"""Event time replayed at a time while catching up (sorted by arrival within it): bounds a recovery's memory."""
REPLAY_MARGIN_MS: Final = 5_000
"""The replay reads this far past the moment live processing started (readings stored just before it)."""
ADVANCE_STEP_MS: Final = 10_000
"""Event time the catching-up engine's timers are advanced per turn of the event loop."""
REPLAY_SLICE: Final = 2_000
"""Readings replayed per turn of the event loop (a few ms), so a live life-safety reading never waits long."""
DETECT_SLICE: Final = 250
"""Durable readings fed to the behavioural detectors per turn of the event loop (a few ms), so a life-safety
reading arriving meanwhile is detected and raised between two slices, not after the whole batch (issue 17)."""
LIVE_BUFFER_MAX: Final = 200_000
"""Durable non-life-safety readings kept for the engine while it catches up; older ones are read back instead."""
_WRITE_BYTES: Final = 1 << 20


def wall_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def arc_config(settings: Settings) -> ArcConfig | None:
    """The ARC output's configuration from ``ELDERCARE_ARC_*``; None when it is off (no host)."""
    if not settings.arc_host:
        return None
    return ArcConfig(
        host=settings.arc_host, port=settings.arc_port, accounts=dict(settings.arc_accounts),
        community_accounts=dict(settings.arc_community_accounts), account_prefix=settings.arc_account_prefix,
        receiver=settings.arc_receiver, line=settings.arc_line,
        codes={**DEFAULT_CODES, "fall": settings.arc_fall_code}, timeout_s=settings.arc_timeout_s,
        supervision_s=settings.arc_supervision_s,
    )  # fmt: skip


def arc_channel(settings: Settings, *, store: AlertStore, clock: Callable[[], int]) -> ArcChannel | None:
    """The ARC channel over ``store``'s outbox, or None when the ARC output is off."""
    config = arc_config(settings)
    if config is None:
        return None
    return ArcChannel(store=store, config=config, clock=clock, key=arc_key(settings))


def arc_key(settings: Settings) -> bytes | None:
    """The DC-09 AES key from ``ELDERCARE_ARC_KEY`` (hex), or None for plain messages."""
    hex_key = settings.arc_key.get_secret_value()
    return parse_key(hex_key) if hex_key else None


def _fit_with_routine(histories: Mapping[str, Sequence[DaySummary]], config: DetectConfig) -> dict[str, Baseline]:
    """Nightly refit (in a worker thread): detection baselines plus each elder's daily-profile outlier score."""
    baselines = fit_baselines(histories, config=config)
    for site, base in baselines.items():
        score = routine_score(histories[site])
        if score is not None:
            baselines[site] = msgspec.structs.replace(base, routine_score=score.score, routine_drivers=score.drivers)
    return baselines


def write_atomically(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` as the new content of ``path``: a crash at any point leaves the old file or the new one.

    The bytes go to a temporary file next to it, are fsynced, and the file is renamed over ``path``; the
    directory is fsynced too, so the rename itself survives a power cut.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as f:
        # About a MiB per write call: few GIL hand-overs with the event loop, no copy of the whole snapshot.
        group: list[bytes] = []
        size = 0
        for chunk in chunks:
            group.append(chunk)
            size += len(chunk)
            if size >= _WRITE_BYTES:
                f.write(b"".join(group))
                group.clear()
                size = 0
        f.write(b"".join(group))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def snapshot_in_slices(engine: Engine, *, slice_s: float) -> Iterator[bytes]:
    """Encode a consistent snapshot of ``engine`` on the running loop, ``slice_s`` of work at a time.

    After each slice the loop is free for as long again (a real sleep, not just a yield): back-to-back slices
    would keep the event-loop thread busy for the whole encode, and every other thread of the process (the alert
    store's SQLite calls, MQTT network threads) would then wait up to the interpreter's 5 ms switch interval each
    time it takes the GIL back after I/O. Readings and timers processed between slices change the engine, not the
    snapshot (copy-on-write per home). Returns the snapshot's pieces, in order, to iterate once.

    Raises:
        SnapshotError: the engine's timers could not all be attributed to homes (see
            :meth:`detection.snapshot.SnapshotCapture.chunks`).
    """
    capture = engine.begin_snapshot()
    try:
        while not capture.step(slice_s):
            await asyncio.sleep(slice_s)
        return capture.chunks()
    finally:
        capture.close()


async def snapshot_chunks(engine: Engine, *, slice_ms: float) -> Iterable[bytes]:
    """The engine's snapshot in slices of ``slice_ms`` (blocking with 0); blocking too if slicing fails.

    A sliced snapshot that cannot attribute every timer to a home raises :class:`SnapshotError`; the state is
    then encoded in one blocking call instead (logged): a late snapshot beats a missing one.
    """
    if slice_ms > 0:
        try:
            return await snapshot_in_slices(engine, slice_s=slice_ms / 1000)
        except SnapshotError:
            _LOG.exception("sliced snapshot failed; taking a blocking one")
    return [engine.snapshot()]


@dataclass(slots=True)
class RecoveryState:
    """Progress of rebuilding the detection state after a start (read by ``/readyz`` and the console).

    ``catching_up`` is True from start until the engine has replayed the stored history and the readings that
    arrived meanwhile; life-safety alerts are raised throughout, other detections resume when it turns False.
    """

    catching_up: bool = True
    replayed: int = 0
    """Stored readings read back from InfluxDB so far."""
    buffered: int = 0
    """Live readings waiting for the engine (bounded by :data:`LIVE_BUFFER_MAX`)."""
    started_ms: int = 0
    finished_ms: int | None = None
    error: str | None = None
    """The last failure of the history read (it is retried), or None."""


class WallClock:
    """The live clock of the detection engine."""

    def now_ms(self) -> int:
        """Now, in epoch milliseconds."""
        return wall_ms()


class Backend:
    """Composition of pipeline, engine and alert service, with their periodic loops."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: Mapping[str, Any] | None = None,
        notifier: Notifier | None = None,
        policies: PolicyBook | None = None,
        engine_tick_s: float = 1.0,
        service_tick_s: float = 2.0,
        snapshot_every_s: float = 30.0,
        snapshot_slice_ms: float = 1.0,
        refit_every_s: float = 3600.0,
        notice_sync_s: float = 5.0,
        learned_every_s: float = 5.0,
    ) -> None:
        """Build the backend (imports ``registry`` into the store); :meth:`run` starts it.

        ``snapshot_slice_ms`` is the longest the periodic snapshot holds the event loop at a time (it then leaves
        the loop free as long again); 0 encodes it in one blocking call (the behaviour before slicing, kept for
        benchmarks).
        """
        self.settings = settings
        self.detect_config = settings.detect_config()
        self.registry_doc = registry
        self.metrics = GatewayMetrics()
        self.store = AlertStore(url=settings.database_url, migrate="new")  # `eldercare db upgrade` migrates
        if registry is not None:
            self.store.import_registry(registry, now_ms=wall_ms())
        secret = settings.link_secret.get_secret_value().encode()
        self.commands = CommandPublisher(
            **mqtt_login(settings),
            client_id=f"{settings.mqtt_client_id}-cmd",
        )
        # A registered 4G watch gets its commands over its own TCP connection, the rest go over MQTT (gateway/watch).
        self.watch_commands = WatchCommandRouter(
            fallback=self.commands, watches=watches_from_registry(registry) if registry is not None else {}
        )
        sender = notifier or AppriseNotifier()
        # Families with recorded consent hear about life-safety alerts through the same channels (alerts/guardians.py).
        self.guardian_links = GuardianLinks(secret=secret, base_url=settings.public_url)
        self.arc = arc_channel(settings, store=self.store, clock=wall_ms)
        self.service = AlertService(
            store=self.store,
            notifier=sender,
            policies=policies or settings.policy_book(),
            clock=wall_ms,
            links=LinkSigner(secret=secret, base_url=settings.public_url),
            commands=self.watch_commands,
            guardians=GuardianNotifier(source=GuardianStore(self.store), links=self.guardian_links, notifier=sender),
            arc=self.arc,
            # Stable across restarts (the broker keeps our session under it): a restart sends at once the messages
            # its killed predecessor left in the outbox (AlertService.resume).
            sender=settings.mqtt_client_id,
        )
        self.checkin_relay = CheckInRelay(store=self.store, commands=self.watch_commands, clock=wall_ms)  # issue 19
        self.notices = NoticeSync(AwayStore(self.store), clock=wall_ms)  # away notices (外出报备)
        self.notice_sync_s = notice_sync_s
        # What the engine learned, saved for a console process of its own (resident page, issue 19).
        self.learned = LearnedPublisher(LearnedStore(self.store), clock=wall_ms)
        self.learned_every_s = learned_every_s
        self.home_registry = HomeRegistry.from_mapping(registry) if registry is not None else None
        self.engine: Engine | None = None
        self.engine_tick_s = engine_tick_s
        self.service_tick_s = service_tick_s
        self.snapshot_every_s = snapshot_every_s
        self.snapshot_slice_ms = snapshot_slice_ms
        self._snapshot_lock = threading.Lock()
        self.refit_every_s = refit_every_s
        self.raiser = Raiser(self.service)
        """Raises each alert until the store takes it; snapshots wait for the ones not stored yet."""
        self.alerts_raised = 0
        self.ready = asyncio.Event()
        self._listener: Listener | None = None
        """Set once the backend is connected, subscribed and processing."""
        self.recovery = RecoveryState(started_ms=wall_ms())
        self.recovered = asyncio.Event()
        """Set once the detection state is rebuilt (:attr:`recovery` ``.catching_up`` is then False)."""
        self._live_engine: Engine | None = None
        self._raised_while_catching_up: set[tuple[str, str, str | None, int]] = set()
        self._live_buffer: deque[Reading] = deque(maxlen=LIVE_BUFFER_MAX)
        self.watch_server: WatchServer | None = None
        """The 4G watch server, once listening (``settings.watch_port`` set; see gateway/watch)."""

    @property
    def snapshot_path(self) -> Path:
        """Where the detection engine's state is saved."""
        return self.settings.data_dir / "detect" / "engine.msgpack"

    # -------------------------------------------------------------- detection → alert service

    def _dispatch(self, alert: Alert) -> None:
        # Each alert is raised in its own task at once, retried until stored (alerts.raising).
        self.alerts_raised += 1
        if self.recovery.catching_up:
            self._raised_while_catching_up.add((alert.site, alert.type, alert.device, alert.time_ms))
        self.raiser.raise_(alert)

    def _fast_path(self, reading: Reading) -> None:
        # While the main engine catches up it must not see live readings (they would fire its timers ahead of
        # the history); a life-safety reading needs no history, so an empty engine raises its alert at once.
        engine = self._live_engine if self.recovery.catching_up else self.engine
        assert engine is not None
        engine.process(reading)

    def _listener_started(self, listener: Listener) -> None:
        self._listener = listener

    @property
    def broker_error(self) -> str | None:
        """Why the MQTT listener is not connected and subscribed (e.g. "connect refused: not authorized"), if known."""
        listener = self._listener
        return listener.last_error if listener is not None and not listener.connected else None

    def _watch_server_started(self, server: WatchServer) -> None:
        self.watch_server = server
        self.watch_commands.server = server

    async def _on_durable(self, readings: Sequence[Reading]) -> None:
        if self.recovery.catching_up:
            self._live_buffer.extend(r for r in readings if not r.is_life_safety)
            self.recovery.buffered = len(self._live_buffer)
            return
        bulk = [r for r in readings if not r.is_life_safety]
        for i in range(0, len(bulk), DETECT_SLICE):
            if i:
                await asyncio.sleep(0)  # life-safety readings and alert raises waiting meanwhile go first
            self._detect_durable(bulk[i : i + DETECT_SLICE])

    def _detect_durable(self, readings: Sequence[Reading]) -> None:
        assert self.engine is not None
        self.engine.process_many(readings)
        self.checkin_relay.drain(self.engine)  # issue 19: prompts → downlink `cmd: checkin`, steps → store

    def baseline_of(self, site: str) -> Baseline | None:
        """The elder's current learned (or population) baseline, for the console's charts."""
        home = self.engine.homes.get(site) if self.engine is not None else None
        return home.baseline if home is not None else None

    # -------------------------------------------------------------- engine state

    def _restore_snapshot(self) -> tuple[Engine, int | None]:
        """The engine as of the last snapshot (no history yet) and its watermark, or a new engine and a replay start.

        Without a snapshot (a new deployment, or a backend killed before it wrote its first one) a new engine
        replays the last :data:`NO_SNAPSHOT_LOOKBACK_MS` of InfluxDB, as a partition worker does: before, it
        replayed nothing, and an SOS acknowledged but not yet stored when such a backend was killed was lost (found
        by a loaded run: the first snapshot, written after the start's catch-up, came after the press). Alerts found
        on the way that the store holds already are not raised again.
        A snapshot that cannot be read (torn or corrupted on disk, copied by hand, another format version) never
        keeps the backend down: it is renamed ``engine.msgpack.unreadable-<time>`` and logged, and a new engine
        replays InfluxDB from when that file was written (what was learned, the baselines, starts again).
        """
        path = self.snapshot_path
        if not path.exists():
            return self._new_engine(), wall_ms() - NO_SNAPSHOT_LOOKBACK_MS
        try:
            return self._restore_from(path)
        except Exception:  # noqa: BLE001 - whatever is wrong with the file, a backend that cannot start alerts nobody
            written_ms = path.stat().st_mtime_ns // 1_000_000
            kept = path.with_name(f"{path.name}.unreadable-{wall_ms()}")
            path.replace(kept)
            _LOG.exception(
                "the detection snapshot cannot be read: kept as %s; starting from a new state rebuilt from InfluxDB "
                "(learned baselines start again from the population defaults; `eldercare restore` brings back a "
                "backup's)",
                kept,
            )
            return self._new_engine(), written_ms

    def _new_engine(self) -> Engine:
        gc.freeze()  # what exists now (modules, settings) lives as long as the process
        return Engine(
            registry=self.home_registry,
            config=self.detect_config,
            clock=WallClock(),
            sink=self._dispatch,
            refit_inline=False,
        )

    def _restore_from(self, path: Path) -> tuple[Engine, int | None]:
        # Decoded home by home from a mapping of the file: the file's bytes and the decoded state are never
        # both in memory whole (peak RSS at 10,000 homes, issue 13).
        snap = load_snapshot(path)
        # No clock yet: restoring with one would fire every timer up to now before the history is replayed.
        engine, _ = Engine.restore(snap, registry=self.home_registry, config=self.detect_config, refit_inline=False)
        engine.clock = WallClock()
        engine.sink = self._dispatch
        del snap
        # The restored state is long-lived: keep the collector's full passes from walking it (pauses of the loop,
        # and most of a recovery's time: each full pass walks millions of objects).
        gc.freeze()
        return engine, engine.now_ms

    async def _catch_up(self, engine: Engine, watermark: int | None, *, live_since_ms: int) -> None:
        """Replay InfluxDB since the snapshot window by window, then the live buffer; then go live."""
        state = self.recovery
        caught_up: list[Alert] = []
        try:
            if watermark is not None:
                await self._replay_history(engine, watermark, live_since_ms=live_since_ms, into=caught_up)
        except Exception as exc:  # a replay bug must not keep detection off: go live with what was rebuilt
            state.error = f"{type(exc).__name__}: {exc}"
            _LOG.exception("replaying stored readings failed; detection continues from the state rebuilt so far")
        # The live readings kept meanwhile, then the timers that fell due while the backend was away, a slice per
        # turn of the loop; batches that arrive meanwhile join the buffer. The last step (nothing left) does not
        # await, so no live batch can slip between the buffer and the engine going live.
        buffered = 0
        while True:
            if self._live_buffer:
                take = min(REPLAY_SLICE, len(self._live_buffer))
                chunk = [self._live_buffer.popleft() for _ in range(take)]
                buffered += take
                caught_up += engine.catch_up(chunk)
            elif engine.now_ms < (now := wall_ms()):
                # An engine without a snapshot (or days behind) has no timers worth slicing: one step to a day ago.
                step = max(engine.now_ms + ADVANCE_STEP_MS, now - 86_400_000)
                sink, engine.sink = engine.sink, None
                try:
                    caught_up += engine.advance(min(step, now))
                finally:
                    engine.sink = sink
            else:
                break
            await asyncio.sleep(0)
        self.engine = engine
        self._live_engine = None
        state.catching_up = False
        state.buffered = 0
        state.finished_ms = wall_ms()
        # Clears are idempotent and always pass; a raise the store (or the live engine meanwhile) already holds is
        # not raised twice.
        raised_live = set(self._raised_while_catching_up)
        self._raised_while_catching_up.clear()

        def not_yet_raised() -> list[Alert]:  # one thread hop for all of them, not one per alert
            return [
                a
                for a in caught_up
                if a.clears
                or ((a.site, a.type, a.device, a.time_ms) not in raised_live and not already_stored(self.store, a))
            ]

        fresh = await asyncio.to_thread(not_yet_raised)
        for alert in fresh:
            self._dispatch(alert)
        self.recovered.set()
        _LOG.info(
            "detection state restored: %d stored and %d live readings replayed in %.1f s; %d alerts on the way, "
            "%d of them new",
            state.replayed,
            buffered,
            (state.finished_ms - state.started_ms) / 1000,
            len(caught_up),
            len(fresh),
        )
        # A snapshot at once, not a period later: a backend killed before its first periodic snapshot would replay
        # its whole window again (6 h without a snapshot), and a long catch-up would be done again.
        try:
            await self.save_snapshot_async()
        except Exception:
            _LOG.exception("snapshot after recovery failed")

    async def _replay_history(self, engine: Engine, watermark: int, *, live_since_ms: int, into: list[Alert]) -> None:
        """Feed the engine what InfluxDB stored since the snapshot, one window of event time at a time.

        The history is streamed (one chunked query per device kind, :func:`ingest.history.stored_windows`); if
        InfluxDB fails meanwhile, the stream is opened again from the first window not yet replayed, with
        backoff (live work goes on; readings replayed twice are skipped by :meth:`Engine.catch_up`).
        """
        state = self.recovery
        start, end = watermark - SNAPSHOT_LOOKBACK_MS, live_since_ms + REPLAY_MARGIN_MS
        backoff = Backoff(first_s=0.5, max_s=10.0)
        failures = 0
        async with influx_client(self.settings) as client:
            reader = InfluxReader(client=client)
            while start < end:
                try:
                    windows = stored_windows(reader, start_ms=start, end_ms=end, window_ms=REPLAY_WINDOW_MS)
                    async with contextlib.aclosing(windows):
                        async for stop, window in windows:
                            state.replayed += len(window)
                            for i in range(0, len(window), REPLAY_SLICE):
                                found = engine.catch_up(window[i : i + REPLAY_SLICE])
                                into += found
                                await self._raise_life_safety_now(found)
                                await asyncio.sleep(0)  # live batches and life-safety readings go first
                            start = stop
                            failures = 0
                            state.error = None
                except IngestError as exc:
                    if isinstance(exc, QueryError) and exc.database_missing:
                        # A first start: the storage setup runs beside this; nothing was stored before it.
                        _LOG.info("no InfluxDB database %s yet: no stored readings to replay", self.settings.influx_db)
                        return
                    failures += 1
                    delay = backoff.delay(failures)
                    state.error = f"{type(exc).__name__}: {exc}"
                    if failures == 1 or failures % 10 == 0:
                        _LOG.warning("reading history for recovery failed (%s); retrying in %.0f s", exc, delay)
                    await asyncio.sleep(delay)

    async def _raise_life_safety_now(self, found: Sequence[Alert]) -> None:
        """Raise the life-safety alerts the replay just found and the store lacks, before the catch-up ends.

        An SOS acknowledged just before a kill, whose alert was not stored yet, is found only here. Raised while
        catching up, they are not raised a second time when it ends (``_raised_while_catching_up``).
        """
        urgent = [a for a in found if a.is_life_safety and not a.clears]
        if not urgent:
            return
        missing = await asyncio.to_thread(lambda: [a for a in urgent if not already_stored(self.store, a)])
        for alert in missing:
            _LOG.warning("%s at %s found in the stored history and not in the store: raising it now", alert.type,
                         alert.site)  # fmt: skip
            self._dispatch(alert)

    def _write_snapshot(self, chunks: Iterable[bytes]) -> None:
        # One writer at a time: the shutdown snapshot may start while a periodic one is still being written.
        with self._snapshot_lock:
            write_atomically(self.snapshot_path, chunks)

    def save_snapshot(self) -> None:
        """Write the engine state atomically (temp file, fsync, rename), blocking (used at shutdown).

        Not while still catching up: the snapshot on disk plus InfluxDB hold everything the partly rebuilt
        engine has, and the next start replays them again.
        """
        if self.engine is not None and not self.recovery.catching_up:
            self._write_snapshot([self.engine.snapshot()])

    async def save_snapshot_async(self) -> None:
        """Encode the state on the loop in short slices (the engine is not thread-safe), write it in a thread.

        Written only once every alert raised before it is stored: a restart replays only the readings the snapshot
        has not seen, so a snapshot over a reading whose alert the store has not taken (an outage, or the few ms of
        an insert) followed by a kill -9 would lose that alert for good. Held back, the older snapshot stays, and
        the next start replays the reading from InfluxDB and raises its alert.
        """
        engine = self.engine
        if engine is None or self.recovery.catching_up:  # the snapshot on disk is still the newest state
            return
        chunks = await snapshot_chunks(engine, slice_ms=self.snapshot_slice_ms)
        if not await self.raiser.stored(timeout=SNAPSHOT_WAITS_FOR_RAISES_S):
            _LOG.warning("snapshot held back: %d alerts are not stored yet (the store is failing)",
                         len(self.raiser.unstored))  # fmt: skip
            return
        await asyncio.to_thread(self._write_snapshot, chunks)

    # -------------------------------------------------------------- loops

    async def _every(self, seconds: float, work: Callable[[], Any], what: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
            if stop.is_set():
                return
            try:
                result = work()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                _LOG.exception("%s failed", what)

    def _engine_tick(self) -> None:
        if self.recovery.catching_up:  # timers run in event time while replaying; ticking now would skip ahead
            return
        assert self.engine is not None
        self.engine.tick()
        self.checkin_relay.drain(self.engine)  # issue 19: answers and pages decided by the timers

    async def _sync_notices(self) -> None:
        if self.recovery.catching_up:  # applied on the first pass after the state is rebuilt
            return
        assert self.engine is not None
        await self.notices.sync((self.engine,))

    async def _publish_learned(self) -> None:
        if self.recovery.catching_up:  # half-rebuilt baselines would show limits the home does not have
            return
        assert self.engine is not None
        await self.learned.publish((self.engine,))

    async def _refit(self) -> None:
        if self.recovery.catching_up:
            return
        assert self.engine is not None
        engine = self.engine
        baselines = await asyncio.to_thread(_fit_with_routine, engine.histories(), engine.config)
        engine.apply_baselines(baselines)

    async def run(self, *, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then flush, snapshot and close everything."""
        started_ms = wall_ms()  # every alert this run raises is stored after this: older ones are its predecessor's
        settings = self.settings
        _LOG.info("escalation policies: %s", policies_in_force(settings))
        directory = (
            StaticDirectory(sites_from_registry(self.registry_doc))
            if self.registry_doc is not None
            else directory_from_settings(settings)
        )
        engine, watermark = await asyncio.to_thread(self._restore_snapshot)
        self._live_engine = Engine(
            registry=self.home_registry,
            config=self.detect_config,
            clock=WallClock(),
            sink=self._dispatch,
            refit_inline=False,
        )
        self.engine = engine  # not fed live readings until it has caught up (see _fast_path, _on_durable)
        self.service.labels = self.engine  # issue 19: a worker's resolved outcome → Engine.label_outcome
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(resume_owed(self.service, started_ms=started_ms, stop=stop), name="resume")
                tasks.create_task(self._catch_up(engine, watermark, live_since_ms=wall_ms()), name="recovery")
                tasks.create_task(
                    run_pipeline(
                        settings,
                        directory=directory,
                        stop=stop,
                        fast_path=self._fast_path,
                        on_durable=self._on_durable,
                        metrics=self.metrics,
                        ready=self.ready,
                        watches=watches_from_registry(self.registry_doc) if self.registry_doc is not None else None,
                        on_watch_server=self._watch_server_started,
                        on_listener=self._listener_started,
                    ),
                    name="pipeline",
                )
                tasks.create_task(self._every(self.engine_tick_s, self._engine_tick, "detection tick", stop))
                tasks.create_task(self._every(self.service_tick_s, self.service.tick, "alert service tick", stop))
                if self.arc is not None and self.arc.config.supervision_s > 0:
                    tasks.create_task(self._every(self.arc.config.supervision_s, self.arc.supervise, "ARC link", stop))
                tasks.create_task(self._every(self.snapshot_every_s, self.save_snapshot_async, "snapshot", stop))
                tasks.create_task(self._every(self.refit_every_s, self._refit, "baseline refit", stop))
                tasks.create_task(self._every(self.notice_sync_s, self._sync_notices, "away notices", stop))
                tasks.create_task(self._every(self.learned_every_s, self._publish_learned, "learned profiles", stop))
        finally:
            stored = await self.raiser.stored(timeout=SHUTDOWN_WAITS_FOR_RAISES_S)
            if not stored:
                # The store is down: these alerts' readings are in InfluxDB, and without a new snapshot the next
                # start replays them and raises the alerts then (messages of stored ones wait in the outbox).
                _LOG.error("stopping with %d alerts not stored; the next start raises them from the stored readings",
                           len(self.raiser.unstored))  # fmt: skip
                self.raiser.cancel()
            await self.raiser.wait()
            await self.checkin_relay.wait()  # issue 19
            if self.arc is not None:
                await self.arc.idle()  # an unsent event stays in the outbox for the next start
            if stored:
                self.save_snapshot()
            await self.commands.close()
            self.service.close()
            self.store.close()
