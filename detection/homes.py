"""The part of the registry (docs/registry.md) the detection core needs: homes, gateways, devices."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec

from detection.errors import RegistryError
from gateway.models import DeviceKind
from gateway.rooms import room_or_none


class DeviceInfo(msgspec.Struct, frozen=True):
    """One registered device of a home."""

    device: str
    kind: DeviceKind
    room: str | None = None


TYPICAL_DEVICES: tuple[DeviceInfo, ...] = (
    DeviceInfo(device="mat1", kind=DeviceKind.MATTRESS, room="bedroom"),
    DeviceInfo(device="band1", kind=DeviceKind.WRISTBAND),
    DeviceInfo(device="door1", kind=DeviceKind.DOOR, room="entrance"),
    DeviceInfo(device="smoke1", kind=DeviceKind.SMOKE, room="kitchen"),
    DeviceInfo(device="btn1", kind=DeviceKind.CALL_BUTTON, room="bedroom"),
    DeviceInfo(device="pir1", kind=DeviceKind.MOTION, room="living"),
)
"""A typical equipped home (mattress, wristband, door contact, smoke detector, call button, PIR): benchmarks, tests."""


CLOSE_WATCH: Final = "重点关注"
"""The resident category that puts a home under close watch (see :attr:`SiteInfo.close_watch`)."""


class SiteInfo(msgspec.Struct, frozen=True):
    """One home: its gateway and its devices."""

    site: str
    gateway: str
    devices: tuple[DeviceInfo, ...]
    solitary: bool = True
    """True when a resident is tagged 独居 (or no resident categories are given)."""
    bedbound: bool = False
    """True when a resident is tagged 失能 or has ability level ≥ 3 (does not get up unaided)."""
    close_watch: bool = False
    """True when a resident is tagged 重点关注 (close watch): a long lie pages after the shorter
    ``DetectConfig.inactivity_close_watch_backstop_min``, at the cost of more false pages (docs/detection.md)."""


class HomeRegistry:
    """Homes and devices by id; also a :class:`gateway.contract.DeviceDirectory` for decoding."""

    __slots__ = ("_kinds", "sites")

    def __init__(self, sites: Mapping[str, SiteInfo]) -> None:
        self.sites: dict[str, SiteInfo] = dict(sites)
        self._kinds: dict[tuple[str, str], DeviceKind] = {
            (s.site, d.device): d.kind for s in self.sites.values() for d in s.devices
        }
        self._kinds.update({(s.site, s.gateway): DeviceKind.GATEWAY for s in self.sites.values()})

    def __len__(self) -> int:
        return len(self.sites)

    def site_known(self, site: str) -> bool:
        """True if the home is provisioned."""
        return site in self.sites

    def device_kind(self, site: str, device: str) -> DeviceKind | None:
        """Kind of a provisioned device of a home (``gateway`` for its gateway id), or None if unknown."""
        return self._kinds.get((site, device))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> HomeRegistry:
        """Build from the parsed ``registry.json`` (version 1)."""
        if data.get("version") != 1:
            raise RegistryError(f"unsupported version {data.get('version')!r}, expected 1")
        raw_sites = data.get("sites")
        if not isinstance(raw_sites, list):
            raise RegistryError("'sites' must be a list")
        sites: dict[str, SiteInfo] = {}
        for raw in raw_sites:
            try:
                devices = tuple(
                    DeviceInfo(device=str(d["device"]), kind=DeviceKind(d["kind"]), room=room_or_none(d.get("room")))
                    for d in raw.get("devices", [])
                )
                site = str(raw["site"])
                residents = raw.get("residents") or []
                cats = {c for r in residents for c in (r.get("categories") or [])}
                sites[site] = SiteInfo(
                    site=site,
                    gateway=str(raw.get("gateway") or f"gw-{site}"),
                    devices=devices,
                    solitary=not cats or "独居" in cats,
                    bedbound="失能" in cats or any(int(r.get("ability_level") or 0) >= 3 for r in residents),
                    close_watch=CLOSE_WATCH in cats,
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise RegistryError(f"bad site entry {raw!r}: {exc}") from None
        return cls(sites)

    @classmethod
    def load(cls, path: str | Path) -> HomeRegistry:
        """Read a ``registry.json`` file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RegistryError(f"cannot read {path}: {exc}") from None
        if not isinstance(data, dict):
            raise RegistryError("top level must be an object")
        return cls.from_mapping(data)
