"""PIR motion sensor (人体感应): activity counts per window, motion events, heartbeat."""

from __future__ import annotations

from typing import Final

from gateway.codecs._base import STATUS_RANGES, Codec, DeviceStatus, Envelope
from gateway.models import DeviceKind, MessageType


class MotionTelemetry(Envelope, kw_only=True):
    """Number of PIR triggers in the last ``window_s`` seconds."""

    count: int
    window_s: int
    room: str | None = None
    """Where the sensor is (e.g. ``bedroom``, ``kitchen``, ``bathroom``, ``hall``)."""


class Motion(Envelope, kw_only=True, tag_field="event", tag="motion"):
    """Motion detected (sent at most once per device hold-off time)."""

    room: str | None = None


CODEC: Final = Codec(
    kind=DeviceKind.MOTION,
    schemas={
        MessageType.TELEMETRY: MotionTelemetry,
        MessageType.EVENT: Motion,
        MessageType.STATUS: DeviceStatus,
    },
    ranges={"count": (0, 100_000), "window_s": (1, 86_400), **STATUS_RANGES},
)
decode: Final = CODEC.decode
