"""Shared pieces of the simulator tests: the gateway's view of a registry, and a real subscriber."""

from __future__ import annotations

import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from eldercare.stack import Broker
from gateway.models import DeviceKind


class Directory:
    """The gateway's view of the registry the simulator emitted."""

    def __init__(self, registry: dict[str, object]) -> None:
        sites = registry["sites"]
        assert isinstance(sites, list)
        self.kinds = {(s["site"], d["device"]): DeviceKind(d["kind"]) for s in sites for d in s["devices"]}
        self.kinds |= {(s["site"], s.get("gateway") or f"gw-{s['site']}"): DeviceKind.GATEWAY for s in sites}
        self.sites = {s["site"] for s in sites}

    def site_known(self, site: str) -> bool:
        return site in self.sites

    def device_kind(self, site: str, device: str) -> DeviceKind | None:
        return self.kinds.get((site, device))


class Watcher:
    """The backend's view: a real subscriber with the backend account, counting what the broker delivers."""

    def __init__(self, broker: Broker, *, keep: bool = True) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.count = 0
        self.sites: set[str] = set()
        self.keep = keep
        """Keep every message (small tests) or only count them and their sites (load tests)."""
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:8]}")
        self.client.username_pw_set(broker.backend_user, broker.backend_password)
        self.client.on_message = self._on_message
        ready = threading.Event()
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.connect(broker.host, broker.backend_port)
        self.client.loop_start()
        self.client.subscribe([("ec/v1/+/+/+/telemetry", 1), ("ec/v1/+/+/+/event", 1), ("ec/v1/+/+/+/status", 1)])
        assert ready.wait(10)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.count += 1
            self.sites.add(message.topic.split("/")[2])
            if self.keep:
                self.got.append((message.topic, bytes(message.payload)))

    def for_prefix(self, prefix: str) -> list[tuple[str, bytes]]:
        with self.lock:
            return [m for m in self.got if m[0].split("/")[2].startswith(prefix)]

    def wait_for(self, prefix: str, count: int, timeout: float = 20) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.for_prefix(prefix)) < count:
            time.sleep(0.05)
        return self.for_prefix(prefix)

    def wait_count(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.count >= count:
                    break
            time.sleep(0.05)
        with self.lock:
            return self.count

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
