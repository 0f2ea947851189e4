"""Topic parsing and the single entry point that turns raw MQTT messages into readings."""

from __future__ import annotations

import re
from typing import Final, Protocol

from gateway.codecs import DECODERS
from gateway.errors import DecodeError, Reason
from gateway.models import CONTRACT_PREFIX, LIFE_SAFETY_EVENTS, Z2M_PREFIX, DeviceKind, MessageType, Reading, Topic

MAX_PAYLOAD_BYTES: Final = 4096
"""Largest payload accepted; a bigger one is dead-lettered as oversize."""

DEFAULT_MAX_SKEW_MS: Final = 5 * 60 * 1000
"""A device clock further off than this is flagged and the received time is used instead."""

ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""Site and device identifiers: safe in topics, ACLs, tags and file names."""

UPLINK_TYPES: Final = (MessageType.TELEMETRY, MessageType.EVENT, MessageType.STATUS)

SUBSCRIPTIONS: Final = (*(f"{CONTRACT_PREFIX}/+/+/+/{t.value}" for t in UPLINK_TYPES), f"{Z2M_PREFIX}/#")
"""Everything a home sends (Zigbee2MQTT homes under ``z2m/``), for one session: a benchmark's or a test's listener.

The backend splits it over two sessions (:data:`PRIORITY_SUBSCRIPTIONS`, :data:`MAIN_SUBSCRIPTIONS`)."""

PRIORITY_KINDS: Final = (DeviceKind.WRISTBAND, DeviceKind.SMOKE, DeviceKind.GAS, DeviceKind.CALL_BUTTON)
"""Kinds whose ``event`` topic carries a life-safety event of the contract (SOS, fall, alarm, press; see
:data:`gateway.models.LIFE_SAFETY_EVENTS`: a motion sensor's ``fall`` comes from Zigbee2MQTT homes only)."""

_EVENT: Final = MessageType.EVENT.value


def priority_filters(site: str = "+") -> tuple[str, ...]:
    """The backend's priority session: the life-safety kinds' ``event`` topics, nothing else.

    >>> priority_filters()[0]
    'ec/v1/+/wristband/+/event'
    """
    return tuple(f"{CONTRACT_PREFIX}/{site}/{k.value}/+/{_EVENT}" for k in PRIORITY_KINDS)


def main_filters(site: str = "+") -> tuple[str, ...]:
    """The backend's main session: every other uplink topic, none of :func:`priority_filters` (no message twice).

    An ``event`` of a kind the contract does not know matches neither (MQTT has no "all but" filter): the broker
    drops it instead of the backend dead-lettering it; telemetry and status of an unknown kind are still received.
    """
    others = (k for k in DeviceKind if k not in PRIORITY_KINDS)
    return (
        f"{CONTRACT_PREFIX}/{site}/+/+/{MessageType.TELEMETRY.value}",
        *(f"{CONTRACT_PREFIX}/{site}/{k.value}/+/{_EVENT}" for k in others),
        f"{CONTRACT_PREFIX}/{site}/+/+/{MessageType.STATUS.value}",
        f"{Z2M_PREFIX}/#" if site == "+" else f"{Z2M_PREFIX}/{site}/#",
    )


PRIORITY_SUBSCRIPTIONS: Final = priority_filters()
"""Topic filters of the backend's priority session (``{ELDERCARE_MQTT_CLIENT_ID}-priority``)."""

MAIN_SUBSCRIPTIONS: Final = main_filters()
"""Topic filters of the backend's main session (``ELDERCARE_MQTT_CLIENT_ID``)."""

_PRIORITY_KIND_NAMES: Final = frozenset(k.value for k in PRIORITY_KINDS)
_LIFE_SAFETY_KIND_NAMES: Final = frozenset(kind.value for kind, _ in LIFE_SAFETY_EVENTS)
_CONTRACT_TOPIC: Final = CONTRACT_PREFIX + "/"
_EVENT_SUFFIX: Final = "/" + _EVENT


def is_priority_topic(topic: str) -> bool:
    """True if ``topic`` matches :func:`priority_filters` (of any site): which session a message came on.

    >>> is_priority_topic("ec/v1/h1/call_button/b1/event"), is_priority_topic("ec/v1/h1/call_button/b1/status")
    (True, False)
    """
    if not topic.endswith(_EVENT_SUFFIX):
        return False
    parts = topic.split("/")
    return len(parts) == 6 and parts[3] in _PRIORITY_KIND_NAMES and f"{parts[0]}/{parts[1]}" == CONTRACT_PREFIX


def plain_site(topic: str) -> str | None:
    """The site of a contract topic that can never carry a life-safety reading, else None.

    Telemetry, status and the events of kinds without a life-safety event are plain; so a home's budget
    (:mod:`gateway.budget`) can be spent on them before they are decoded. A topic that is not a contract topic, or
    not a well-formed one, is not plain (it is decoded, and refused there).

    >>> plain_site("ec/v1/h1/mattress/m1/telemetry"), plain_site("ec/v1/h1/door/d1/event")
    ('h1', 'h1')
    >>> plain_site("ec/v1/h1/call_button/b1/event"), plain_site("ec/v1/h1/motion/p1/event"), plain_site("z2m/h1/x")
    (None, None, None)
    """
    if not topic.startswith(_CONTRACT_TOPIC):
        return None
    parts = topic.split("/")
    if len(parts) != 6 or (parts[5] == _EVENT and parts[3] in _LIFE_SAFETY_KIND_NAMES):
        return None
    return parts[2]


def site_filter(site: str) -> str:
    """Topic filter covering everything one home publishes or receives."""
    return f"{CONTRACT_PREFIX}/{site}/#"


def command_topic(site: str, kind: DeviceKind, device: str) -> str:
    """Downstream topic on which the backend sends a command to one device of a home."""
    return str(Topic(site=site, kind=kind, device=device, type=MessageType.CMD))


def status_topic(site: str, gateway: str) -> str:
    """Retained status topic of a home gateway (also its Last Will topic)."""
    return str(Topic(site=site, kind=DeviceKind.GATEWAY, device=gateway, type=MessageType.STATUS))


def parse_topic(topic: str) -> Topic:
    """Parse ``ec/v1/{site}/{kind}/{device}/{type}``.

    >>> parse_topic("ec/v1/home-1/door/d1/event").kind
    <DeviceKind.DOOR: 'door'>

    Parsed topics are cached (a home sends on a handful of them; ``Topic`` is immutable), so the split, the id
    checks and the enum look-ups run once per topic, not once per message; refused topics are not cached.
    """
    cached = _PARSED.get(topic)
    if cached is not None:
        return cached
    parsed = _parse_topic(topic)
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[topic] = parsed
    return parsed


_PARSED: dict[str, Topic] = {}
_PARSED_MAX: Final = 100_000


def _parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) != 6 or f"{parts[0]}/{parts[1]}" != CONTRACT_PREFIX:
        raise DecodeError(topic, Reason.BAD_TOPIC, f"expected {CONTRACT_PREFIX}/site/kind/device/type")
    _, _, site, kind, device, mtype = parts
    if not ID_PATTERN.fullmatch(site) or not ID_PATTERN.fullmatch(device):
        raise DecodeError(topic, Reason.BAD_TOPIC, "site and device ids must match [A-Za-z0-9_-]{1,64}")
    try:
        parsed_kind = DeviceKind(kind)
    except ValueError:
        raise DecodeError(topic, Reason.BAD_TOPIC, f"unknown device kind {kind!r}") from None
    try:
        parsed_type = MessageType(mtype)
    except ValueError:
        raise DecodeError(topic, Reason.BAD_TOPIC, f"unknown message type {mtype!r}") from None
    if parsed_type not in UPLINK_TYPES:
        raise DecodeError(topic, Reason.UNSUPPORTED_TYPE, f"{mtype!r} is downstream only")
    return Topic(site=site, kind=parsed_kind, device=device, type=parsed_type)


