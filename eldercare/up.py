"""``eldercare up``: the whole stack on one machine, with a simulated neighbourhood and the console.

Starts mosquitto and influxd (child processes, free ports, a temporary or given data directory),
provisions the simulated homes' gateway accounts, runs the backend (gateway → InfluxDB → detection →
alerts), serves the console, and plays the simulator in real time (device clocks = wall clock). A
"phone inbox" receives the workers' notifications (apprise ``json://``) and prints them, and every few
minutes a demo call-button press at a random home shows the life-safety path end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import signal
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from eldercare.backend import Backend, wall_ms
from eldercare.inbox import JsonInbox
from eldercare.servers._child import free_port
from eldercare.settings import Settings
from eldercare.stack import local_stack
from firmware_sim.cli import local_midnight_ms
from firmware_sim.live import run_live
from firmware_sim.scenario import Message, generate
from firmware_sim.watch import SimWatch
from firmware_sim.wire import encode_call_button_event

console = Console(stderr=True)
DEMO_SEQ_BASE = 1_000_000_000
"""Demo presses use their own seq range so the gateway's dedupe never mistakes them for repeats."""


class PhoneInbox:
    """Stands in for the workers' phones: receives apprise JSON notifications and prints them."""

    def __init__(self) -> None:
        self.received = 0
        self._inbox = JsonInbox(self._show, name="phone-inbox")

    def _show(self, path: str, body: dict[str, Any], _arrived: float) -> int:
        self.received += 1
        # soft_wrap: a one-tap link is printed whole on its line, so it can be clicked or copied in one piece.
        console.print(
            f"[bold magenta]📱 {path.strip('/')}[/] [bold]{body.get('title', '')}[/]\n{body.get('message', '')}\n",
            soft_wrap=True,
            highlight=False,
        )
        return 200

    def url(self, worker_id: str) -> str:
        """Apprise URL of one worker's phone."""
        return self._inbox.url(worker_id)

    def close(self) -> None:
        """Stop receiving."""
        self._inbox.close()


def with_demo_presses(messages: Iterable[Message], *, sites: list[str], every_ms: int, seed: int) -> Iterator[Message]:
    """Interleave a call-button press at a random home every ``every_ms`` of simulated time."""
    rng = random.Random(seed)
    next_at: int | None = None
    n = 0
    for received_ms, topic, payload in messages:
        if next_at is None:
            next_at = received_ms + 20_000
        while every_ms > 0 and received_ms >= next_at:
            site = rng.choice(sites)
            n += 1
            press = encode_call_button_event(site=site, device="btn1", seq=DEMO_SEQ_BASE + n, ts=next_at, event="press")
            yield next_at, press.topic, press.payload
            next_at += every_ms
        yield received_ms, topic, payload


def _registry_for(doc: dict[str, Any], inbox: PhoneInbox) -> dict[str, Any]:
    # The simulated district has grid workers and community officers only; a demo street officer per street
    # completes the escalation chain grid → community → street (without one the console rightly shows a gap).
    workers = doc.setdefault("workers", [])
    staffed = {w["scope"] for w in workers if w.get("role") == "street"}
    for i, street in enumerate(doc.get("streets", []), start=1):
        if street["id"] not in staffed:
            workers.append(
                {"id": f"WS{i:02d}", "name": f"{street['name']}值班", "role": "street", "scope": street["id"],
                 "phone": f"1390000{i:04d}"}
            )  # fmt: skip
    for worker in workers:
        worker["channels"] = [inbox.url(worker["id"])]
    return doc


DEMO_WATCH_IMEI = "868000000000001"
"""IMEI of the demo 4G watch registered to the first simulated home (device ``watch1``)."""
DEMO_WATCH_LK_S = 300.0
"""Heartbeat period of the demo watch (real watches: 1-10 min)."""


def _add_demo_watch(doc: dict[str, Any]) -> str:
    """Register a 4G watch (``watch1``, :data:`DEMO_WATCH_IMEI`) to the first home; return that home's id."""
    home = doc["sites"][0]
    home["devices"].append({"device": "watch1", "kind": "wristband", "imei": DEMO_WATCH_IMEI})
    return str(home["site"])


