"""Typed errors raised by the gateway; each carries the data a caller needs."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a message was refused; stored with every dead-letter entry."""

    BAD_TOPIC = "bad_topic"
    UNSUPPORTED_TYPE = "unsupported_type"
    UNKNOWN_SITE = "unknown_site"
    UNKNOWN_DEVICE = "unknown_device"
    KIND_MISMATCH = "kind_mismatch"
    OVERSIZE = "oversize"
    BAD_JSON = "bad_json"
    BAD_SCHEMA = "bad_schema"
    OUT_OF_RANGE = "out_of_range"
    RETAINED_EVENT = "retained_event"
    """An event replayed by the broker from its retained store: it happened before, it is not news."""
    STORAGE_REJECTED = "storage_rejected"
    UNKNOWN_MODEL = "unknown_model"
    """A Zigbee2MQTT device whose model has no entry in the mapping table (gateway/z2m/models.toml)."""
    UNKNOWN_FIELD = "unknown_field"
    """A Zigbee2MQTT key the device's mapping does not know (recorded once per device and key)."""
    BAD_FRAME = "bad_frame"
    """Bytes from a 4G watch connection that are not a ``[VV*IMEI*LEN*CONTENT]`` frame (gateway/watch)."""
    IMEI_MISMATCH = "imei_mismatch"
    """A 4G watch frame naming another IMEI than the one its connection logged in with (gateway/watch)."""
    CONNECTION_LIMIT = "connection_limit"
    """A 4G watch connection refused: too many from one address or for one IMEI (gateway/watch)."""
    OVER_BUDGET = "over_budget"
    """A valid reading beyond its home's budget of messages that are not life-safety (gateway/budget.py): counted,
    not stored, not confirmed (a gateway with an outbox sends it again)."""


class DecodeError(Exception):
    """Raised when a message does not match the telemetry contract.

    Attributes:
        topic: the MQTT topic the message arrived on.
        reason: a machine-readable :class:`Reason`.
        detail: a human-readable explanation (English), safe to log.
    """

    def __init__(self, topic: str, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail} (topic {topic!r})")
        self.topic = topic
        self.reason = reason
        self.detail = detail


class PublishError(Exception):
    """Raised when a downstream command could not be delivered to the broker.

    Attributes:
        topic: the command topic.
        attempts: how many times publishing was tried.
        detail: the last failure (English), safe to log.
    """

    def __init__(self, topic: str, attempts: int, detail: str) -> None:
        super().__init__(f"could not publish to {topic!r} after {attempts} attempt(s): {detail}")
        self.topic = topic
        self.attempts = attempts
        self.detail = detail


class WatchOffline(Exception):
    """Raised when a command cannot be written to a 4G watch: it has no open connection (or the write failed).

    Attributes:
        imei: the watch's IMEI, masked (safe to log and audit).
    """

    def __init__(self, imei: str, detail: str = "watch not connected") -> None:
        masked = "*" * max(len(imei) - 4, 0) + imei[-4:]
        super().__init__(f"{detail}: {masked}")
        self.imei = masked


class MqttWireError(Exception):
    """Raised by the own MQTT client (:mod:`gateway.mqtt_wire`) when a connection cannot go on.

    Attributes:
        detail: what went wrong (English), safe to log.
        code: the CONNACK return code when the broker refused the connection, else None.
    """

    def __init__(self, detail: str, *, code: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