class DeviceDirectory(Protocol):
    """Knows which sites and devices are provisioned (the registry, seen by the gateway)."""

    def site_known(self, site: str) -> bool:
        """True if the home is provisioned."""
        ...

    def device_kind(self, site: str, device: str) -> DeviceKind | None:
        """Kind of a provisioned device of a home (``gateway`` for the home's gateway id), or None if unknown."""
        ...


def decode_message(
    topic: str,
    payload: bytes,
    *,
    received_ms: int,
    directory: DeviceDirectory | None = None,
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> Reading:
    """Validate and decode one MQTT message; raise :class:`DecodeError` with a reason if it is bad.

    With a ``directory``, messages from unknown homes or devices, or on the wrong kind's topic,
    are refused. A gateway status must come from the home's own gateway id (the directory knows it as a device of
    kind ``gateway``): a made-up id would be a new device for the deduplicator, the engine and InfluxDB.
    """
    if len(payload) > max_payload_bytes:
        raise DecodeError(topic, Reason.OVERSIZE, f"{len(payload)} bytes > {max_payload_bytes}")
    parsed = parse_topic(topic)
    if directory is not None:
        if not directory.site_known(parsed.site):
            raise DecodeError(topic, Reason.UNKNOWN_SITE, f"site {parsed.site!r} is not provisioned")
        kind = directory.device_kind(parsed.site, parsed.device)
        if kind is None:
            raise DecodeError(topic, Reason.UNKNOWN_DEVICE, f"device {parsed.device!r} is not registered at this site")
        if kind is not parsed.kind:
            raise DecodeError(
                topic, Reason.KIND_MISMATCH, f"device is registered as {kind.value}, not {parsed.kind.value}"
            )
    return DECODERS[parsed.kind](parsed, payload, received_ms=received_ms, max_skew_ms=max_skew_ms)
