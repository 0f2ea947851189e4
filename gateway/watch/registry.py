"""Which home each 4G watch belongs to: registry devices with an ``imei`` (docs/registry.md).

A watch is a ``wristband`` device of one home whose entry also names the IMEI the watch sends in every frame::

    {"device": "watch1", "kind": "wristband", "imei": "8800000015"}

The IMEI is the watch's only credential in this protocol (it has no password), so it is an allow-list: an IMEI
not in the registry is refused, and one IMEI can belong to one home only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from gateway.contract import ID_PATTERN
from gateway.models import DeviceKind
from gateway.provisioning import ProvisioningError

IMEI_PATTERN: Final = re.compile(r"[A-Za-z0-9]{1,20}")
"""What the frame header allows as an id (IMEIs are 15 digits; some watches send the last 10)."""


@dataclass(slots=True, frozen=True)
class WatchBinding:
    """The home and device id a watch's readings are stored under."""

    site: str
    device: str


def watches_from_registry(registry: Mapping[str, Any]) -> dict[str, WatchBinding]:
    """IMEI → (site, device) for every registry device with an ``imei``; raises :class:`ProvisioningError`.

    >>> doc = {"sites": [{"site": "h1", "devices": [{"device": "w1", "kind": "wristband", "imei": "8800000015"}]}]}
    >>> watches_from_registry(doc)
    {'8800000015': WatchBinding(site='h1', device='w1')}
    """
    out: dict[str, WatchBinding] = {}
    for entry in registry.get("sites", []):
        site = str(entry["site"])
        for dev in entry.get("devices", []):
            imei = dev.get("imei")
            if imei is None:
                continue
            device = str(dev["device"])
            where = f"{site}/{device}"
            if not isinstance(imei, str) or not IMEI_PATTERN.fullmatch(imei):
                raise ProvisioningError(where, "imei must be 1-20 letters or digits (as the watch sends it)")
            if not ID_PATTERN.fullmatch(device):
                raise ProvisioningError(where, "device id must match [A-Za-z0-9_-]{1,64}")
            if dev.get("kind") != DeviceKind.WRISTBAND.value:
                raise ProvisioningError(where, "a device with an imei must be of kind wristband")
            if imei in out:
                raise ProvisioningError(where, f"imei {imei} is already registered to {out[imei].site}")
            out[imei] = WatchBinding(site=site, device=device)
    return out
