"""Helpers of the chaos suite: a backend in a child process (so it can be SIGKILLed), steady load, counts."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from support.backend import registry_for
from support.processes import kill_process, stop_process

from eldercare.servers._child import free_port
from eldercare.servers.influxd import Influxd
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import WireMessage, encode_mattress_telemetry
from ingest.influx import InfluxClient

READY_LINE = "eldercare pipeline ready"

TUNED_BACKEND = """
import asyncio, json, logging, os, signal
from eldercare.backend import Backend
from eldercare.settings import Settings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
settings = Settings()


async def main() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    registry = json.loads(settings.registry_path.read_text())
    options = json.loads(os.environ["CHAOS_BACKEND"])
    await Backend(settings, registry=registry, **options).run(stop=stop)


asyncio.run(main())
"""
"""The backend ``eldercare serve`` runs, with options of the test's own (``Backend`` keyword arguments, as JSON in
``CHAOS_BACKEND``): timer and snapshot periods, which ``serve`` does not take from settings."""


def registry_of(sites: list[str], channel_for: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The docs/registry.md example with one home per site id (residents renumbered); channels by ``channel_for``."""
    doc = registry_for(sites[0], channel_for)
    template = doc["sites"][0]
    doc["sites"] = []
    for i, site in enumerate(sites):
        entry = copy.deepcopy(template)
        entry["site"], entry["gateway"] = site, f"gw-{site}"
        for resident in entry["residents"]:
            resident["id"] = f"R{i:04d}"
        doc["sites"].append(entry)
    return doc


