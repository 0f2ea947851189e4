"""Helpers of the gateway tests (a module with a unique name, so test files can import it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.contract import UPLINK_TYPES
from gateway.listener import MqttListener
from gateway.models import CONTRACT_PREFIX, DeviceKind
from gateway.provisioning import SiteDevices, StaticDirectory

DEVICES = {
    "mat1": DeviceKind.MATTRESS,
    "band1": DeviceKind.WRISTBAND,
    "door1": DeviceKind.DOOR,
    "smoke1": DeviceKind.SMOKE,
    "gas1": DeviceKind.GAS,
    "btn1": DeviceKind.CALL_BUTTON,
    "pir1": DeviceKind.MOTION,
}

MakeListener = Callable[..., Awaitable[MqttListener]]


def site_filters(*sites: str) -> tuple[str, ...]:
    """Uplink filters of some sites only, so tests sharing the session broker never see each other."""
    return tuple(f"{CONTRACT_PREFIX}/{s}/+/+/{t.value}" for s in sites for t in UPLINK_TYPES)


def directory_for(*sites: str) -> StaticDirectory:
    """A device directory with the same six devices in every given site."""
    return StaticDirectory([SiteDevices(site=s, gateway=f"gw-{s}", devices=dict(DEVICES)) for s in sites])
