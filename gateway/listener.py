"""The only module that talks to the MQTT broker with paho-mqtt (receive path and credential probes)."""

from __future__ import annotations

import contextlib
import secrets
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def probe_credentials(*, host: str, port: int, username: str, password: str, timeout: float = 2.0) -> bool:
    """True if the broker accepts a connection with these credentials."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{secrets.token_hex(4)}")
    client.username_pw_set(username, password)
    try:
        client.connect(host, port, keepalive=5)
    except OSError:
        return False
    codes: list[int] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: codes.append(reason.value)
    deadline = time.monotonic() + timeout
    while not codes and time.monotonic() < deadline:
        client.loop(timeout=0.05)
    with contextlib.suppress(Exception):
        client.disconnect()
    return codes == [0]
