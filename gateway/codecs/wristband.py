"""Wristband (智能手环): heart rate, SpO2, steps, worn state; fall and SOS events."""

from __future__ import annotations

from typing import Final

from gateway.codecs._base import STATUS_RANGES, Codec, DeviceStatus, Envelope
from gateway.models import DeviceKind, MessageType


class WristbandTelemetry(Envelope, kw_only=True):
    """Vitals sample, every 1–10 min."""

    worn: bool
    hr: float | None = None
    """Heart rate, bpm; null when not worn."""
    spo2: float | None = None
    """Blood oxygen saturation, %; optional."""
    steps: int | None = None
    """Steps since local midnight."""
    skin_temp: float | None = None
    """Skin temperature, °C; optional."""
    battery: int | None = None
    """Battery level, %."""


class Fall(Envelope, kw_only=True, tag_field="event", tag="fall"):
    """Fall detected on the device, with the detector's confidence 0–1."""

    confidence: float


class Sos(Envelope, kw_only=True, tag_field="event", tag="sos"):
    """SOS key pressed."""


class Removed(Envelope, kw_only=True, tag_field="event", tag="removed"):
    """Band taken off."""


class Worn(Envelope, kw_only=True, tag_field="event", tag="worn"):
    """Band put on."""


CODEC: Final = Codec(
    kind=DeviceKind.WRISTBAND,
    schemas={
        MessageType.TELEMETRY: WristbandTelemetry,
        MessageType.EVENT: Fall | Sos | Removed | Worn,
        MessageType.STATUS: DeviceStatus,
    },
    ranges={
        "hr": (0, 300),
        "spo2": (0, 100),
        "steps": (0, 200_000),
        "skin_temp": (0, 50),
        "confidence": (0, 1),
        **STATUS_RANGES,
    },
)
decode: Final = CODEC.decode
