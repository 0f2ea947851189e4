"""Zigbee2MQTT → contract v1 readings: device state snapshots become edges, the bridge's Last Will a gateway status.

Topics (a home's Z2M ``base_topic`` is ``z2m/{site}``, published through the home's own broker account):

- ``z2m/{site}/bridge/devices`` (retained): the device list; friendly names resolve to IEEE addresses and models.
  Devices are keyed by IEEE address (the registry device id), so a rename changes nothing downstream.
- ``z2m/{site}/bridge/state``: ``{"state":"online"}`` or 1.x plain ``online``; ``offline`` is the bridge's Last Will
  and becomes the home gateway's ``online: false`` (one site-offline incident, as for a contract v1 gateway).
- ``z2m/{site}/{friendly_name}``: the device state. With ``cache_state`` (the default) it is a snapshot of every
  attribute, so a message is not an event: events are raised on a change of a mapped key's value, per device and
  key. ``action`` keys are transient and every listed value is an event (``""`` and ``null`` are not).
  A state message without an event is also a status reading (battery, tamper...): a heartbeat for the offline rule.
  One with an event gives the event only (the person caused it: no heartbeat), unless its status fields changed.
- ``z2m/{site}/{friendly_name}/availability``: both forms are parsed; no reading (the backend's own silence rule,
  12 h for event-driven devices, is far tighter than Z2M's 25 h for battery devices).

Z2M messages carry no sequence number: device readings get a per-device counter of this adapter (1, 2, ... from
start-up; it keeps two readings of one device in the same millisecond apart in storage) and the time they were
received; the bridge's status has ``seq=None`` like a contract v1 Last Will. In the clustered mode
(``stream_numbered``) a reading's ``seq`` is instead :func:`gateway.dedupe.stream_seq` of the message's JetStream
stream sequence and the reading's place among the device's readings from it: the same on every owner of the
partition, so a copy redelivered after a hand-over is recognised (and written to the same InfluxDB point), and a
new owner's readings are never taken for copies of the old owner's. A snapshot
seen first (after a restart, or replayed from the retained store) only sets the baseline, except a life-safety
level (smoke, gas, latched SOS) in a live message, which is never held back.

The state lives in this object: with a shared subscription over several workers, a home's messages must all reach
the same worker (not guaranteed by mosquitto's round-robin; see docs/devices.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from gateway.contract import ID_PATTERN, DeviceDirectory
from gateway.dedupe import STREAM_SLOTS, stream_seq
from gateway.errors import DecodeError, Reason
from gateway.models import LIFE_SAFETY_EVENTS, Z2M_PREFIX, DeviceKind, FieldValue, MessageType, Reading
from gateway.z2m.mapping import MappingTable, ModelMap, load_table

BRIDGE_DEVICE: Final = "z2m"
"""Device id of a Z2M bridge's gateway status readings."""

DEVICES_SUFFIX: Final = "/bridge/devices"
"""Topic end of the retained device list, which the listener receives whole (it is larger than any reading)."""

MAX_DEVICES_BYTES: Final = 4 * 1024 * 1024
"""Largest ``bridge/devices`` accepted (it carries every device's exposes; the listener lets it through whole)."""

MAX_STATE_BYTES: Final = 16 * 1024
"""Largest device state message accepted."""

MAX_AVAILABILITY: Final = 1024
"""Availability states remembered per home (a Z2M network has a few hundred devices at most): an availability for a
name not in ``bridge/devices`` beyond it is refused, so made-up names cannot grow the backend's memory."""

MAX_REPORTED: Final = 4096
"""Unknown keys (and unreachable names) remembered as already reported, per home; beyond it they are reported
every time (dead letters have a budget per home) instead of remembered for ever."""

IGNORED_BRIDGE: Final = frozenset({"info", "logging", "extensions", "groups", "definitions", "event", "options"})
"""Bridge topics with nothing for the backend (``bridge/event`` renames arrive again in ``bridge/devices``)."""

_JSON: Final = msgspec.json.Decoder()
_PREFIX: Final = Z2M_PREFIX + "/"


