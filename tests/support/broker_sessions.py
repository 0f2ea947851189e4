"""Ending the backend sessions a test left on the shared broker.

Every test that starts a backend on the session-wide ``broker`` fixture leaves a persistent session (clean session
off) behind: the main one and its ``-priority`` lane, subscribed to every home's uplinks. The broker then queued
every later test's messages for each, and with ``autosave_on_changes`` it rewrote the whole growing database every
1,000 changes: after the gateway and ingest tests the file held 107 MB, and the flood and outage tests that came
later ran 10–20 times slower than alone (one hit its 300 s timeout in a full run, 2026-12-07). The broker's log
names each connection with its clean-session flag (``connection_messages true``), so the sessions still open are
those whose last connection had ``c0``. Each is ended the way ``eldercare broker end-session`` ends one.
"""

from __future__ import annotations

import re
from pathlib import Path

from eldercare.stack import Broker
from gateway.listener import end_kept_session

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


def end_session(broker: Broker, client_id: str) -> bool:
    """End the backend session the broker keeps under ``client_id`` (the product's ``broker end-session``)."""
    return end_kept_session(
        host=broker.host,
        port=broker.backend_port,
        username=broker.backend_user,
        password=broker.backend_password,
        client_id=client_id,
    )


def end_backend_sessions(broker: Broker) -> list[str]:
    """End every backend session the broker still keeps; return their client ids."""
    left = persistent_sessions(broker.server.log_path, broker.backend_user)
    for client_id in left:
        end_session(broker, client_id)
    return left