async def _demo_watch(port: int, stop: asyncio.Event) -> None:
    """A simulated 4G watch on the watch server: heart rate and a heartbeat every few minutes, until ``stop``.

    A failure ends the demo watch only (logged): it must not take the stack down.
    """
    try:
        async with SimWatch(host="127.0.0.1", port=port, imei=DEMO_WATCH_IMEI, battery=76) as watch:
            await watch.login()
            while not stop.is_set():
                await watch.heart(random.randint(62, 80))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), DEMO_WATCH_LK_S)
                if not stop.is_set():
                    await watch.lk()
                    await watch.reply()
    except (OSError, EOFError, TimeoutError, ValueError) as exc:
        if not stop.is_set():
            console.print(f"demo 4G watch stopped: {type(exc).__name__}: {exc}")


def _where_table(rows: list[tuple[str, str]]) -> Table:
    table = Table(title="eldercare is up / 系统已启动", show_header=False)
    for key, value in rows:
        table.add_row(key, value)
    return table


def advertised_host(host: str) -> str:
    """The address to print in links: ``host`` itself, or this machine's LAN address when bound to all of them.

    Finding the LAN address "connects" a UDP socket (no packet is sent) and reads the local end.
    """
    if host not in ("0.0.0.0", "::", ""):
        return host
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed, nothing is sent
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


async def _up(
    *,
    homes: int,
    seed: int,
    data_dir: Path,
    console_port: int,
    duration: float,
    demo_sos_every_s: float,
    host: str = "127.0.0.1",
) -> None:
    from dashboards.serve import ensure_port_free

    if console_port:
        # before any server starts: a busy port is a one-line error
        ensure_port_free(host, console_port, change="--console-port")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    now = wall_ms()
    sim = generate(homes=homes, days=2, seed=seed, mix="incident-rich", start_ms=local_midnight_ms(now))
    inbox = PhoneInbox()
    registry = _registry_for(json.loads(json.dumps(sim.registry)), inbox)
    watch_site = _add_demo_watch(registry)
    sites = [h.site for h in sim.homes]
    gateway_secret = secrets.token_urlsafe(32)
    console.print(f"starting mosquitto and influxd in {data_dir} …")
    with local_stack(data_dir=data_dir, secret=gateway_secret) as (broker, influx):
        broker.provision(sites)
        port = console_port or free_port()
        settings = Settings(
            data_dir=data_dir / "backend",
            mqtt_host=broker.host,
            mqtt_port=broker.backend_port,
            mqtt_username=broker.backend_user,
            mqtt_password=SecretStr(broker.backend_password),
            gateway_secret=SecretStr(gateway_secret),
            influx_url=influx.url,
            link_secret=SecretStr(secrets.token_urlsafe(32)),
            public_url=f"http://{advertised_host(host)}:{port}",
            # A free port for 4G watches (gateway/watch); `serve` leaves it off unless ELDERCARE_WATCH_PORT is set.
            watch_port=free_port(),
            watch_host=host,
        )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        backend = Backend(settings, registry=registry)
        _demo_guardian(backend, registry, inbox)
        sim_stop = threading.Event()
        try:
            async with asyncio.TaskGroup() as tasks:
                run = tasks.create_task(backend.run(stop=stop), name="backend")
                await asyncio.wait_for(backend.ready.wait(), 60)
                logins, console_task = _start_console(tasks, backend, settings, broker, port, influx.url, host)
                watch_port = settings.watch_port or 0
                watch = tasks.create_task(_demo_watch(watch_port, stop), name="demo-watch")
                stream = with_demo_presses(
                    sim.messages(), sites=sites, every_ms=int(demo_sos_every_s * 1000), seed=seed
                )
                live = tasks.create_task(
                    asyncio.to_thread(
                        run_live,
                        stream,
                        sites=[(h.site, h.gateway) for h in sim.homes],
                        host=broker.host,
                        port=broker.port,
                        password_for=broker.gateway_password,
                        speed=1.0,
                        skip_before_ms=now,
                        stop=sim_stop.is_set,
                        outbox=5_000,  # the demo's gateways keep readings until the backend confirms them stored
                    ),
                    name="simulator",
                )
                rows = [
                    ("console / 控制台", settings.public_url),
                    ("MQTT broker", f"{broker.host}:{broker.port} (auth + ACL, {len(sites)} home gateways)"),
                    ("InfluxDB", f"{influx.url} (db {settings.influx_db})"),
                    ("data", str(data_dir)),
                    ("simulated homes / 模拟家庭", f"{len(sites)} (seed {seed}, live, wall-clock time)"),
                    ("demo call-button press", f"every {demo_sos_every_s:.0f} s" if demo_sos_every_s else "off"),
                    (
                        "4G watch server / 4G手表服务",
                        f"{host}:{watch_port} (IMEI {DEMO_WATCH_IMEI} = {watch_site}/watch1; SOS: uv run python -m"
                        f" firmware_sim.watch --port {watch_port} --imei {DEMO_WATCH_IMEI} --sos)",
                    ),
                ]
                console.print(_where_table(rows))
                if logins:
                    table = Table(title="demo logins / 演示账号")
                    for col in ("worker", "name", "role", "password"):
                        table.add_column(col)
                    for login in logins:
                        table.add_row(*login)
                    console.print(table)
                console.print("Ctrl-C stops everything. / 按 Ctrl-C 退出。")
                if duration > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), duration)
                    stop.set()
                await stop.wait()
                sim_stop.set()
                await live
                await watch
                await run
                console_task.cancel()  # uvicorn serves until cancelled, then shuts down gracefully
        finally:
            sim_stop.set()
            inbox.close()
    console.print(f"stopped cleanly: {backend.alerts_raised} alerts raised, {inbox.received} notifications received")


