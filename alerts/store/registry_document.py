"""The registry exchange document (docs/registry.md, version 1), decoded and checked before import."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from alerts.store.errors import RegistryImportError

ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
ROLES: Final = frozenset({"admin", "district", "street", "community_duty", "grid_worker"})
DEVICE_KINDS: Final = frozenset({"mattress", "wristband", "door", "smoke", "gas", "call_button", "motion", "gateway"})


class RDistrict(msgspec.Struct, frozen=True):
    """区."""

    id: str
    name: str


class RStreet(msgspec.Struct, frozen=True):
    """街道."""

    id: str
    name: str
    district: str


class RCommunity(msgspec.Struct, frozen=True):
    """社区."""

    id: str
    name: str
    street: str


class RGrid(msgspec.Struct, frozen=True):
    """网格."""

    id: str
    name: str
    community: str


class RWorker(msgspec.Struct, frozen=True):
    """A worker; ``channels`` (apprise URLs) and ``lang`` are optional extensions of version 1."""

    id: str
    name: str
    role: str
    scope: str
    phone: str | None = None
    channels: list[str] | msgspec.UnsetType = msgspec.UNSET
    lang: str | msgspec.UnsetType = msgspec.UNSET


class RDevice(msgspec.Struct, frozen=True):
    """A device of a home."""

    device: str
    kind: str
    room: str | None = None


class RContact(msgspec.Struct, frozen=True):
    """An emergency contact."""

    name: str
    phone: str
    relation: str | None = None


class RResident(msgspec.Struct, frozen=True):
    """An elder."""

    id: str
    name: str
    gender: str | None = None
    birth_year: int | None = None
    id_number: str | None = None
    phone: str | None = None
    categories: list[str] = msgspec.field(default_factory=list)
    ability_level: int | None = None
    emergency_contacts: list[RContact] = msgspec.field(default_factory=list)
    consent: bool = False


class RSite(msgspec.Struct, frozen=True):
    """A home."""

    site: str
    gateway: str
    grid: str
    address: str
    devices: list[RDevice] = msgspec.field(default_factory=list)
    residents: list[RResident] = msgspec.field(default_factory=list)


class RegistryDoc(msgspec.Struct, frozen=True):
    """The whole document."""

    version: int
    district: RDistrict | None = None
    districts: list[RDistrict] = msgspec.field(default_factory=list)
    streets: list[RStreet] = msgspec.field(default_factory=list)
    communities: list[RCommunity] = msgspec.field(default_factory=list)
    grids: list[RGrid] = msgspec.field(default_factory=list)
    workers: list[RWorker] = msgspec.field(default_factory=list)
    sites: list[RSite] = msgspec.field(default_factory=list)

    @property
    def all_districts(self) -> list[RDistrict]:
        """``district`` and ``districts`` together."""
        return ([self.district] if self.district else []) + list(self.districts)


def parse_registry(data: Mapping[str, Any] | bytes | str) -> RegistryDoc:
    """Decode and check a registry document; raise :class:`RegistryImportError` naming the bad path."""
    try:
        if isinstance(data, bytes | str):
            doc = msgspec.json.decode(data, type=RegistryDoc)
        else:
            doc = msgspec.convert(dict(data), type=RegistryDoc)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise RegistryImportError("$", str(exc)) from None
    if doc.version != 1:
        raise RegistryImportError("$.version", f"unsupported version {doc.version}")
    districts = {d.id for d in doc.all_districts}
    streets = {s.id for s in doc.streets}
    communities = {c.id for c in doc.communities}
    grids = {g.id for g in doc.grids}
    for i, st in enumerate(doc.streets):
        if st.district not in districts:
            raise RegistryImportError(f"$.streets[{i}].district", f"unknown district {st.district!r}")
    for i, co in enumerate(doc.communities):
        if co.street not in streets:
            raise RegistryImportError(f"$.communities[{i}].street", f"unknown street {co.street!r}")
    for i, gr in enumerate(doc.grids):
        if gr.community not in communities:
            raise RegistryImportError(f"$.grids[{i}].community", f"unknown community {gr.community!r}")
    scopes = districts | streets | communities | grids
    for i, wk in enumerate(doc.workers):
        if wk.role not in ROLES:
            raise RegistryImportError(f"$.workers[{i}].role", f"unknown role {wk.role!r}")
        if wk.role != "admin" and wk.scope not in scopes:
            raise RegistryImportError(f"$.workers[{i}].scope", f"unknown scope {wk.scope!r}")
    resident_ids: set[str] = set()
    for i, site in enumerate(doc.sites):
        path = f"$.sites[{i}]"
        if not ID_PATTERN.fullmatch(site.site) or not ID_PATTERN.fullmatch(site.gateway):
            raise RegistryImportError(f"{path}.site", "site and gateway ids must match [A-Za-z0-9_-]{1,64}")
        if site.grid not in grids:
            raise RegistryImportError(f"{path}.grid", f"unknown grid {site.grid!r}")
        for j, dev in enumerate(site.devices):
            if not ID_PATTERN.fullmatch(dev.device):
                raise RegistryImportError(f"{path}.devices[{j}].device", "device id must match [A-Za-z0-9_-]{1,64}")
            if dev.kind not in DEVICE_KINDS:
                raise RegistryImportError(f"{path}.devices[{j}].kind", f"unknown kind {dev.kind!r}")
        for j, res in enumerate(site.residents):
            if res.id in resident_ids:
                raise RegistryImportError(f"{path}.residents[{j}].id", f"duplicate resident {res.id!r}")
            resident_ids.add(res.id)
            if res.ability_level is not None and not 0 <= res.ability_level <= 4:
                raise RegistryImportError(f"{path}.residents[{j}].ability_level", "must be 0..4 (GB/T 42195-2022)")
    return doc