def bridge_site(topic: str) -> str | None:
    """The site of a bridge topic (``z2m/<site>/bridge/...``): none carries a life-safety reading.

    Such a message can spend its home's budget (:mod:`gateway.budget`) before it is parsed; ``bridge/devices`` is
    the one topic the listener lets through whole, up to the broker's 64 KiB.

    >>> bridge_site("z2m/h1/bridge/devices"), bridge_site("z2m/h1/hall sos"), bridge_site("ec/v1/h1/door/d1/event")
    ('h1', None, None)
    """
    if not topic.startswith(_PREFIX):
        return None
    site, _, rest = topic[len(_PREFIX) :].partition("/")
    return site if site and rest.startswith("bridge/") else None


@dataclass(slots=True)
class _Site:
    names: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """friendly name → (IEEE address, model or None when Z2M does not support the device)."""
    last: dict[tuple[str, str], str] = field(default_factory=dict)
    """(IEEE, key) → last value of a level key."""
    reported: set[tuple[str, str]] = field(default_factory=set)
    """(IEEE, key) already dead-lettered as unknown, and (IEEE, ``name:{friendly name}``) as unreachable."""
    availability: dict[str, str] = field(default_factory=dict)
    """IEEE → "online" / "offline" (last availability message)."""
    seq: dict[str, int] = field(default_factory=dict)
    """IEEE → the ``seq`` of the device's last reading (Z2M has no sequence numbers)."""
    status: dict[str, dict[str, FieldValue]] = field(default_factory=dict)
    """IEEE → the fields of the last status reading."""