def _demo_guardian(backend: Backend, registry: dict[str, Any], inbox: PhoneInbox) -> None:
    """One consenting family member for the first resident, whose "phone" is the inbox (shows the family path)."""
    from alerts.store.guardians import GuardianStore

    first = next((r for site in registry.get("sites", []) for r in site.get("residents", [])), None)
    guardians = GuardianStore(backend.store)
    if first is None or guardians.for_resident(first["id"]):
        return
    guardians.add(
        resident_id=first["id"], name="家属（演示）", relation="子女", phone="", channels=[inbox.url("family")],
        consent=True, actor="demo", now_ms=wall_ms(),
    )  # fmt: skip


def _start_console(
    tasks: asyncio.TaskGroup,
    backend: Backend,
    settings: Settings,
    broker: Any,
    port: int,
    influx_url: str,
    host: str = "127.0.0.1",
) -> tuple[list[tuple[str, str, str, str]], asyncio.Task[None]]:
    """Serve the console in this loop; return the demo logins to print."""
    from alerts.queries import StoreBackend
    from alerts.store.guardians import GuardianStore
    from alerts.store.handover import HandoverStore
    from alerts.store.sessions import SqlSessionStore
    from dashboards.app import create_app
    from dashboards.families import GuardianBook
    from dashboards.serve import provision_demo_logins, serve_console
    from eldercare.learned import learned_lookup
    from ingest.influx import InfluxClient
    from ingest.reader import InfluxReader

    store_backend = StoreBackend(store=backend.store, service=backend.service)
    logins = provision_demo_logins(store_backend)
    influx = InfluxClient(url=influx_url, db=settings.influx_db)
    app = create_app(
        settings,
        backend=store_backend,
        telemetry=InfluxReader(client=influx),
        baselines=backend.baseline_of,
        learned=learned_lookup(backend),
        gateway_secret=settings.gateway_secret.get_secret_value(),
        provisioner=lambda site: broker.provision([site]),
        session_store=SqlSessionStore(backend.store.engine),
        handover=HandoverStore(backend.store),
        guardians=GuardianBook(guardians=GuardianStore(backend.store), links=backend.guardian_links),
    )
    task = tasks.create_task(serve_console(app, host=host, port=port, change="--console-port"), name="console")
    return [(lg.worker_id, lg.name, lg.role, lg.password) for lg in logins], task


def run_up(
    *,
    homes: int = 20,
    seed: int = 1,
    data_dir: Path | None = None,
    console_port: int = 8000,
    duration: float = 0.0,
    demo_sos_every_s: float = 180.0,
    host: str = "127.0.0.1",
) -> None:
    """Run the whole stack until Ctrl-C (or ``duration`` seconds); clean up child processes and temp data."""
    with contextlib.ExitStack() as stack:
        root = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eldercare-up-")))
        root.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        asyncio.run(
            _up(
                homes=homes,
                seed=seed,
                data_dir=root,
                console_port=console_port,
                duration=duration,
                demo_sos_every_s=demo_sos_every_s,
                host=host,
            )
        )
        console.print(f"ran for {time.monotonic() - started:.0f} s")
