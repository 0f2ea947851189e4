"""The per-model mapping table of Zigbee2MQTT devices, loaded once from ``models.toml`` (data, not code)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from gateway.models import DeviceKind

TABLE_PATH: Final = Path(__file__).with_name("models.toml")


class MappingError(ValueError):
    """Raised when the mapping table is malformed (at start-up, never per message)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(slots=True, frozen=True)
class ModelMap:
    """How one Z2M model's keys become contract v1 events of one device kind."""

    model: str
    kind: DeviceKind
    vendor: str = ""
    levels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Snapshot key → {value → event}: an event on a change of the value."""
    actions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Transient key → {value → event}: every message carrying the value is an event."""
    quiet: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Action values that are deliberately no event."""
    ignore: frozenset[str] = frozenset()


@dataclass(slots=True, frozen=True)
class MappingTable:
    """Every known model plus the keys common to all."""

    models: Mapping[str, ModelMap]
    status: frozenset[str]
    ignore: frozenset[str]

    def known(self, m: ModelMap, key: str) -> bool:
        """True if ``key`` means something (or is deliberately ignored) for model ``m``."""
        return key in m.levels or key in m.actions or key in self.status or key in self.ignore or key in m.ignore


def _str_map(where: str, raw: Any) -> dict[str, dict[str, str]]:
    if not isinstance(raw, dict):
        raise MappingError(where, "expected a table")
    out: dict[str, dict[str, str]] = {}
    for key, values in raw.items():
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise MappingError(f"{where}.{key}", "expected a table of value = event strings")
        out[str(key)] = {str(k): v for k, v in values.items()}
    return out


def parse_table(doc: Mapping[str, Any]) -> MappingTable:
    """Build the table from the TOML document; raise :class:`MappingError` on a bad entry.

    >>> t = parse_table({"models": {"X1": {"kind": "door", "levels": {"contact": {"true": "close"}}}}})
    >>> t.models["X1"].kind, t.models["X1"].levels["contact"]["true"]
    (<DeviceKind.DOOR: 'door'>, 'close')
    """
    common = doc.get("common", {})
    models: dict[str, ModelMap] = {}
    for name, entry in doc.get("models", {}).items():
        where = f"models.{name}"
        try:
            kind = DeviceKind(entry["kind"])
        except (KeyError, ValueError):
            raise MappingError(where, f"kind must be one of {[k.value for k in DeviceKind]}") from None
        quiet_raw = entry.get("quiet", {})
        models[name] = ModelMap(
            model=name,
            kind=kind,
            vendor=str(entry.get("vendor", "")),
            levels=_str_map(f"{where}.levels", entry.get("levels", {})),
            actions=_str_map(f"{where}.actions", entry.get("actions", {})),
            quiet={str(k): frozenset(map(str, v)) for k, v in quiet_raw.items()},
            ignore=frozenset(map(str, entry.get("ignore", ()))),
        )
    return MappingTable(
        models=models,
        status=frozenset(map(str, common.get("status", ()))),
        ignore=frozenset(map(str, common.get("ignore", ()))),
    )


def load_table(path: Path = TABLE_PATH) -> MappingTable:
    """Read and check the mapping table (once, at start)."""
    with path.open("rb") as fh:
        return parse_table(tomllib.load(fh))
