"""Ending the backend sessions a test left on the shared broker.

Every test that starts a backend on the session-wide ``broker`` fixture leaves a persistent session (clean session
off) behind: the main one and its ``-priority`` lane, subscribed to every home's uplinks. The broker then queued
every later test's messages for each, and with ``autosave_on_changes`` it rewrote the whole growing database every
1,000 changes: after the gateway and ingest tests the file held 107 MB, and the flood and outage tests that came
later ran 10–20 times slower than alone (one hit its 300 s timeout in a full run, 2026-12-07). The broker's log
names each connection with its clean-session flag (``connection_messages true``), so the sessions still open are
those whose last connection had ``c0``; a clean-session connection under the same id discards each one.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from eldercare.stack import Broker

_CONNECTED = re.compile(r"New client connected from \S+ as (\S+) \(p\d+, c([01]), k\d+, u'([^']*)'\)")


def persistent_sessions(log: Path, user: str) -> list[str]:
    """Client ids of ``user`` whose last connection in the broker's ``log`` kept its session (``c0``)."""
    last: dict[str, str] = {}
    with log.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _CONNECTED.search(line)
            if m and m.group(3) == user:
                last[m.group(1)] = m.group(2)
    return [client_id for client_id, clean in last.items() if clean == "0"]


def end_session(broker: Broker, client_id: str, timeout: float = 10.0) -> None:
    """Connect as ``client_id`` with a clean session (which discards the one kept) and disconnect."""
    answered = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.username_pw_set(broker.backend_user, broker.backend_password)
    client.on_connect = lambda *_: answered.set()
    client.connect(broker.host, broker.backend_port, keepalive=10)
    client.loop_start()
    try:
        if not answered.wait(timeout):
            raise TimeoutError(f"the broker did not answer {client_id}'s clean-session connect in {timeout} s")
    finally:
        client.disconnect()
        client.loop_stop()


def end_backend_sessions(broker: Broker) -> list[str]:
    """End every backend session the broker still keeps; return their client ids."""
    left = persistent_sessions(broker.server.log_path, broker.backend_user)
    for client_id in left:
        end_session(broker, client_id)
    return left
