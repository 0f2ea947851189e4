"""Helpers of the gateway tests (a module with a unique name, so test files can import it)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from support.backend import backend_login

from gateway.contract import UPLINK_TYPES
from gateway.listener import MqttListener
from gateway.models import CONTRACT_PREFIX, DeviceKind
from gateway.mqtt_wire import NativeListener
from gateway.provisioning import SiteDevices, StaticDirectory
from gateway.sessions import SplitListener

if TYPE_CHECKING:
    from eldercare.stack import Broker

DEVICES = {
    "mat1": DeviceKind.MATTRESS,
    "band1": DeviceKind.WRISTBAND,
    "door1": DeviceKind.DOOR,
    "smoke1": DeviceKind.SMOKE,
    "gas1": DeviceKind.GAS,
    "btn1": DeviceKind.CALL_BUTTON,
    "pir1": DeviceKind.MOTION,
}

Listener = MqttListener | NativeListener | SplitListener
MakeListener = Callable[..., Awaitable[Listener]]


def site_filters(*sites: str) -> tuple[str, ...]:
    """Uplink filters of some sites only, so tests sharing the session broker never see each other."""
    return tuple(f"{CONTRACT_PREFIX}/{s}/+/+/{t.value}" for s in sites for t in UPLINK_TYPES)


def native_backend(broker: Broker, site: str, *, client_id: str, **options: Any) -> NativeListener:
    """The backend's own MQTT client on the real broker, subscribed to ``site``'s uplinks (not started yet)."""
    return NativeListener(
        **backend_login(broker),
        client_id=client_id,
        subscriptions=site_filters(site),
        **options,
    )


def directory_for(*sites: str) -> StaticDirectory:
    """A device directory with the same six devices in every given site."""
    return StaticDirectory([SiteDevices(site=s, gateway=f"gw-{s}", devices=dict(DEVICES)) for s in sites])


def cut_connection(listener: Listener) -> None:
    """Shut the listener's TCP connection down under it (as a network fault would), whichever client it uses."""
    if isinstance(listener, NativeListener):
        conn = listener._conn  # noqa: SLF001 - the fault is injected below the client
        sock = conn.transport.get_extra_info("socket") if conn and conn.transport else None
    else:
        sock = listener._client.socket() if listener._client else None  # noqa: SLF001
    assert sock is not None
    sock.shutdown(socket.SHUT_RDWR)
