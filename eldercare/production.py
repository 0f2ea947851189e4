"""``eldercare serve``: the backend and the console built from one :class:`Settings`, for a real deployment.

``--role backend`` runs the ingest → detection → alerts pipeline (and ``/healthz``, ``/readyz``, ``/metrics`` on
its port); ``--role console`` serves the console over the same database (its own alert service, for
transitions and notifications); ``--role all`` both in one process, sharing store and service. Every role
makes the data directory private first (0700, files 0600: it holds personal data and password hashes).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import ssl
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from alerts.links import LinkSigner
from alerts.notify import AppriseNotifier
from alerts.service import AlertService
from alerts.store.gauges import alert_counts, notification_counts, ping
from alerts.store.repository import AlertStore
from alerts.store.sessions import SqlSessionStore
from eldercare.backend import Backend, wall_ms
from eldercare.backup_status import last_outcomes
from eldercare.certs import expiry as certificate_expiry
from eldercare.learned import learned_lookup
from eldercare.logs import private_umask
from eldercare.ops_status import notices_source, watched_certificates
from eldercare.settings import Settings, influx_client, mqtt_login
from gateway.downlink import CommandPublisher

_LOG = logging.getLogger("eldercare.serve")
Role = Literal["backend", "console", "all"]
ROLES: tuple[Role, ...] = ("backend", "console", "all")


class ConfigError(ValueError):
    """A setting is missing or invalid for what was asked; the message says which and how to fix it."""


PRODUCTION_ENV_FILE = Path("/etc/eldercare/eldercare.env")
"""Where the install steps put the deployment's settings (docs/operations.md, step 4)."""


def _env_file_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, _value = line.strip().removeprefix("export ").partition("=")
        if sep and not name.startswith("#"):
            names.add(name.strip())
    return names


def check_store_configured(settings: Settings, *, env_file: Path | None = None) -> None:
    """Refuse the SQLite default when the production env file exists but was not loaded into this process.

    An operator running ``sudo -u eldercare eldercare backup …`` without the env file would otherwise back up (or
    migrate, or create an admin in) an empty SQLite file in the working directory instead of the real store.
    """
    env_file = env_file or PRODUCTION_ENV_FILE
    if not settings.store_is_default or not env_file.exists():
        return
    load = f"load it first: `set -a; . {env_file}; set +a` in the same shell (docs/operations.md, 'Commands by hand')"
    try:
        names = _env_file_names(env_file)
    except OSError:
        raise ConfigError(
            f"ELDERCARE_DATABASE_URL is not set and {env_file} exists but is not readable by this user, so this would"
            f" use the SQLite default {settings.database_url}: run as the service user and {load}"
            f" / 未设置 ELDERCARE_DATABASE_URL，且无法读取 {env_file}"
        ) from None
    if "ELDERCARE_DATABASE_URL" in names:
        raise ConfigError(
            f"ELDERCARE_DATABASE_URL is set in {env_file} but not in this process's environment, so this would use"
            f" the SQLite default {settings.database_url} instead of the deployment's store; {load}"
            f" / {env_file} 中的 ELDERCARE_DATABASE_URL 未加载，请先加载该文件"
        )


def store_settings() -> Settings:
    """The settings of a command that touches the store; :class:`ConfigError` when the env file was not loaded.

    See :func:`check_store_configured`. A SQLite store's data directory is created private (0700) first, so the
    database file never appears readable.
    """
    settings = Settings()
    check_store_configured(settings)
    if settings.database_url.startswith("sqlite"):
        secure_data_dir(settings.data_dir)
    return settings