def _value_key(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def parse_state(topic: str, payload: bytes) -> str:
    """``online``/``offline`` from ``{"state":"online"}`` (Z2M 2.x) or the plain 1.x string.

    >>> parse_state("t", b'{"state":"offline"}'), parse_state("t", b"online")
    ('offline', 'online')
    """
    text = payload.strip()
    if text in (b"online", b"offline"):
        return text.decode()
    try:
        obj = _JSON.decode(text)
    except msgspec.DecodeError:
        raise DecodeError(topic, Reason.BAD_JSON, 'expected {"state": ...} or online/offline') from None
    state = obj.get("state") if isinstance(obj, dict) else None
    if state not in ("online", "offline"):
        raise DecodeError(topic, Reason.BAD_SCHEMA, f"state must be online or offline, not {state!r}")
    return str(state)


class Z2mAdapter:
    """Turns Z2M messages into contract v1 :class:`Reading` objects (and refusals), keeping per-home state."""

    def __init__(
        self,
        *,
        directory: DeviceDirectory | None = None,
        table: MappingTable | None = None,
        name_problem: Callable[[str], str | None] | None = None,
        stream_numbered: bool = False,
    ) -> None:
        """``name_problem`` says why a friendly name cannot reach the backend over its transport (None: it can).

        The clustered mode passes :func:`ingest.partitions.z2m_name_problem`: each such name in ``bridge/devices``
        is refused once, with the reason, since its device's messages would never arrive. It also sets
        ``stream_numbered``: readings are numbered by each message's stream sequence (``mid`` of :meth:`decode`),
        not by this adapter's counter.
        """
        self.directory = directory
        self.table = table if table is not None else load_table()
        self.name_problem = name_problem
        self.stream_numbered = stream_numbered
        if stream_numbered:
            most = max((len(m.levels) + len(m.actions) + 1 for m in self.table.models.values()), default=1)
            if most > STREAM_SLOTS:
                raise ValueError(f"a model gives up to {most} readings per message, more than {STREAM_SLOTS} slots")
        self._sites: dict[str, _Site] = {}
        self.lists_changed: set[str] = set()
        """Sites whose ``bridge/devices`` was decoded since the owner last took this set (:meth:`take_changed`)."""

    @staticmethod
    def handles(topic: str) -> bool:
        """True for topics under the Z2M prefix."""
        return topic.startswith(Z2M_PREFIX + "/")

    def take_changed(self) -> set[str]:
        """The sites whose device list changed since the last call (the clustered mode keeps them for the next one)."""
        changed, self.lists_changed = self.lists_changed, set()
        return changed

    def device_names(self, site: str) -> bytes:
        """A home's friendly names as JSON (``{name: [ieee, model]}``): what ``bridge/devices`` taught this adapter.

        Small (tens of bytes per device) where ``bridge/devices`` carries every device's exposes (often > 64 KiB).
        """
        entry = self._sites.get(site)
        return msgspec.json.encode({} if entry is None else {n: list(v) for n, v in entry.names.items()})

    def restore_names(self, site: str, data: bytes) -> None:
        """Start a home afresh from :meth:`device_names` (a new owner after a take-over, as after a restart).

        Every other piece of the home's state (last values, counters) starts empty, as in an embedded backend that
        relearns its names from the retained ``bridge/devices``: the first state of each device is a baseline.
        """
        try:
            raw = _JSON.decode(data)
        except msgspec.DecodeError:
            return
        names: dict[str, tuple[str, str | None]] = {}
        if isinstance(raw, dict):
            for name, value in raw.items():
                if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                    model = value[1] if isinstance(value[1], str) else None
                    names[str(name)] = (value[0], model)
        self._sites[site] = _Site(names=names)

    def remembered(self, site: str) -> int:
        """Entries this adapter keeps for a home (names, availability, last values, reported keys...): bounded."""
        h = self._sites.get(site)
        if h is None:
            return 0
        return len(h.names) + len(h.last) + len(h.reported) + len(h.availability) + len(h.seq) + len(h.status)

    def availability(self, site: str, ieee: str) -> str | None:
        """Last availability a home's Z2M reported for a device (``online``/``offline``), if any."""
        entry = self._sites.get(site)
        return None if entry is None else entry.availability.get(ieee)

    def decode(
        self, topic: str, payload: bytes, *, received_ms: int, retained: bool = False, mid: int | None = None
    ) -> list[Reading | DecodeError]:
        """Readings and refusals for one message; never raises (a bug becomes a refusal with its reason).

        ``mid`` is the message's stream sequence; a ``stream_numbered`` adapter numbers the readings with it.
        """
        try:
            return list(self._decode(topic, payload, received_ms, retained, mid))
        except DecodeError as exc:
            return [exc]
        except RecursionError:
            return [DecodeError(topic, Reason.BAD_JSON, "JSON nested too deeply")]
        except Exception as exc:  # an adapter bug must not stop the loop: keep the message for inspection
            return [DecodeError(topic, Reason.BAD_SCHEMA, f"z2m adapter error ({type(exc).__name__})")]

    def _decode(
        self, topic: str, payload: bytes, now: int, retained: bool, mid: int | None
    ) -> Iterable[Reading | DecodeError]:
        parts = topic.split("/", 2)
        if len(parts) < 3 or parts[0] != Z2M_PREFIX or not parts[2]:
            raise DecodeError(topic, Reason.BAD_TOPIC, f"expected {Z2M_PREFIX}/site/<z2m topic>")
        site, rest = parts[1], parts[2]
        if not ID_PATTERN.fullmatch(site):
            raise DecodeError(topic, Reason.BAD_TOPIC, "site id must match [A-Za-z0-9_-]{1,64}")
        if self.directory is not None and not self.directory.site_known(site):
            raise DecodeError(topic, Reason.UNKNOWN_SITE, f"site {site!r} is not provisioned")
        home = self._sites.setdefault(site, _Site())
        if rest.startswith("bridge/"):
            return self._bridge(topic, site, home, rest[len("bridge/") :], payload, now)
        if rest.endswith(("/set", "/get")) or "/set/" in rest or rest.endswith("/action"):
            return ()  # commands to Z2M, and the legacy action topic that repeats the state's `action`
        if rest.endswith("/availability"):
            name = rest[: -len("/availability")]
            found = home.names.get(name)  # may arrive (retained) before bridge/devices: then keyed by name
            key = found[0] if found else name
            state = parse_state(topic, payload)
            if key not in home.availability and len(home.availability) >= MAX_AVAILABILITY:
                why = f"{name!r} is not in this home's bridge/devices and {MAX_AVAILABILITY} availabilities are kept"
                raise DecodeError(topic, Reason.UNKNOWN_DEVICE, why)
            home.availability[key] = state
            return ()
        if len(payload) > MAX_STATE_BYTES:
            raise DecodeError(topic, Reason.OVERSIZE, f"{len(payload)} bytes > {MAX_STATE_BYTES}")
        return self._state(topic, site, home, rest, payload, now, retained, mid)

    def _bridge(
        self, topic: str, site: str, home: _Site, what: str, payload: bytes, now: int
    ) -> list[Reading | DecodeError]:
        if what == "state":
            online = parse_state(topic, payload) == "online"
            return [
                Reading(
                    site=site,
                    kind=DeviceKind.GATEWAY,
                    device=BRIDGE_DEVICE,
                    type=MessageType.STATUS,
                    seq=None,
                    ts_ms=now,
                    received_ms=now,
                    fields={"online": online},
                )
            ]
        if what == "devices":
            if len(payload) > MAX_DEVICES_BYTES:
                raise DecodeError(topic, Reason.OVERSIZE, f"{len(payload)} bytes > {MAX_DEVICES_BYTES}")
            home.names = self._device_list(topic, payload)
            self.lists_changed.add(site)
            return self._unreachable(topic, home)
        if what in IGNORED_BRIDGE or what.startswith(("response/", "request/")):
            return []
        raise DecodeError(topic, Reason.BAD_TOPIC, f"unknown bridge topic {what!r}")

    def _unreachable(self, topic: str, home: _Site) -> list[Reading | DecodeError]:
        """A refusal for each device whose friendly name its transport cannot carry (once per device and name)."""
        if self.name_problem is None:
            return []
        out: list[Reading | DecodeError] = []
        for name, (ieee, _model) in home.names.items():
            why = self.name_problem(name)
            if why is None or (ieee, f"name:{name}") in home.reported:
                continue
            if len(home.reported) < MAX_REPORTED:
                home.reported.add((ieee, f"name:{name}"))
            detail = f"friendly name '{name}' of {ieee} {why}; its messages cannot arrive: rename it in Z2M"
            out.append(DecodeError(topic, Reason.BAD_TOPIC, detail))
        return out

    @staticmethod
    def _device_list(topic: str, payload: bytes) -> dict[str, tuple[str, str | None]]:
        try:
            devices = _JSON.decode(payload)
        except msgspec.DecodeError as exc:
            raise DecodeError(topic, Reason.BAD_JSON, str(exc)) from None
        if not isinstance(devices, list):
            raise DecodeError(topic, Reason.BAD_SCHEMA, "bridge/devices must be a JSON array")
        names: dict[str, tuple[str, str | None]] = {}
        for i, dev in enumerate(devices):
            if not isinstance(dev, dict):
                raise DecodeError(topic, Reason.BAD_SCHEMA, f"device {i} is not an object")
            ieee, name = dev.get("ieee_address"), dev.get("friendly_name")
            if not isinstance(ieee, str) or not isinstance(name, str) or not ID_PATTERN.fullmatch(ieee):
                raise DecodeError(topic, Reason.BAD_SCHEMA, f"device {i} lacks a valid ieee_address/friendly_name")
            if dev.get("type") == "Coordinator":
                continue
            definition = dev.get("definition")
            model = definition.get("model") if isinstance(definition, dict) else None
            names[name] = (ieee, model if isinstance(model, str) else None)
        return names

    def _resolve(self, topic: str, home: _Site, name: str) -> tuple[str, str | None]:
        found = home.names.get(name)
        if found is None:
            raise DecodeError(
                topic, Reason.UNKNOWN_DEVICE, f"{name!r} is not in this home's bridge/devices (not seen yet?)"
            )
        return found

    def _model(self, topic: str, site: str, ieee: str, model: str | None) -> ModelMap:
        m = self.table.models.get(model) if model is not None else None
        if m is None:
            raise DecodeError(topic, Reason.UNKNOWN_MODEL, f"model {model!r} of {ieee} has no mapping entry")
        if self.directory is not None:
            kind = self.directory.device_kind(site, ieee)
            if kind is None:
                raise DecodeError(topic, Reason.UNKNOWN_DEVICE, f"device {ieee!r} is not registered at this site")
            if kind is not m.kind:
                why = f"device is registered as {kind.value}, model {model} is {m.kind.value}"
                raise DecodeError(topic, Reason.KIND_MISMATCH, why)
        return m

    def _state(
        self, topic: str, site: str, home: _Site, name: str, payload: bytes, now: int, retained: bool, mid: int | None
    ) -> list[Reading | DecodeError]:
        ieee, model = self._resolve(topic, home, name)
        m = self._model(topic, site, ieee, model)
        try:
            state = _JSON.decode(payload)
        except msgspec.DecodeError as exc:
            raise DecodeError(topic, Reason.BAD_JSON, str(exc)) from None
        if not isinstance(state, dict):
            raise DecodeError(topic, Reason.BAD_SCHEMA, "device state must be a JSON object")
        out: list[Reading | DecodeError] = []
        events: list[str] = []
        seen_before = ieee in home.seq  # a key that first shows up in a later message (e.g. `test`) is an edge
        for key, mapping in m.levels.items():
            value = _value_key(state.get(key))
            if value is None:
                continue
            previous = home.last.get((ieee, key))
            home.last[(ieee, key)] = value
            event = mapping.get(value)
            if event is None or previous == value:
                continue
            if previous is None and (retained or (not seen_before and (m.kind, event) not in LIFE_SAFETY_EVENTS)):
                continue  # first sight is a baseline, not an edge; a live life-safety level is never held back
            events.append(event)
        for key, mapping in m.actions.items():
            raw = state.get(key)
            if raw is None or raw == "" or retained:
                continue
            value = _value_key(raw)
            if value is not None and value in m.quiet.get(key, frozenset()):
                continue
            event = mapping.get(value) if value is not None else None
            if event is None:
                out.append(DecodeError(topic, Reason.OUT_OF_RANGE, f"{key}={raw!r} has no mapping for {m.model}"))
                continue
            events.append(event)
        for key in state:
            if not self.table.known(m, key) and (ieee, key) not in home.reported:
                if len(home.reported) < MAX_REPORTED:  # beyond it: reported again each time, not remembered
                    home.reported.add((ieee, key))
                out.append(DecodeError(topic, Reason.UNKNOWN_FIELD, f"{m.model} key {key!r} has no mapping (once)"))
        made: list[tuple[MessageType, dict[str, FieldValue], str | None]] = [
            (MessageType.EVENT, {}, event) for event in events
        ]
        status = self._status(state)
        if not events or home.status.get(ieee) != status:
            # A message that carries an event was caused by the person: it is no heartbeat (the offline rule learns
            # healthy gaps from heartbeats only) and its cached battery/tamper repeat the last status.
            home.status[ieee] = status
            made.append((MessageType.STATUS, status, None))
        for slot, (mtype, fields, ev) in enumerate(made):
            out.append(
                Reading(
                    site=site,
                    kind=m.kind,
                    device=ieee,
                    type=mtype,
                    seq=self._seq(home, ieee, mid, slot),
                    ts_ms=now,
                    received_ms=now,
                    fields=fields,
                    event=ev,
                )
            )
        return out

    def _seq(self, home: _Site, device: str, mid: int | None, slot: int) -> int:
        """The ``seq`` of a device's ``slot``-th reading from one message: its stream position, or the counter."""
        if self.stream_numbered:
            if mid is None:
                raise ValueError("a stream-numbered adapter needs each message's stream sequence")
            seq = stream_seq(mid, slot)
        else:
            seq = home.seq.get(device, 0) + 1
        home.seq[device] = seq
        return seq

    def _status(self, state: dict[str, Any]) -> dict[str, FieldValue]:
        fields: dict[str, FieldValue] = {}
        battery = state.get("battery")
        if isinstance(battery, int | float) and not isinstance(battery, bool) and 0 <= battery <= 100:
            fields["battery"] = int(battery)
        voltage = state.get("voltage")
        if isinstance(voltage, int | float) and not isinstance(voltage, bool) and 0 < voltage <= 12_000:
            fields["battery_v"] = round(voltage / 1000, 2)  # Z2M reports mV
        for flag in ("tamper", "battery_low"):
            if isinstance(state.get(flag), bool):
                fields[flag] = state[flag]
        return fields