class BackendProcess:
    """``eldercare serve`` as a child process with its own data directory; :meth:`kill` is a SIGKILL."""

    def __init__(
        self,
        *,
        broker: Broker,
        influxd: Influxd,
        db: str,
        data_dir: Path,
        sites: list[str],
        channel_for: Callable[[str], str] | None = None,
        options: dict[str, Any] | None = None,
        database_url: str | None = None,
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        registry = data_dir / "registry.json"
        registry.write_text(json.dumps(registry_of(sites, channel_for), ensure_ascii=False))
        self.data_dir = data_dir
        self.log_path = data_dir / "backend.log"
        self.env = {
            **os.environ,
            "ELDERCARE_DATA_DIR": str(data_dir),
            "ELDERCARE_REGISTRY_PATH": str(registry),
            "ELDERCARE_MQTT_HOST": broker.host,
            "ELDERCARE_MQTT_PORT": str(broker.backend_port),
            "ELDERCARE_MQTT_USERNAME": broker.backend_user,
            "ELDERCARE_MQTT_PASSWORD": broker.backend_password,
            "ELDERCARE_MQTT_CLIENT_ID": f"eldercare-chaos-{db}",
            "ELDERCARE_INFLUX_URL": influxd.url,
            "ELDERCARE_INFLUX_DB": db,
            "ELDERCARE_INFLUX_RETRY_INTERVAL_MS": "1000",
            # One home stands for a whole neighbourhood's load here (thousands a second): its budget of messages
            # (gateway/budget.py, tested on its own) would count most of them as over_budget instead of storing them.
            "ELDERCARE_SITE_BUDGET": "off",
            "ELDERCARE_LINK_SECRET": "chaos-link-secret-0123456789",
            # Its own HTTP port: the default 8000 may be taken by anything else on the machine.
            "ELDERCARE_CONSOLE_PORT": str(free_port()),
        }
        if database_url is not None:
            self.env["ELDERCARE_DATABASE_URL"] = database_url
        options = dict(options or {})
        if "policies" in options:  # as an operator gives them: a file named by the setting
            policies = data_dir / "policies.json"
            policies.write_text(json.dumps(options.pop("policies")), encoding="utf-8")
            self.env["ELDERCARE_POLICIES_PATH"] = str(policies)
        self.command = [sys.executable, "-c", "from eldercare.cli import main; main()", "serve"]
        if options:
            self.env["CHAOS_BACKEND"] = json.dumps(options)
            self.command = [sys.executable, "-c", TUNED_BACKEND]
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def database_url(self) -> str:
        """The backend's alert store (its SQLite file unless ``database_url`` was given)."""
        return self.env.get("ELDERCARE_DATABASE_URL") or f"sqlite:///{(self.data_dir / 'eldercare.db').resolve()}"

    def start(self, *, timeout: float = 60) -> None:
        """Start and wait until it is connected and subscribed (its log says so)."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
            self.command,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.starts += 1
        wait(lambda: READY_LINE in self.log_path.read_text(errors="replace")[offset:], timeout, "backend ready", self)

    def kill(self) -> None:
        """SIGKILL: no flush, no snapshot, no clean disconnect."""
        kill_process(self.proc)

    def stop(self) -> None:
        """SIGTERM and wait (clean shutdown)."""
        stop_process(self.proc)

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 30) -> str:
        """Last log lines (for failure messages)."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


def new_home_backend(
    prefix: str, broker: Broker, influxd: Influxd, tmp_path: Path, **kwargs: Any
) -> tuple[str, BackendProcess]:
    """A new home (``<prefix><random>``, provisioned on the broker) and a backend for it on a database of its own,
    not started yet; ``kwargs`` go to :class:`BackendProcess` (``channel_for``, ``options``, ``database_url``)."""
    site = f"{prefix}{uuid.uuid4().hex[:8]}"
    broker.provision([site])
    db = f"chaos_{uuid.uuid4().hex[:8]}"
    return site, BackendProcess(
        broker=broker, influxd=influxd, db=db, data_dir=tmp_path / "app", sites=[site], **kwargs
    )


def wait(check: Callable[[], bool], timeout: float, what: str, backend: BackendProcess | None = None) -> None:
    """Poll ``check`` until it holds (raise AssertionError with the backend's log tail otherwise)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    tail = f"\nbackend log:\n{backend.log_tail()}" if backend is not None else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{tail}")


def _acknowledged(info: mqtt.MQTTMessageInfo) -> bool:
    """True once the broker sent PUBACK (paho keeps the error code of a publish made while disconnected, even
    after it resent the message on reconnect, so ``is_published`` would raise for those)."""
    return bool(info._published)  # noqa: SLF001


class SteadyLoad(threading.Thread):
    """One home gateway publishing mattress telemetry at QoS 1 at a steady rate, counting PUBACKed messages.

    The paho client keeps unacknowledged messages and resends them after a reconnect, like gateway firmware, so
    every message counted in :attr:`acked` was acknowledged by the broker.
    """

    def __init__(self, *, broker: Broker, site: str, rate: float, devices: int = 1) -> None:
        super().__init__(daemon=True, name=f"load-{site}")
        self.broker, self.site, self.rate, self.devices = broker, site, rate, devices
        self.t0 = time.time_ns() // 1_000_000 - 120_000
        self.sent = 0
        self.acked = 0
        self._halt = threading.Event()
        self.error: BaseException | None = None
        self.gw = GatewayPublisher(
            site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port
        )

    def message(self, i: int) -> WireMessage:
        device = f"mat{i % self.devices + 1}" if self.devices > 1 else "mat1"
        return encode_mattress_telemetry(
            **self.gw.wire.stamp(device),
            ts=self.t0 + i,
            occupied=True,
            hr=60.0 + i % 30,
            rr=14.0,
            movement=i % 50,
        )

    def run(self) -> None:
        try:
            self.gw.connect(timeout=30)
            infos = []
            start = time.monotonic()
            i = 0
            while not self._halt.is_set():
                infos.append(self.gw.publish(self.message(i)))
                i += 1
                self.sent = i
                ahead = i / self.rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
            deadline = time.monotonic() + 120
            for info in infos:
                while not _acknowledged(info) and time.monotonic() < deadline:
                    time.sleep(0.01)
            self.acked = sum(1 for info in infos if _acknowledged(info))
        except BaseException as exc:  # reported by the test
            self.error = exc

    def finish(self, timeout: float = 150) -> int:
        """Stop publishing, wait for every PUBACK; return how many messages the broker acknowledged."""
        self._halt.set()
        self.join(timeout)
        assert self.error is None, self.error
        with contextlib.suppress(Exception):
            self.gw.close()
        return self.acked


async def count_mattress(influx: InfluxClient, site: str) -> int:
    """Distinct stored mattress readings of a site (one point per reading)."""
    results = await influx.query('SELECT count("seq") FROM "mattress" WHERE "site" = $site', params={"site": site})
    series = results[0].series
    return int(series[0].values[0][1]) if series else 0