def secure_data_dir(path: Path) -> None:
    """Create the data directory private to this user (0700) and make every file in it 0600."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    for root, dirs, files in os.walk(path):
        for d in dirs:
            p = Path(root, d)
            if not p.is_symlink():
                p.chmod(0o700)
        for f in files:
            p = Path(root, f)
            if not p.is_symlink() and stat.S_ISREG(p.lstat().st_mode):
                p.chmod(0o600)


SERVE_LOCK = "serve.lock"
"""Lock file in the data directory: every ``eldercare serve`` holds it shared, ``eldercare restore`` exclusively."""


class DataDirBusy(RuntimeError):
    """Another eldercare process holds the data directory (a service while restoring, a restore while serving)."""


@contextlib.contextmanager
def serve_lock(data_dir: Path, *, exclusive: bool = False) -> Iterator[None]:
    """Hold the data directory's lock while the block runs: shared for services, ``exclusive`` for a restore.

    Raises :class:`DataDirBusy` at once (never waits) when the other kind holds it.
    """
    fd = os.open(data_dir / SERVE_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            if exclusive:
                raise DataDirBusy(
                    f"an eldercare service is running on {data_dir} (it holds {data_dir / SERVE_LOCK}); stop it"
                    " first: `systemctl stop eldercare-console eldercare-backend` / 服务仍在运行，请先停止"
                ) from None
            raise DataDirBusy(
                f"eldercare restore is running on {data_dir}; start the services after it / 正在恢复备份"
            ) from None
        yield
    finally:
        os.close(fd)


def open_store(settings: Settings) -> AlertStore:
    """The store of the settings; a SQLite store's data directory is created private first.

    A new store is migrated; an older schema is refused (:class:`alerts.store.errors.StoreSchemaBehind`): only
    ``eldercare db upgrade`` migrates it.
    """
    if settings.database_url.startswith("sqlite"):
        secure_data_dir(settings.data_dir)
    return AlertStore(url=settings.database_url, migrate="new")


SERVE_PORT_OPTION = "`eldercare serve --port`, or ELDERCARE_CONSOLE_PORT"
"""How an operator changes the port ``eldercare serve`` listens on (the units pass ``--port``)."""


def check_settings(settings: Settings, role: Role) -> None:
    """Fail fast, with the variable to set, on settings the role cannot run without."""
    if len(settings.link_secret.get_secret_value()) < 16:
        raise ConfigError(
            "ELDERCARE_LINK_SECRET must be set to at least 16 random characters (e.g. `openssl rand -base64 32`)"
        )
    if (settings.console_tls_cert is None) != (settings.console_tls_key is None):
        raise ConfigError("set both ELDERCARE_CONSOLE_TLS_CERT and ELDERCARE_CONSOLE_TLS_KEY, or neither")
    for variable, path in (
        ("CONSOLE_TLS_CERT", settings.console_tls_cert),
        ("CONSOLE_TLS_KEY", settings.console_tls_key),
    ):
        if path is not None:
            try:
                with path.open("rb"):
                    pass
            except OSError as exc:
                raise ConfigError(
                    f"ELDERCARE_{variable}: cannot read {path}: {exc.strerror} (the service user must be able to read"
                    " it, e.g. group eldercare and mode 0640)"
                ) from None
    if settings.console_tls_cert is not None and settings.console_tls_key is not None:
        _check_tls_pair(settings.console_tls_cert, settings.console_tls_key)
    if role in ("backend", "all") and not settings.mqtt_password.get_secret_value():
        raise ConfigError("ELDERCARE_MQTT_PASSWORD (the backend's broker account) is not set")


def _check_tls_pair(cert: Path, key: Path) -> None:
    """The key is a private key and belongs to the certificate: uvicorn found out only after "serving on"."""
    try:
        # The password callback keeps OpenSSL from prompting on the terminal for an encrypted key.
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        reason = exc.reason or exc.strerror or str(exc)
        raise ConfigError(
            f"ELDERCARE_CONSOLE_TLS_CERT {cert} and ELDERCARE_CONSOLE_TLS_KEY {key} are not a certificate and its"
            f" private key ({reason}): is the key the certificate's, and are the two not swapped?"
            " / TLS 证书与私钥不匹配"
        ) from None


# -- readiness and metrics ------------------------------------------------------------------------------------


def readiness_checks(
    settings: Settings, store: AlertStore, backend: Backend | None = None
) -> dict[str, Callable[[], Any]]:
    """Broker (TCP connect), InfluxDB (``/ping``), database (``SELECT 1``) and, in-process, the backend pipeline."""
    from dashboards.health import NotReady

    async def broker() -> None:
        _reader, writer = await asyncio.open_connection(settings.mqtt_host, settings.mqtt_port)
        writer.close()
        await writer.wait_closed()

    async def influxdb() -> None:
        async with influx_client(settings, timeout_s=2.0) as c:
            if not await c.ping():
                raise ConnectionError("InfluxDB did not answer /ping")

    async def database() -> None:
        await asyncio.to_thread(ping, store.engine)

    async def pipeline() -> None:
        if backend is not None and not backend.ready.is_set():
            reason = backend.broker_error
            raise NotReady(f"broker: {reason}" if reason else "starting")

    checks: dict[str, Callable[[], Any]] = {"broker": broker, "influxdb": influxdb, "database": database}
    if backend is not None:
        checks["pipeline"] = pipeline
    return checks


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += Path(root, f).stat().st_size
            except FileNotFoundError:
                continue  # a spool segment removed while we walked
    return total


class StoreCollector:
    """Prometheus collector of the store, the spool, the engine's lag, the last backup and the certificates.

    The store: alerts by type and state, notifications by status; the last backup's success and failure times
    (eldercare/backup_status.py); each TLS certificate's expiry.
    """

    def __init__(
        self,
        store: AlertStore,
        *,
        spool_dir: Path,
        backend: Backend | None = None,
        data_dir: Path | None = None,
        tls_dir: Path | None = None,
        console_cert: Path | None = None,
    ) -> None:
        self.store = store
        self.spool_dir = spool_dir
        self.backend = backend
        self.data_dir = data_dir
        self.tls_dir = tls_dir
        self.console_cert = console_cert

    def collect(self) -> Iterator[Metric]:
        """Called on every scrape."""
        alerts = GaugeMetricFamily(
            "eldercare_alerts", "Alerts in the store by type and state.", labels=["type", "state"]
        )
        for (kind, state), n in sorted(alert_counts(self.store.engine).items()):
            alerts.add_metric([kind, state], n)
        yield alerts
        counts = notification_counts(self.store.engine)
        notes = GaugeMetricFamily("eldercare_notifications", "Notifications by delivery status.", labels=["status"])
        for status, n in sorted(counts.items()):
            notes.add_metric([status], n)
        yield notes
        yield GaugeMetricFamily(
            "eldercare_notification_failures",
            "Notifications that could not be delivered.",
            value=counts.get("failed", 0),
        )
        yield GaugeMetricFamily(
            "eldercare_spool_bytes", "Bytes waiting in the disk spool for InfluxDB.", value=_dir_bytes(self.spool_dir)
        )
        yield from self._backups()
        yield from self._certificates()
        engine = self.backend.engine if self.backend is not None else None
        if engine is not None and engine.now_ms > 0:
            lag = max(0.0, (wall_ms() - engine.now_ms) / 1000)
            yield GaugeMetricFamily(
                "eldercare_engine_lag_seconds",
                "Wall clock minus the newest reading the detection engine saw.",
                value=lag,
            )

    def _certificates(self) -> Iterator[Metric]:
        """When the broker's TLS files (``ELDERCARE_BACKUP_TLS_DIR``) and the console's certificate expire."""
        expires = certificate_expiry(watched_certificates(self.tls_dir, self.console_cert))
        if expires:
            family = GaugeMetricFamily(
                "eldercare_tls_certificate_expiry_timestamp_seconds",
                "When a TLS certificate stops being valid (Unix time): renew before it (docs/operations.md, step 5).",
                labels=["file"],
            )
            for name, when in expires.items():
                family.add_metric([name], when)
            yield family

    def _backups(self) -> Iterator[Metric]:
        """When ``eldercare backup`` last succeeded / failed; absent until it did.

        The status file and the store's audit log, as the console's banner reads them (eldercare/backup_status.py).
        """
        status = last_outcomes(self.data_dir, self.store)
        for outcome, what in (("success", "succeeded"), ("failure", "failed")):
            entry = status.get(f"last_{outcome}")
            if isinstance(entry, dict) and isinstance(entry.get("at_ms"), int):
                yield GaugeMetricFamily(
                    f"eldercare_backup_last_{outcome}_timestamp_seconds",
                    f"When eldercare backup last {what} (Unix time).",
                    value=entry["at_ms"] / 1000,
                )


def metrics_source(store: AlertStore, settings: Settings, backend: Backend | None) -> Callable[[], bytes]:
    """The ``/metrics`` body: the gateway's counters (messages in/out, dead letters by reason) and the store's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        StoreCollector(
            store,
            spool_dir=settings.data_dir / "spool",
            backend=backend,
            data_dir=settings.data_dir,
            tls_dir=settings.backup_tls_dir,
            console_cert=settings.console_tls_cert,
        )
    )

    def render() -> bytes:
        gateway = backend.metrics.render() if backend is not None else b""
        return gateway + generate_latest(registry)

    return render


