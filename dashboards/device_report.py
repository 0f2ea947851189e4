"""Device health for the device list and the statistics: last seen and battery from InfluxDB, judged by cadence.

Each device kind declares how often a healthy device speaks (:data:`gateway.models.EXPECTED_CADENCE_S`). A
device is *online* while its silence is under two cadences, *late* until the offline detector's limit
(:func:`detection.detectors.offline.offline_limit_ms`, the one rule: two heartbeats + 5 min for event-driven
sensors, three cadences for the mattress, hours for the wristband; ``site_offline_after_s`` for the home
gateway), *offline* after
that, and *unseen* when it sent nothing within the query's look-back window. Without a telemetry source (or when
InfluxDB is unreachable) the backends' alert-derived flags are used instead, and the report says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

from alerts.views import AlertView, Place, ResidentView
from detection.config import DetectConfig
from detection.detectors.offline import offline_limit_ms
from detection.models import AlertType
from gateway.models import EXPECTED_CADENCE_S, DeviceKind
from ingest.errors import IngestError
from ingest.reader import LOOKBACK_MS, LastSeenReader, Seen, last_seen

_LOG = logging.getLogger(__name__)

DEVICE_ALERT_TYPES: Final = frozenset(
    {AlertType.DEVICE_OFFLINE, AlertType.LOW_BATTERY, AlertType.TAMPER, AlertType.NOT_WORN, AlertType.DEVICE_FAULT}
)
"""Open alerts counted against a device (``site_offline`` counts against the home's gateway)."""

Source = Literal["telemetry", "alerts"]


class Presence(StrEnum):
    """What the console says about a device's silence."""

    ONLINE = "online"
    LATE = "late"
    OFFLINE = "offline"
    UNSEEN = "unseen"

    @property
    def reachable(self) -> bool:
        """Online or late (not yet past the offline limit): counted as online in the statistics."""
        return self in (Presence.ONLINE, Presence.LATE)


def _kind(kind: str) -> DeviceKind | None:
    try:
        return DeviceKind(kind)
    except ValueError:
        return None


def offline_after_ms(kind: str, config: DetectConfig) -> int:
    """Silence after which a device of ``kind`` is offline: the offline detector's own rule, asked, not copied.

    >>> offline_after_ms("mattress", DetectConfig()), offline_after_ms("door", DetectConfig()) // 60_000
    (900000, 725)
    """
    k = _kind(kind)
    if k is DeviceKind.GATEWAY:
        return config.site_offline_after_s * 1000
    return offline_limit_ms(k if k is not None else DeviceKind.MOTION, config)


def late_after_ms(kind: str, config: DetectConfig) -> int:
    """Silence after which a device is late: two expected messages missed (never beyond the offline limit)."""
    k = _kind(kind)
    cadence_s = EXPECTED_CADENCE_S[k] if k is not None else 3600
    return min(2 * cadence_s * 1000, offline_after_ms(kind, config))


def presence(kind: str, last_seen_ms: int | None, *, now_ms: int, config: DetectConfig) -> Presence:
    """Online / late / offline from the silence since ``last_seen_ms``; unseen for None.

    >>> cfg = DetectConfig()
    >>> [presence("mattress", t, now_ms=1_000_000, config=cfg) for t in (990_000, 900_000, 0, None)]
    [<Presence.ONLINE: 'online'>, <Presence.LATE: 'late'>, <Presence.OFFLINE: 'offline'>, <Presence.UNSEEN: 'unseen'>]
    """
    if last_seen_ms is None:
        return Presence.UNSEEN
    silence = now_ms - last_seen_ms
    if silence > offline_after_ms(kind, config):
        return Presence.OFFLINE
    if silence > late_after_ms(kind, config):
        return Presence.LATE
    return Presence.ONLINE


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One line of the device list."""

    site: str
    device: str
    kind: str
    room: str | None
    place: Place
    residents: tuple[tuple[str, str], ...]
    """``(id, name)`` of the residents of the home."""
    address: str
    presence: Presence
    last_seen_ms: int | None
    battery_pct: int | None
    battery_low: bool
    open_alerts: int
    gateway: Presence
    """The home gateway's presence (a device behind a dark gateway cannot be heard either)."""


@dataclass(frozen=True, slots=True)
class DeviceReport:
    """The devices of a scope, where their status came from and when it was judged."""

    rows: tuple[DeviceRow, ...]
    source: Source
    now_ms: int
    lookback_ms: int = LOOKBACK_MS

    def counts(self, *, gateways: bool = False) -> dict[Presence, int]:
        """Devices per presence.

        The statistics' rate is of the homes' devices (gateways excluded); the device list counts every row it lists
        (``gateways``), so an offline gateway is in its "offline" count (it was not, while the list showed it).
        """
        out = dict.fromkeys(Presence, 0)
        for r in self.rows:
            if gateways or r.kind != DeviceKind.GATEWAY.value:
                out[r.presence] += 1
        return out

    def online_rate(self) -> tuple[int, int]:
        """``(online or late, total)`` registered devices (gateways excluded)."""
        rows = [r for r in self.rows if r.kind != DeviceKind.GATEWAY.value]
        return sum(r.presence.reachable for r in rows), len(rows)


def build_rows(
    residents: Sequence[ResidentView],
    alerts: Sequence[AlertView],
    *,
    seen: Mapping[tuple[str, str], Seen] | None,
    now_ms: int,
    config: DetectConfig,
) -> list[DeviceRow]:
    """Registered devices (plus gateways heard from) of the residents' homes, each home's devices once.

    With ``seen`` None (no telemetry) the backends' flags are used: a device is offline while a
    ``device_offline`` alert of it (or a ``site_offline`` alert of its home) is open.
    """
    homes: dict[str, list[ResidentView]] = {}
    for r in residents:
        homes.setdefault(r.site, []).append(r)
    open_device: dict[tuple[str, str], int] = {}
    dark_sites: dict[str, int] = {}
    for a in alerts:
        if not a.active:
            continue
        if a.type is AlertType.SITE_OFFLINE:
            dark_sites[a.site] = dark_sites.get(a.site, 0) + 1
        elif a.type in DEVICE_ALERT_TYPES and a.device:
            open_device[(a.site, a.device)] = open_device.get((a.site, a.device), 0) + 1
    rows: list[DeviceRow] = []
    for site, people in sorted(homes.items()):
        first = people[0]
        who = tuple((p.id, p.name) for p in people)
        if seen is None:
            gw = Presence.OFFLINE if site in dark_sites else Presence.ONLINE
        else:
            gateways = [(d, s) for (st, d), s in seen.items() if st == site and s.kind == DeviceKind.GATEWAY.value]
            gw = min(
                (presence(s.kind, s.last_seen_ms, now_ms=now_ms, config=config) for _, s in gateways),
                key=list(Presence).index,
                default=Presence.UNSEEN,
            )
            for device, s in sorted(gateways):
                rows.append(
                    DeviceRow(
                        site=site, device=device, kind=s.kind, room=None, place=first.place, residents=who,
                        address=first.address, presence=presence(s.kind, s.last_seen_ms, now_ms=now_ms, config=config),
                        last_seen_ms=s.last_seen_ms, battery_pct=None, battery_low=False,
                        open_alerts=dark_sites.get(site, 0), gateway=gw,
                    )
                )  # fmt: skip
        for d in first.devices:
            s_opt = seen.get((site, d.device)) if seen is not None else None
            if seen is None:
                state = Presence.ONLINE if d.online else Presence.OFFLINE
                last, battery = d.last_seen_ms, d.battery_pct
            else:
                last = s_opt.last_seen_ms if s_opt else None
                battery = s_opt.battery_pct if s_opt else None
                state = presence(d.kind, last, now_ms=now_ms, config=config)
            rows.append(
                DeviceRow(
                    site=site, device=d.device, kind=d.kind, room=d.room, place=first.place, residents=who,
                    address=first.address, presence=state, last_seen_ms=last, battery_pct=battery,
                    battery_low=battery is not None and battery <= config.battery_low_pct,
                    open_alerts=open_device.get((site, d.device), 0), gateway=gw,
                )
            )  # fmt: skip
    return rows


async def device_report(
    residents: Sequence[ResidentView],
    alerts: Sequence[AlertView],
    *,
    reader: object | None,
    now_ms: int,
    config: DetectConfig | None = None,
    lookback_ms: int = LOOKBACK_MS,
) -> DeviceReport:
    """The device list of these residents' homes: from telemetry when ``reader`` can query it, else from alerts."""
    cfg = config or DetectConfig()
    seen: dict[tuple[str, str], Seen] | None = None
    if isinstance(reader, LastSeenReader):
        try:
            seen = await last_seen(reader, (r.site for r in residents), now_ms=now_ms, lookback_ms=lookback_ms)
        except IngestError as exc:
            _LOG.warning("device status falls back to alerts: telemetry unavailable (%s)", exc)
    rows = build_rows(residents, alerts, seen=seen, now_ms=now_ms, config=cfg)
    source: Source = "alerts" if seen is None else "telemetry"
    return DeviceReport(rows=tuple(rows), source=source, now_ms=now_ms, lookback_ms=lookback_ms)
