"""Composition helpers for ``eldercare up``: build the console over the real store and serve it in the same loop.

Usage (inside the CLI's ``asyncio.TaskGroup``)::

    backend = StoreBackend(store=store, service=service)
    logins = provision_demo_logins(backend, worker_ids)        # prints nothing; the CLI prints them
    app = create_app(settings, backend=backend, telemetry=InfluxReader(client=influx), baselines=engine.baseline_of)
    tg.create_task(serve_console(app, host="127.0.0.1", port=8000), name="console")
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from alerts.queries import StoreBackend
from alerts.scope import Scope
from dashboards.security import hash_password


@dataclass(frozen=True, slots=True)
class DemoLogin:
    """One demo account to print at startup."""

    worker_id: str
    name: str
    role: str
    password: str


def provision_demo_logins(backend: StoreBackend, worker_ids: Iterable[str] | None = None) -> list[DemoLogin]:
    """Give each (or every) registered worker a fresh random password; returns them for printing once."""
    wanted = set(worker_ids) if worker_ids is not None else None
    out = []
    for account in backend.accounts(Scope("all")):
        if wanted is not None and account.id not in wanted:
            continue
        password = secrets.token_urlsafe(9)
        backend.set_password_hash(account.id, hash_password(password), actor="system")
        out.append(DemoLogin(account.id, account.name, account.role.value, password))
    return out


class ConsolePortBusy(OSError):
    """Raised when an HTTP listener cannot listen on its address; the message says which and what to do."""

    def __init__(self, host: str, port: int, reason: str, *, listener: str = "the console", change: str = "") -> None:
        how = f" ({change})" if change else ""
        super().__init__(
            f"{listener} cannot listen on {host}:{port} ({reason}); free the port or choose another{how}"
            f" / 无法监听 {host}:{port}（{reason}），请释放该端口或换一个端口"
        )
        self.host = host
        self.port = port


def ensure_port_free(host: str, port: int, *, listener: str = "the console", change: str = "") -> None:
    """Fail fast, before any server starts, when ``host:port`` cannot be listened on.

    uvicorn reports a busy port only from inside its server task (and exits the process from there), which a
    launcher that already started the broker, InfluxDB and the backend cannot turn into a clean stop.
    ``listener`` names what listens there and ``change`` how the caller's operator picks another port (its option).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConsolePortBusy(host, port, exc.strerror or str(exc), listener=listener, change=change) from None


class _Server(uvicorn.Server):
    """uvicorn without its signal capture: the composition root owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave the process's signal handlers alone."""
        yield


def console_config(
    app: FastAPI,
    *,
    host: str,
    port: int,
    trusted_proxies: str = "",
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> uvicorn.Config:
    """The uvicorn configuration of the console.

    ``X-Forwarded-For``/``-Proto`` are honoured only from ``trusted_proxies`` (comma-separated addresses of the
    reverse proxy, e.g. ``127.0.0.1`` when nginx runs on the same host). Without one they are ignored, so a
    client cannot pick its own address and escape the per-address login limit (uvicorn would otherwise trust
    them from 127.0.0.1 by default). With ``tls_cert``/``tls_key`` the console speaks HTTPS itself (small
    deployments without a reverse proxy).
    """
    return uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", access_log=False, timeout_graceful_shutdown=3,
        proxy_headers=bool(trusted_proxies.strip()), forwarded_allow_ips=trusted_proxies.strip() or None,
        server_header=False, ssl_certfile=tls_cert, ssl_keyfile=tls_key,
    )  # fmt: skip


async def serve_console(
    app: FastAPI,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    trusted_proxies: str = "",
    tls_cert: str | None = None,
    tls_key: str | None = None,
    listener: str = "the console",
    change: str = "",
) -> None:
    """Run uvicorn on the current event loop until cancelled; cancelling shuts it down gracefully.

    ``listener`` and ``change`` word the error of a busy port (see :func:`ensure_port_free`).
    """
    config = console_config(
        app, host=host, port=port, trusted_proxies=trusted_proxies, tls_cert=tls_cert, tls_key=tls_key
    )
    ensure_port_free(host, port, listener=listener, change=change)
    server = _Server(config)
    task = asyncio.ensure_future(server.serve())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        await task
        raise
    except SystemExit:
        # uvicorn exits from inside the task when it cannot bind (a port taken since the check above).
        raise ConsolePortBusy(host, port, "uvicorn could not start", listener=listener, change=change) from None