def backend_status(backend: Backend | None) -> Callable[[], Mapping[str, Any]]:
    """The backend's state for ``/readyz``: ``pipeline`` ready or starting, and the restart recovery's progress.

    ``catching_up`` is True while the detection state is rebuilt in the background (live life-safety readings are
    processed meanwhile, so it does not make the process unready); ``replayed`` / ``buffered`` count its readings.
    """

    def status() -> Mapping[str, Any]:
        if backend is None:
            return {}
        recovery = backend.recovery
        return {
            "pipeline": "running" if backend.ready.is_set() else "starting",
            "catching_up": recovery.catching_up,
            "recovery": {"replayed": recovery.replayed, "buffered": recovery.buffered, "error": recovery.error},
        }

    return status


# -- composition ----------------------------------------------------------------------------------------------


def console_service(settings: Settings, store: AlertStore) -> AlertService:
    """The alert service of a console-only process (transitions, one-tap links, notifications, help-coming)."""
    commands = CommandPublisher(
        **mqtt_login(settings),
        client_id=f"{settings.mqtt_client_id}-console-cmd",
    )
    return AlertService(
        store=store,
        notifier=AppriseNotifier(),
        policies=settings.policy_book(),
        clock=wall_ms,
        links=LinkSigner(secret=settings.link_secret.get_secret_value().encode(), base_url=settings.public_url),
        commands=commands,
    )


