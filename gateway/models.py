"""Domain types of the telemetry contract v1 (see docs/contract.md)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import msgspec

CONTRACT_PREFIX: Final = "ec/v1"
"""Topic prefix of contract v1; a new major version gets a new prefix."""

Z2M_PREFIX: Final = "z2m"
"""Zigbee2MQTT homes publish under ``z2m/{site}/...`` (their Z2M ``base_topic``), see docs/devices.md."""


class DeviceKind(StrEnum):
    """Device kinds the contract knows; ``gateway`` is the home gateway itself."""

    MATTRESS = "mattress"
    WRISTBAND = "wristband"
    DOOR = "door"
    SMOKE = "smoke"
    GAS = "gas"
    CALL_BUTTON = "call_button"
    MOTION = "motion"
    GATEWAY = "gateway"


KIND_NAMES: Final[dict[DeviceKind, tuple[str, str]]] = {
    DeviceKind.MATTRESS: ("智能床垫", "mattress"),
    DeviceKind.WRISTBAND: ("智能手环", "wristband"),
    DeviceKind.DOOR: ("门磁", "door contact"),
    DeviceKind.SMOKE: ("烟感", "smoke detector"),
    DeviceKind.GAS: ("燃气报警器", "gas detector"),
    DeviceKind.CALL_BUTTON: ("一键呼叫", "call button"),
    DeviceKind.MOTION: ("人体感应", "motion sensor"),
    DeviceKind.GATEWAY: ("家庭网关", "home gateway"),
}
"""Each kind's name for people, ``(zh, en)``: explanations (detection) and pages (alerts.labels) say the same."""


class MessageType(StrEnum):
    """Last topic level: what the message is."""

    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"
    CMD = "cmd"
    """Downstream (backend → home) commands; never decoded as a reading."""


FieldValue = bool | int | float | str


class Topic(msgspec.Struct, frozen=True):
    """A parsed contract topic ``ec/v1/{site}/{kind}/{device}/{type}``."""

    site: str
    kind: DeviceKind
    device: str
    type: MessageType

    def __str__(self) -> str:
        return f"{CONTRACT_PREFIX}/{self.site}/{self.kind.value}/{self.device}/{self.type.value}"


class Reading(msgspec.Struct, frozen=True):
    """One decoded, validated message from one device.

    ``fields`` holds the values in the contract's fixed units (bpm, breaths/min, %, °C, count).
    ``ts_ms`` is the device's own clock; ``received_ms`` is when the backend got it. When the device
    time is in the future by more than the allowed skew, or older than the backfill window (honest
    buffered data arrives late, so a lag alone is not a wrong clock), ``clock_skewed`` is set and
    :attr:`time_ms` falls back to the received time, so a wrong clock cannot move data in time.
    """

    site: str
    kind: DeviceKind
    device: str
    type: MessageType
    seq: int | None
    ts_ms: int
    received_ms: int
    fields: dict[str, FieldValue]
    event: str | None = None
    clock_skewed: bool = False

    @property
    def time_ms(self) -> int:
        """Event time used downstream: device time unless its clock is off."""
        return self.received_ms if self.clock_skewed else self.ts_ms

    @property
    def is_life_safety(self) -> bool:
        """True for SOS, fall, smoke or gas alarm and call-button press: never batched or muted."""
        return self.event is not None and (self.kind, self.event) in LIFE_SAFETY_EVENTS


LIFE_SAFETY_EVENTS: Final[frozenset[tuple[DeviceKind, str]]] = frozenset(
    {
        (DeviceKind.WRISTBAND, "sos"),
        (DeviceKind.WRISTBAND, "fall"),
        (DeviceKind.MOTION, "fall"),  # an mmWave radar's confirmed fall state (Z2M, docs/devices.md)
        (DeviceKind.SMOKE, "alarm"),
        (DeviceKind.GAS, "alarm"),
        (DeviceKind.CALL_BUTTON, "press"),
    }
)

EXPECTED_CADENCE_S: Final[dict[DeviceKind, int]] = {
    DeviceKind.MATTRESS: 30,
    DeviceKind.WRISTBAND: 600,
    DeviceKind.DOOR: 6 * 3600,
    DeviceKind.SMOKE: 6 * 3600,
    DeviceKind.GAS: 6 * 3600,
    DeviceKind.CALL_BUTTON: 6 * 3600,
    DeviceKind.MOTION: 3600,
    DeviceKind.GATEWAY: 300,
}
"""Longest normal gap between two messages of a healthy device, by kind ("silence is data")."""


class RawMessage(msgspec.Struct, frozen=True, gc=False):
    """One MQTT message as received, before decoding.

    ``connection`` numbers the listener's connection the message came on: its ``mid`` is only
    meaningful on that connection, so an acknowledgement after a reconnect is skipped (the broker
    redelivers the message instead, and the deduplicator drops the copy).
    """

    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    received_ms: int
    connection: int = 0
    size: int = -1
    """Original payload size when the listener kept only the first bytes of an oversize payload; else -1."""

    @property
    def oversize(self) -> bool:
        """True if the payload was cut on arrival because it exceeded the listener's limit."""
        return self.size >= 0
