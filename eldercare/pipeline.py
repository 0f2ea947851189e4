"""Composition of the ingest pipeline: MQTT listener → gateway service → InfluxDB writer (with spool).

``python -m eldercare.pipeline`` runs it with :class:`~eldercare.settings.Settings` from ``ELDERCARE_*``
variables; ``eldercare serve`` calls :func:`run_pipeline`. A message is acknowledged to the broker only once
its reading is in InfluxDB or fsynced to the spool (or its refusal is in the dead-letter record), so the
process can be killed at any moment without losing data: see docs/storage.md, "Delivery guarantee".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from eldercare.logs import configure_logging, private_umask
from eldercare.settings import Settings, influx_client, mqtt_login
from gateway.confirm import ConfirmationSender, StoredConfirmations, StoredSender
from gateway.contract import DeviceDirectory
from gateway.deadletter import DeadLetterStore
from gateway.listener import Listener, create_listener
from gateway.metrics import GatewayMetrics
from gateway.provisioning import StaticDirectory, sites_from_registry
from gateway.retained import RetainedClears
from gateway.retry import Backoff, retry
from gateway.service import DurableHook, FastPath, GatewayService
from gateway.tasks import cancel_and_wait
from gateway.watch.decode import WatchDecoder
from gateway.watch.registry import WatchBinding, watches_from_registry
from gateway.watch.server import WatchServer
from ingest.errors import IngestError
from ingest.influx import InfluxClient
from ingest.spool import Spool
from ingest.writer import InfluxWriter, WriteOptions

_LOG: Final = logging.getLogger("eldercare.pipeline")

READY_LINE: Final = "eldercare pipeline ready"
"""Logged once connected and subscribed (tests and the benchmark wait for it)."""


def directory_from_settings(settings: Settings) -> DeviceDirectory | None:
    """The device directory from the registry file, or None (accept every well-formed site) without one."""
    if settings.registry_path is None:
        return None
    registry = json.loads(settings.registry_path.read_text())
    return StaticDirectory(sites_from_registry(registry))


def watches_from_settings(settings: Settings) -> dict[str, WatchBinding]:
    """The 4G watches (IMEI → home) of the registry file; none without one."""
    if settings.registry_path is None:
        return {}
    return watches_from_registry(json.loads(settings.registry_path.read_text()))


async def ensure_storage_retrying(influx: InfluxClient, *, raw_retention: str) -> None:
    """Create database, retention policies and continuous queries; retried while InfluxDB is down (run it as a task).

    Until it is done, writes are refused ("database not found") and spooled, and history reads fail.
    """

    def failed(_n: int, exc: Exception, delay: float) -> None:
        _LOG.warning("InfluxDB schema setup failed (%s); retrying in %.0f s", exc, delay)

    await retry(
        lambda: influx.ensure_storage(raw_duration=raw_retention),
        backoff=Backoff(first_s=1.0, max_s=60.0),
        retry_on=IngestError,
        on_failure=failed,
    )


async def send_confirmations(
    confirmations: StoredConfirmations | None,
    sender: StoredSender,
    *,
    interval_s: float,
    stop: asyncio.Event,
    first: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Every ``interval_s``, one ``stored`` message per gateway for what became durable meanwhile (QoS 0).

    ``first`` runs before each turn's confirmations (the embedded backend's retained clears, on the same connection).
    """
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        if first is not None:
            await first()
        await sender.publish_many(confirmations.drain() if confirmations is not None else [])  # or a keep-alive


READY_WARN_S: Final = 60.0
"""While the broker does not let the backend in, its reason is logged this often (and shown in ``/readyz``)."""


async def _ready_or_stopped(listener: Listener, stop: asyncio.Event, *, where: str) -> bool:
    """Wait until the listener is connected and subscribed (True) or ``stop`` is set (False), however long.

    A broker that refuses the backend (wrong password, ACL) is retried with backoff by the listener; SIGTERM
    meanwhile stops at once instead of waiting out a start-up deadline.
    """
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while True:
            readying = asyncio.ensure_future(listener.wait_ready(timeout=READY_WARN_S))
            await asyncio.wait({stopping, readying}, return_when=asyncio.FIRST_COMPLETED)
            if not readying.done():
                with contextlib.suppress(TimeoutError):
                    await cancel_and_wait(readying)
                return False
            try:
                readying.result()
            except TimeoutError:
                _LOG.warning("MQTT broker %s: not ready after %.0f s (%s); still trying", where, READY_WARN_S,
                             listener.last_error or "no answer")  # fmt: skip
                continue
            return True
    finally:
        stopping.cancel()