def build_console(settings: Settings, *, store: AlertStore, service: AlertService, backend: Backend | None) -> Any:
    """The console application over the store, with server-side sessions in the same database."""
    from alerts.guardians import GuardianLinks
    from alerts.queries import StoreBackend
    from alerts.store.guardians import GuardianStore
    from alerts.store.handover import HandoverStore
    from dashboards.app import create_app
    from dashboards.families import GuardianBook
    from dashboards.health import Health
    from ingest.reader import InfluxReader

    influx = influx_client(settings)
    health = Health(
        checks=readiness_checks(settings, store, backend),
        metrics=metrics_source(store, settings, backend),
        metrics_token=settings.metrics_token.get_secret_value(),
        status=backend_status(backend),
    )
    return create_app(
        settings,
        backend=StoreBackend(store=store, service=service),
        telemetry=InfluxReader(client=influx),
        baselines=backend.baseline_of if backend is not None else None,
        learned=learned_lookup(backend) if backend is not None else None,
        gateway_secret=settings.gateway_secret.get_secret_value(),
        session_store=SqlSessionStore(store.engine),
        health=health,
        handover=HandoverStore(store),
        # The same signer as the backend's guardian notifications, so the links they carry open here.
        guardians=GuardianBook(
            guardians=GuardianStore(store),
            links=GuardianLinks(secret=settings.link_secret.get_secret_value().encode(), base_url=settings.public_url),
        ),
        operations=notices_source(settings, store),
    )


def _listener(role: Role) -> str:
    """What the role's HTTP port serves, for the message of a busy port."""
    return "the backend's health and metrics endpoint" if role == "backend" else "the console"


async def run_serve(
    settings: Settings,
    *,
    role: Role,
    host: str,
    port: int,
    registry: Mapping[str, Any] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the role until SIGINT/SIGTERM (or ``stop``); shut down cleanly. Holds the data directory's lock."""
    from dashboards.serve import ensure_port_free

    check_settings(settings, role)
    # before anything starts or says "serving on"
    ensure_port_free(host, port, listener=_listener(role), change=SERVE_PORT_OPTION)
    private_umask()
    secure_data_dir(settings.data_dir)
    lock = contextlib.ExitStack()
    try:
        lock.enter_context(serve_lock(settings.data_dir))
    except DataDirBusy as exc:
        raise ConfigError(str(exc)) from None
    with lock:
        await _serve(settings, role=role, host=host, port=port, registry=registry, stop=stop)


async def _serve(
    settings: Settings,
    *,
    role: Role,
    host: str,
    port: int,
    registry: Mapping[str, Any] | None,
    stop: asyncio.Event | None,
) -> None:
    from dashboards.health import Health, health_app
    from dashboards.serve import serve_console

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    backend: Backend | None = None
    store: AlertStore | None = None
    service: AlertService | None = None
    started = time.monotonic()
    try:
        async with asyncio.TaskGroup() as tasks:
            if role in ("backend", "all"):
                backend = Backend(settings, registry=registry)
                store, service = backend.store, backend.service
                run = tasks.create_task(backend.run(stop=stop), name="backend")
            else:
                store = AlertStore(url=settings.database_url, migrate="new")
                service = console_service(settings, store)
                run = None
            if role == "backend":
                app = health_app(
                    Health(
                        checks=readiness_checks(settings, store, backend),
                        metrics=metrics_source(store, settings, backend),
                        metrics_token=settings.metrics_token.get_secret_value(),
                        status=backend_status(backend),
                    )
                )
            else:
                app = build_console(settings, store=store, service=service, backend=backend)
            http = tasks.create_task(
                serve_console(
                    app, host=host, port=port, trusted_proxies=settings.trusted_proxies, listener=_listener(role),
                    change=SERVE_PORT_OPTION,
                    tls_cert=str(settings.console_tls_cert) if settings.console_tls_cert else None,
                    tls_key=str(settings.console_tls_key) if settings.console_tls_key else None,
                ),
                name="http",
            )  # fmt: skip
            _LOG.info("eldercare %s serving on http://%s:%d (public URL %s)", role, host, port, settings.public_url)
            await stop.wait()
            http.cancel()
            if run is not None:
                await run
    finally:
        if role == "console":
            commands = service.commands if service is not None else None
            if isinstance(commands, CommandPublisher):
                await commands.close()
            if store is not None:
                store.close()
    _LOG.info("eldercare %s stopped after %.0f s", role, time.monotonic() - started)