async def run_pipeline(
    settings: Settings,
    *,
    directory: DeviceDirectory | None = None,
    stop: asyncio.Event | None = None,
    options: WriteOptions | None = None,
    max_batch: int = 5000,
    setup_storage: bool = True,
    fast_path: FastPath | None = None,
    on_durable: DurableHook | None = None,
    metrics: GatewayMetrics | None = None,
    ready: asyncio.Event | None = None,
    watches: Mapping[str, WatchBinding] | None = None,
    on_watch_server: Callable[[WatchServer], None] | None = None,
    on_listener: Callable[[Listener], None] | None = None,
) -> None:
    """Run listener, gateway service and writer until ``stop`` is set (or forever); shut down cleanly.

    Args:
        settings: deployment settings (broker, InfluxDB, data directory).
        directory: provisioned sites and devices; None accepts any well-formed site and device.
        stop: set it to stop; pending readings are flushed, unacknowledged messages stay with the broker.
        options: writer batching/retry options; default from settings (batch size, retry interval).
        max_batch: most MQTT messages handled (and acknowledged) together.
        setup_storage: create the database, retention policies and continuous queries first.
        fast_path: called synchronously with every life-safety reading before anything is stored or batched.
        on_durable: called with each batch of new readings once durable (the detection core's feed).
        metrics: gateway counters to update (a fresh set when omitted).
        ready: set once connected and subscribed.
        watches: 4G watches (IMEI → home) for the watch server started when ``settings.watch_port`` is set;
            default from the registry file.
        on_watch_server: called with the watch server once it listens (its ``port`` is the bound one).
        on_listener: called with the MQTT listener once started (its ``last_error`` says why it is not ready).
    """
    stop = stop if stop is not None else asyncio.Event()
    metrics = metrics if metrics is not None else GatewayMetrics()
    options = options or WriteOptions(
        batch_size=settings.influx_batch_size, retry_interval=settings.influx_retry_interval_ms
    )
    influx = influx_client(settings, gzip=settings.influx_gzip)
    spool = Spool(
        directory=settings.data_dir / "spool" / settings.mqtt_client_id,
        max_bytes=settings.spool_max_mb * 1024 * 1024,
    )
    deadletter = DeadLetterStore.in_data_dir(settings.data_dir)
    writer = InfluxWriter(
        client=influx,
        spool=spool,
        options=options,
        rejected=deadletter,
        max_in_flight=settings.influx_writes_in_flight,
    )
    listener = create_listener(
        client=settings.mqtt_client,
        **mqtt_login(settings),
        client_id=settings.mqtt_client_id,
        session_save_changes=settings.mqtt_session_save_changes,
    )
    confirmations: StoredConfirmations | None = None
    if settings.mqtt_confirm_stored:
        # The gateways' end-to-end acknowledgement (gateway/confirm.py): after each durable batch, not before.
        gateway_of = directory.gateway_of if isinstance(directory, StaticDirectory) else None
        confirmations = StoredConfirmations(gateway_of=gateway_of)
    # What gateways leave retained on topics no device of theirs has (gateway/retained.py).
    retained = RetainedClears(metrics=metrics)
    confirm_publisher = ConfirmationSender(
        **mqtt_login(settings),
        client_id=f"{settings.mqtt_client_id}-ack",
    )
    service = GatewayService(
        directory=directory,
        deadletter=deadletter,
        sink=writer,
        max_skew_ms=settings.max_clock_skew_s * 1000,
        fast_path=fast_path,
        metrics=metrics,
        on_stored=confirmations.add if confirmations is not None else None,
        on_durable=on_durable,
        on_refused=retained.add,
        budget=settings.new_site_budget(),
    )
    watch_server = None
    if settings.watch_port is not None:
        watch_server = WatchServer(
            watches=watches if watches is not None else watches_from_settings(settings),
            handler=service,  # the same fast path, dead-letter record and storage as MQTT messages
            host=settings.watch_host,
            port=settings.watch_port,
            decoder=WatchDecoder(max_skew_ms=settings.max_clock_skew_s * 1000),
            max_per_address=settings.watch_max_per_address,
            idle_timeout_s=settings.watch_idle_timeout_s,
            metrics=service.metrics,
        )
    setup: asyncio.Task[None] | None = None
    confirming: asyncio.Task[None] | None = None
    try:
        if setup_storage:
            setup = asyncio.create_task(ensure_storage_retrying(influx, raw_retention=settings.influx_raw_retention))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(setup), 10)
        await writer.start()
        await listener.start()
        if on_listener is not None:
            on_listener(listener)
        if not await _ready_or_stopped(listener, stop, where=f"{settings.mqtt_host}:{settings.mqtt_port}"):
            return  # stopped before the broker let us in (e.g. a wrong password): nothing to flush
        if watch_server is not None:
            await watch_server.start()
            if on_watch_server is not None:
                on_watch_server(watch_server)
        _LOG.info("%s (client %s, spool %s)", READY_LINE, settings.mqtt_client_id, spool.directory)
        if ready is not None:
            ready.set()
        confirming = asyncio.create_task(
            send_confirmations(
                confirmations,
                confirm_publisher,
                interval_s=settings.mqtt_confirm_interval_ms / 1000,
                stop=stop,
                first=lambda: retained.send(confirm_publisher),
            ),
            name="confirmations",
        )
        # The batch in hand is finished and acknowledged before the listener closes; whatever is still
        # in the inbox is unacknowledged and comes back from the broker on the next start.
        await service.run(listener, max_batch=max_batch, stop=stop, max_in_flight=settings.influx_writes_in_flight)
    finally:
        if watch_server is not None:
            await watch_server.close()
        await listener.close()
        if confirming is not None:
            await cancel_and_wait(confirming)
        if confirmations is not None:
            with contextlib.suppress(Exception):  # best effort: an unconfirmed reading is only republished
                await asyncio.wait_for(confirm_publisher.publish_many(confirmations.drain()), 5)
        await confirm_publisher.close()
        if setup is not None:
            await cancel_and_wait(setup)
        await writer.close()
        await influx.aclose()
        deadletter.close()
        _LOG.info("pipeline stopped: %s", writer.stats)


def main() -> None:
    """Entry point of ``python -m eldercare.pipeline``: settings from the environment, stop on SIGTERM/SIGINT."""
    configure_logging()
    private_umask()  # the SQLite store, dead letters, spool and snapshots hold personal data (as `eldercare` commands)
    settings = Settings()

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_pipeline(settings, directory=directory_from_settings(settings), stop=stop)

    asyncio.run(_run())


if __name__ == "__main__":
    main()
